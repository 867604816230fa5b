"""Slices to model input and model output back to labels, as the manifest specifies.

Shared by the engine and the training package, so a model sees CT at inference exactly
as it saw it in training.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from liverhealth.domain import Label
from liverhealth.imaging.display import grey_to_unit
from liverhealth.inference.manifest import InputSpec

NORMALISE_SLICES = 16  # slices normalised and placed at a time


def to_unit(voxels: np.ndarray, is_hu: bool, hu_window: tuple[float, float]) -> np.ndarray:
    """HU clipped to the window and scaled to [0, 1]; a raster's grey 0..255 maps linearly.

    A raster is taken as already windowed: grey 0 is the window's low end, 255 its high end.
    """
    if not is_hu:
        return grey_to_unit(voxels)
    low, high = hu_window
    unit = (np.asarray(voxels, dtype=np.float32) - np.float32(low)) * np.float32(1.0 / (high - low))
    return np.clip(unit, 0.0, 1.0, out=unit)


def resize_stack(stack: np.ndarray, size: tuple[int, int], nearest: bool = False) -> np.ndarray:
    """Resize every [y, x] slice of a [z, y, x] stack to ``size`` = (height, width).

    Floats are area-averaged when shrinking and bilinear when enlarging; ``nearest`` is for
    label maps.
    """
    height, width = size
    if stack.shape[1:] == (height, width):
        return np.ascontiguousarray(stack if nearest else stack.astype(np.float32, copy=False))
    if nearest:
        method = cv2.INTER_NEAREST
    else:
        shrinking = stack.shape[1] > height or stack.shape[2] > width
        method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.stack([cv2.resize(s, (width, height), interpolation=method) for s in stack])


@dataclass(frozen=True)
class Placement:
    """Where a slice lands in the model input: resized to ``scaled`` (h, w), its top-left
    corner put at ``offset`` (y, x) of the ``size`` input (negative: the edges are cut off).

    With the manifest's ``pixel_mm`` every input pixel spans the same millimetres whatever the
    scanner's field of view, so a liver is as large to the model as it was in training.
    """

    scaled: tuple[int, int]
    offset: tuple[int, int]
    size: tuple[int, int]

    @property
    def is_plain_resize(self) -> bool:
        return self.scaled == self.size and self.offset == (0, 0)

    def regions(self) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        """(rows, columns) of the resized slice and of the input where the two overlap."""
        (sy, dy), (sx, dx) = (_overlap(o, n, s) for o, n, s in zip(self.offset, self.scaled, self.size, strict=True))
        return (sy, sx), (dy, dx)


def placement(shape: tuple[int, int], pixel_yx: tuple[float, float] | None, spec: InputSpec) -> Placement:
    """The placement of [y, x] slices of ``shape`` with pixel size ``pixel_yx`` mm.

    Without ``pixel_mm`` in the spec, or for a raster with no known pixel size, the whole
    slice is resized to the input (a raster is then assumed to span the model's field of view,
    ``size * pixel_mm``). Otherwise it is resampled to ``pixel_mm`` and centred, padded with
    the window's low end or cropped.
    """
    if spec.pixel_mm is None or pixel_yx is None:
        return Placement(scaled=spec.size, offset=(0, 0), size=spec.size)
    scaled = tuple(max(1, round(n * p / spec.pixel_mm)) for n, p in zip(shape, pixel_yx, strict=True))
    offset = tuple((s - n) // 2 for s, n in zip(spec.size, scaled, strict=True))
    return Placement(scaled=scaled, offset=offset, size=spec.size)  # type: ignore[arg-type]


def _overlap(offset: int, inner: int, outer: int) -> tuple[slice, slice]:
    """Index ranges (in the inner array, in the outer array) where the two overlap."""
    start, stop = max(0, -offset), min(inner, outer - offset)
    return slice(start, stop), slice(start + offset, stop + offset)


def place_stack(stack: np.ndarray, where: Placement, fill: float = 0.0, nearest: bool = False) -> np.ndarray:
    """[z, y, x] slices resized and put into model-input canvases [z, *size] as ``where`` says."""
    scaled = resize_stack(stack, where.scaled, nearest)
    if where.is_plain_resize:
        return scaled
    canvas = np.full((stack.shape[0], *where.size), fill, dtype=scaled.dtype)
    source, target = where.regions()
    canvas[(slice(None), *target)] = scaled[(slice(None), *source)]
    return canvas


def normalised_stack(voxels: np.ndarray, is_hu: bool, spec: InputSpec, where: Placement | None = None) -> np.ndarray:
    """The whole volume placed in the model's input and at its intensity scale, float32 [z, h, w].

    Done a few slices at a time: the same values as the whole volume at once, without its
    full-resolution float copy (135 MB for 129 slices of 512²)."""
    where = where or placement(voxels.shape[1:], None, spec)
    placed = np.empty((voxels.shape[0], *spec.size), dtype=np.float32)
    for start in range(0, voxels.shape[0], NORMALISE_SLICES):
        part = slice(start, start + NORMALISE_SLICES)
        placed[part] = place_stack(to_unit(voxels[part], is_hu, spec.hu_window), where)
    placed -= np.float32(spec.mean)
    placed *= np.float32(1.0 / spec.std)
    return placed


def context_stride(spec: InputSpec, slice_mm: float | None) -> int:
    """How many slices apart the neighbours are: 1, or ``context_mm`` / slice spacing rounded."""
    if spec.context_mm is None or not slice_mm:
        return 1
    return max(1, round(spec.context_mm / slice_mm))


def gather_context(stack: np.ndarray, indices: np.ndarray, context: int, stride: int = 1) -> np.ndarray:
    """Batch [n, 2k+1, h, w] of slices z-k*s..z+k*s (s = ``stride``) around each index, edges repeated."""
    offsets = np.arange(-context, context + 1) * stride
    picks = np.clip(indices[:, None] + offsets[None, :], 0, stack.shape[0] - 1)
    return np.ascontiguousarray(stack[picks])


@dataclass(frozen=True)
class PreparedVolume:
    """A volume as one model's input: normalised, placed slices and how to batch them."""

    stack: np.ndarray
    where: Placement
    context: int
    stride: int

    def batch(self, indices: np.ndarray) -> np.ndarray:
        """The float32 NCHW input of the slices at ``indices`` (what the ONNX model is fed)."""
        return gather_context(self.stack, indices, self.context, self.stride)


