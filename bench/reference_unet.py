"""An untrained UNet in ONNX, built from scratch, for timing the pipeline before models ship.

Same topology as a plain UNet (two 3x3 conv + ReLU per level, max-pool down, nearest
upsample + concat up, 1x1 head to 3 classes) with a configurable base width. Its weights are
random, so its output means nothing; its cost per slice is that of a trained model of the
same shape.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class _Graph:
    def __init__(self, rng: np.random.Generator) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.rng = rng
        self.count = 0

    def name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"

    def conv(self, x: str, cin: int, cout: int, k: int = 3, relu: bool = True) -> str:
        w, b, y = self.name("w"), self.name("b"), self.name("conv")
        scale = np.sqrt(2.0 / (cin * k * k))
        self.inits.append(numpy_helper.from_array((self.rng.normal(0, scale, (cout, cin, k, k))).astype(np.float32), w))
        self.inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), b))
        self.nodes.append(helper.make_node("Conv", [x, w, b], [y], kernel_shape=[k, k], pads=[k // 2] * 4))
        if not relu:
            return y
        r = self.name("relu")
        self.nodes.append(helper.make_node("Relu", [y], [r]))
        return r

    def block(self, x: str, cin: int, cout: int) -> str:
        return self.conv(self.conv(x, cin, cout), cout, cout)

    def pool(self, x: str) -> str:
        y = self.name("pool")
        self.nodes.append(helper.make_node("MaxPool", [x], [y], kernel_shape=[2, 2], strides=[2, 2]))
        return y

    def up_concat(self, x: str, skip: str) -> str:
        scales, up, cat = self.name("scales"), self.name("up"), self.name("cat")
        self.inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), scales))
        self.nodes.append(helper.make_node("Resize", [x, "", scales], [up], mode="nearest"))
        self.nodes.append(helper.make_node("Concat", [up, skip], [cat], axis=1))
        return cat


def build_unet(
    path: Path, base: int = 16, depth: int = 4, in_channels: int = 3, size: int = 256, seed: int = 0
) -> None:
    """Write an untrained UNet with ``depth`` poolings and base width ``base`` to ``path``."""
    g = _Graph(np.random.default_rng(seed))
    widths = [base * 2**i for i in range(depth + 1)]
    x, skips, cin = "x", [], in_channels
    for width in widths[:-1]:
        x = g.block(x, cin, width)
        skips.append(x)
        x, cin = g.pool(x), width
    x = g.block(x, cin, widths[-1])
    cin = widths[-1]
    for width, skip in zip(reversed(widths[:-1]), reversed(skips), strict=True):
        x = g.block(g.up_concat(x, skip), cin + width, width)
        cin = width
    logits = g.conv(x, cin, 3, k=1, relu=False)
    g.nodes.append(helper.make_node("Identity", [logits], ["logits"]))
    graph = helper.make_graph(
        g.nodes,
        "reference_unet",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", in_channels, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3, size, size])],
        initializer=g.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
