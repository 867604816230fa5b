"""Width-parameterised UNet, UNet++, UNet3+ and SegFormer for CPU training.

paddleseg's ``UNet``, ``UNetPlusPlus`` and ``UNet3Plus`` hard-code their channel widths (64 at
the first level), which is too slow to train or run on two CPU cores. These classes keep the
same topologies with a ``base_channels`` knob and are registered with paddleseg's model
manager, so a config names either a stock class (``UNet``, for researchers with a GPU) or a
slim one (``SlimUNet``). Every model returns ``[logits]`` like paddleseg's.
"""

from __future__ import annotations

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddleseg.cvlibs import manager
from paddleseg.models import SegFormer
from paddleseg.models.backbones import MixVisionTransformer


class ConvBNReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, kernel: int = 3) -> None:
        super().__init__(
            nn.Conv2D(cin, cout, kernel, padding=kernel // 2, bias_attr=False), nn.BatchNorm2D(cout), nn.ReLU()
        )


class DoubleConv(nn.Sequential):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(ConvBNReLU(cin, cout), ConvBNReLU(cout, cout))


def _up(x: paddle.Tensor, factor: int = 2) -> paddle.Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def _widths(base: int, depth: int) -> list[int]:
    return [base * 2**i for i in range(depth + 1)]


@manager.MODELS.add_component
class SlimUNet(nn.Layer):
    """UNet (Ronneberger et al. 2015): an encoder of ``depth`` poolings and a mirrored decoder."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3, base_channels: int = 16, depth: int = 4) -> None:
        super().__init__()
        widths = _widths(base_channels, depth)
        self.encoders = nn.LayerList(
            [DoubleConv(c_in, c_out) for c_in, c_out in zip([in_channels, *widths[:-2]], widths[:-1], strict=True)]
        )
        self.bottom = DoubleConv(widths[-2], widths[-1])
        self.decoders = nn.LayerList([DoubleConv(widths[i + 1] + widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2D(widths[0], num_classes, 1)

    def forward(self, x: paddle.Tensor) -> list[paddle.Tensor]:
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = F.max_pool2d(x, 2)
        x = self.bottom(x)
        # Paddle's dynamic-to-static export cannot convert zip(..., strict=True).
        for decoder, skip in zip(self.decoders, reversed(skips)):  # noqa: B905
            x = decoder(paddle.concat([_up(x), skip], axis=1))
        return [self.head(x)]


@manager.MODELS.add_component
class SlimUNetPlusPlus(nn.Layer):
    """UNet++ (Zhou et al. 2018): nested, densely connected skip pathways; no deep supervision."""

    def __init__(self, num_classes: int = 3, in_channels: int = 3, base_channels: int = 16, depth: int = 4) -> None:
        super().__init__()
        self.depth = depth
        widths = _widths(base_channels, depth)
        self.nodes = nn.LayerDict()
        for i in range(depth + 1):  # X[i][0]: the encoder column
            self.nodes[f"{i}_0"] = DoubleConv(in_channels if i == 0 else widths[i - 1], widths[i])
        for j in range(1, depth + 1):  # X[i][j]: nested decoders
            for i in range(depth + 1 - j):
                self.nodes[f"{i}_{j}"] = DoubleConv(widths[i] * j + widths[i + 1], widths[i])
        self.head = nn.Conv2D(widths[0], num_classes, 1)

    def forward(self, x: paddle.Tensor) -> list[paddle.Tensor]:
        grid: dict[tuple[int, int], paddle.Tensor] = {}
        for i in range(self.depth + 1):
            grid[(i, 0)] = self.nodes[f"{i}_0"](x if i == 0 else F.max_pool2d(grid[(i - 1, 0)], 2))
        for j in range(1, self.depth + 1):
            for i in range(self.depth + 1 - j):
                inputs = [grid[(i, k)] for k in range(j)] + [_up(grid[(i + 1, j - 1)])]
                grid[(i, j)] = self.nodes[f"{i}_{j}"](paddle.concat(inputs, axis=1))
        return [self.head(grid[(0, self.depth)])]


@manager.MODELS.add_component
class SlimUNet3Plus(nn.Layer):
    """UNet3+ (Huang et al. 2020): every decoder stage fuses all encoder and deeper decoder
    scales (full-scale skips), each reduced to ``cat_channels``; no deep supervision."""

    def __init__(
        self,
        num_classes: int = 3,
        in_channels: int = 3,
        base_channels: int = 16,
        depth: int = 4,
        cat_channels: int | None = None,
    ) -> None:
        super().__init__()
        self.depth = depth
        widths = _widths(base_channels, depth)
        cat = cat_channels or base_channels
        fused = cat * (depth + 1)
        self.encoders = nn.LayerList(
            [DoubleConv(in_channels if i == 0 else widths[i - 1], widths[i]) for i in range(depth + 1)]
        )
        self.links = nn.LayerDict()
        for stage in range(depth - 1, -1, -1):  # decoder stage at the resolution of encoder level `stage`
            for source in range(depth + 1):
                cin = widths[source] if source <= stage or source == depth else fused
                self.links[f"{stage}_{source}"] = ConvBNReLU(cin, cat)
        self.fuse = nn.LayerList([ConvBNReLU(fused, fused) for _ in range(depth)])
        self.head = nn.Conv2D(fused, num_classes, 1)

    def forward(self, x: paddle.Tensor) -> list[paddle.Tensor]:
        encoded = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else F.max_pool2d(x, 2))
            encoded.append(x)
        decoded: dict[int, paddle.Tensor] = {self.depth: encoded[self.depth]}
        for stage in range(self.depth - 1, -1, -1):
            parts = []
            for source in range(self.depth + 1):
                if source <= stage:  # shallower or same encoder level: max-pool down
                    feature = encoded[source]
                    factor = 2 ** (stage - source)
                    feature = F.max_pool2d(feature, factor) if factor > 1 else feature
                else:  # deeper decoder stage (or the bottom encoder): upsample
                    feature = _up(decoded[source], 2 ** (source - stage))
                parts.append(self.links[f"{stage}_{source}"](feature))
            decoded[stage] = self.fuse[stage](paddle.concat(parts, axis=1))
        return [self.head(decoded[0])]


@manager.MODELS.add_component
class SlimSegFormer(nn.Layer):
    """SegFormer (Xie et al. 2021) with a Mix Transformer encoder whose widths are configurable.

    The defaults are MiT-B0 (``embed_dims`` 32/64/160/256, depths 2/2/2/2); ``width`` scales
    the embedding dims for slimmer variants.
    """

    def __init__(
        self,
        num_classes: int = 3,
        in_channels: int = 3,
        width: float = 1.0,
        embedding_dim: int = 256,
        depths: tuple[int, ...] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        heads = [1, 2, 5, 8]
        dims = [max(round(d * width / h) * h, h) for d, h in zip((32, 64, 160, 256), heads, strict=True)]
        backbone = MixVisionTransformer(
            in_channels=in_channels,
            embed_dims=dims,
            num_heads=heads,
            mlp_ratios=[4, 4, 4, 4],
            qkv_bias=True,
            depths=list(depths),
            sr_ratios=[8, 4, 2, 1],
            drop_rate=0.0,
            drop_path_rate=0.1,
        )
        self.model = SegFormer(num_classes=num_classes, backbone=backbone, embedding_dim=embedding_dim)

    def forward(self, x: paddle.Tensor) -> list[paddle.Tensor]:
        return self.model(x)


def build_model(spec: dict, num_classes: int, in_channels: int) -> nn.Layer:
    """A model from a config's ``model`` section: ``type`` plus its keyword arguments.

    Slim types take ``in_channels``; stock paddleseg types (``UNet``, ``UNetPlusPlus``,
    ``UNet3Plus``, ``SegFormer``) are built with their own defaults for GPU training.
    """
    spec = dict(spec)
    name = spec.pop("type")
    cls = manager.MODELS[name]
    if name.startswith("Slim"):
        return cls(num_classes=num_classes, in_channels=in_channels, **spec)
    if name == "SegFormer":
        backbone = manager.BACKBONES["MixVisionTransformer_B0"](in_channels=in_channels)
        return cls(num_classes=num_classes, backbone=backbone, embedding_dim=spec.get("embedding_dim", 256))
    if name == "UNetPlusPlus":
        return cls(num_classes=num_classes, in_channels=in_channels, is_ds=False, **spec)
    if name == "UNet3Plus":
        return cls(num_classes=num_classes, in_channels=in_channels, is_deepsup=False, **spec)
    return cls(num_classes=num_classes, **spec)