def prepare_volume(
    voxels: np.ndarray, is_hu: bool, pixel_yx: tuple[float, float] | None, slice_mm: float | None, spec: InputSpec
) -> PreparedVolume:
    """Place and normalise [z, y, x] voxels as ``spec`` says: the one input path of the engine,
    also used by training.preprocess to make the export's parity inputs."""
    where = placement(voxels.shape[1:], pixel_yx, spec)
    return PreparedVolume(
        stack=normalised_stack(voxels, is_hu, spec, where),
        where=where,
        context=spec.context_slices,
        stride=context_stride(spec, slice_mm),
    )


def scores_to_labels(
    scores: np.ndarray, out_shape: tuple[int, int], where: Placement | None = None, tumour_bias: float = 0.0
) -> np.ndarray:
    """Per-class scores [n, 3, h, w] resized (bilinear) to ``out_shape`` and arg-maxed: uint8 [n, H, W].
    ``tumour_bias`` is added to the tumour score first (a model's decoding threshold as a logit shift).

    ``where`` undoes the input placement: the part of the slice the model saw is cut out of
    the scores (the part it did not see, outside a cropped field of view, is background).

    Bilinear resizing is linear, so resizing the two differences to the background score
    gives the same arg-max as resizing all three scores, for two thirds of the work; a
    slice with no foreground at model resolution has none after resizing either, so it is
    skipped.
    """
    height, width = out_shape
    labels = np.zeros((scores.shape[0], height, width), dtype=np.uint8)
    differences = (scores[:, 1:] - scores[:, :1]).astype(np.float32)  # [n, 2, h, w]
    if tumour_bias:
        differences[:, 1] += tumour_bias
    if where is not None and not where.is_plain_resize:
        differences = _unplace(differences, where)
    same_size = differences.shape[2:] == (height, width)
    for i, diff in enumerate(differences):
        if not (diff > 0).any():
            continue
        hwc = np.ascontiguousarray(diff.transpose(1, 2, 0))
        if not same_size:
            hwc = cv2.resize(hwc, (width, height), interpolation=cv2.INTER_LINEAR)
        liver, tumour = hwc[:, :, 0], hwc[:, :, 1]
        slice_labels = labels[i]
        slice_labels[(liver > 0) & (liver >= tumour)] = Label.LIVER
        slice_labels[(tumour > 0) & (tumour > liver)] = Label.TUMOUR
    return labels


