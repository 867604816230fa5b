"""Slices to model input and model output back to labels, as the manifest specifies.

Shared by the engine and the training package, so a model sees CT at inference exactly
as it saw it in training.
"""

from __future__ import annotations

import cv2
import numpy as np

from liverhealth.imaging.display import grey_to_unit
from liverhealth.inference.manifest import InputSpec


def to_unit(voxels: np.ndarray, is_hu: bool, hu_window: tuple[float, float]) -> np.ndarray:
    """HU clipped to the window and scaled to [0, 1]; a raster's grey 0..255 maps linearly.

    A raster is taken as already windowed: grey 0 is the window's low end, 255 its high end.
    """
    if not is_hu:
        return grey_to_unit(voxels)
    low, high = hu_window
    unit = (np.asarray(voxels, dtype=np.float32) - np.float32(low)) * np.float32(1.0 / (high - low))
    return np.clip(unit, 0.0, 1.0, out=unit)


def resize_stack(stack: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize every [y, x] slice of a [z, y, x] float stack to ``size`` = (height, width)."""
    height, width = size
    if stack.shape[1:] == (height, width):
        return np.ascontiguousarray(stack, dtype=np.float32)
    shrinking = stack.shape[1] > height or stack.shape[2] > width
    method = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return np.stack([cv2.resize(s, (width, height), interpolation=method) for s in stack])


def normalised_stack(voxels: np.ndarray, is_hu: bool, spec: InputSpec) -> np.ndarray:
    """The whole volume at the model's size and intensity scale, float32 [z, h, w]."""
    unit = to_unit(voxels, is_hu, spec.hu_window)
    resized = resize_stack(unit, spec.size)
    resized -= np.float32(spec.mean)
    resized *= np.float32(1.0 / spec.std)
    return resized


def gather_context(stack: np.ndarray, indices: np.ndarray, context: int) -> np.ndarray:
    """Batch [n, 2k+1, h, w] of slices z-k..z+k around each index, edges repeated."""
    offsets = np.arange(-context, context + 1)
    picks = np.clip(indices[:, None] + offsets[None, :], 0, stack.shape[0] - 1)
    return np.ascontiguousarray(stack[picks])


def scores_to_labels(scores: np.ndarray, out_shape: tuple[int, int]) -> np.ndarray:
    """Per-class scores [n, 3, h, w] resized (bilinear) to ``out_shape`` and arg-maxed: uint8 [n, H, W].

    Bilinear resizing is linear, so resizing the two differences to the background score
    gives the same arg-max as resizing all three scores, for two thirds of the work; a
    slice with no foreground at model resolution has none after resizing either, so it is
    skipped.
    """
    height, width = out_shape
    labels = np.zeros((scores.shape[0], height, width), dtype=np.uint8)
    differences = (scores[:, 1:] - scores[:, :1]).astype(np.float32)  # [n, 2, h, w]
    same_size = differences.shape[2:] == (height, width)
    for i, diff in enumerate(differences):
        if not (diff > 0).any():
            continue
        hwc = np.ascontiguousarray(diff.transpose(1, 2, 0))
        if not same_size:
            hwc = cv2.resize(hwc, (width, height), interpolation=cv2.INTER_LINEAR)
        liver, tumour = hwc[:, :, 0], hwc[:, :, 1]
        slice_labels = labels[i]
        slice_labels[(liver > 0) & (liver >= tumour)] = 1
        slice_labels[(tumour > 0) & (tumour > liver)] = 2
    return labels