def scores_to_confidence(
    scores: np.ndarray, out_shape: tuple[int, int], where: Placement | None = None, logits: bool = True
) -> np.ndarray:
    """The model's per-pixel confidence: the margin between its two most probable classes (softmax of
    ``scores`` [n, C, h, w] unless they are already ``logits=False`` probabilities), 0 = a tie,
    1 = certain; resized (bilinear) to ``out_shape`` and returned as uint8 percent [n, H, W].

    The margin is taken at model resolution and then resized, which costs one channel's
    resize instead of three. What the model did not see (outside a cropped field of view) is
    background by construction and gets 100.
    """
    values = scores.astype(np.float32, copy=True)
    if logits:
        values -= values.max(axis=1, keepdims=True)
        np.exp(values, out=values)
        values /= values.sum(axis=1, keepdims=True)
    if values.shape[1] == 3:  # top - second = max - (1 - max - min), without sorting
        margin = 2.0 * values.max(axis=1) + values.min(axis=1) - values.sum(axis=1)
    else:
        top = np.partition(values, values.shape[1] - 2, axis=1)
        margin = top[:, -1] - top[:, -2]
    percent = np.clip(np.rint(margin * 100.0), 0, 100).astype(np.uint8)[:, None]  # [n, 1, h, w]
    if where is not None and not where.is_plain_resize:
        percent = _unplace(percent, where, fill=100).astype(np.uint8)
    height, width = out_shape
    if percent.shape[2:] == (height, width):
        return np.ascontiguousarray(percent[:, 0])
    return np.stack([cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR) for plane in percent[:, 0]])


def _unplace(values: np.ndarray, where: Placement, fill: float = -1.0e4) -> np.ndarray:
    """Per-pixel values [n, k, *size] back on the resized slice [n, k, *scaled]; unseen parts get
    ``fill`` (the default makes them background when the values are scores over background)."""
    out = np.full((*values.shape[:2], *where.scaled), fill, dtype=np.float32)
    source, target = where.regions()
    out[(slice(None), slice(None), *source)] = values[(slice(None), slice(None), *target)]
    return out


@dataclass(frozen=True)
class RoiBox:
    """The 3D box (z, y, x index ranges) a cascade's second stage sees."""

    z: slice
    y: slice
    x: slice

    @property
    def yx(self) -> tuple[slice, slice]:
        return (self.y, self.x)


def roi_box(mask: np.ndarray, spacing: tuple[float, float, float], margin_mm: float) -> RoiBox | None:
    """Box of a [z, y, x] foreground mask plus ``margin_mm`` on every side (None when empty)."""
    if not mask.any():
        return None
    box = []
    for axis, mm in enumerate(spacing):
        others = tuple(a for a in range(3) if a != axis)
        present = np.flatnonzero(mask.any(axis=others))
        pad = int(np.ceil(margin_mm / mm)) if mm > 0 else 0
        box.append(slice(max(int(present[0]) - pad, 0), min(int(present[-1]) + pad + 1, mask.shape[axis])))
    return RoiBox(*box)


def roi_input_spec(spec: InputSpec, box: RoiBox, pixel_yx: tuple[float, float]) -> InputSpec:
    """The spec a crop is placed with: its pixel size makes the box fit the input, aspect kept,
    never finer than the rule's ``min_pixel_mm``."""
    assert spec.roi is not None
    height_mm = (box.y.stop - box.y.start) * pixel_yx[0]
    width_mm = (box.x.stop - box.x.start) * pixel_yx[1]
    pixel_mm = max(height_mm / spec.size[0], width_mm / spec.size[1], spec.roi.min_pixel_mm)
    return replace(spec, pixel_mm=float(pixel_mm))
