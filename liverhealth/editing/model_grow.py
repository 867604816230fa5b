"""Outline a lesion from one click with the segmentation model (the model method of add_lesion).

The model the CT was segmented with is run again, but only on the slices around the click and on the
same in-plane box and pixel size a cascade gives it (the liver's box plus the model's margin, so the
lesion looks to it as it did in the first run), and its tumour probability is thresholded lower than
the arg-max did: a lesion it was unsure of is kept. The part connected to the click, inside the liver
outline dilated by ``liver_margin_mm``, is the lesion. When it reaches the top or bottom of the
slices looked at, more slices are run, up to ``max_depth_mm`` either side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from liverhealth.domain import CtVolume
from liverhealth.editing.grid import Index, check_seed, check_volume, require_3d, voxel_mm
from liverhealth.editing.grow import allowed_region, component_at
from liverhealth.errors import InputError, ModelError
from liverhealth.inference.engine import get_session
from liverhealth.inference.manifest import InputSpec, Manifest, ModelSpec
from liverhealth.inference.postprocess import fill_holes_per_slice
from liverhealth.inference.preprocess import Placement, context_stride, prepare_volume, roi_box, roi_input_spec

BATCH = 4  # slices per model call, as the engine batches them


@dataclass(frozen=True)
class ModelGrowOptions:
    """The model method's settings. ``threshold`` and ``liver_margin_mm`` were chosen on 21 lits_jpg
    patients, each segmented by the fold model that held it out (``bench/bench_editing.py``); the
    others are set, not tuned."""

    threshold: float = 0.05  # tumour where the model's tumour probability is above this
    depth_mm: float = 15.0  # slices run either side of the click at first
    max_depth_mm: float = 100.0  # at most this far either side, however far the lesion reaches
    liver_margin_mm: float = 6.0  # how far outside the liver outline the lesion may reach
    reach_mm: float = 5.0  # a click just beside what the model sees takes the nearest part within this

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class _View:
    """What the model sees: the in-plane box and the input spec it is placed with."""

    rows: slice
    cols: slice
    spec: InputSpec
    pixel_yx: tuple[float, float] | None
    slice_mm: float | None


def _view(volume: CtVolume, labels: np.ndarray, spec: ModelSpec) -> _View:
    """The cascade's in-plane box (the liver outline plus the model's margin) or, for a model without
    one, the whole slice."""
    pixel_yx = (volume.spacing[1], volume.spacing[2]) if volume.spacing else None
    slice_mm = volume.spacing[0] if volume.spacing else None
    roi = spec.input.roi
    if roi is None:
        return _View(slice(0, labels.shape[1]), slice(0, labels.shape[2]), spec.input, pixel_yx, slice_mm)
    box = roi_box(labels > 0, voxel_mm(volume.spacing), roi.margin_mm)
    if box is None:
        raise InputError("There is no liver outlined to look for the lesion in; segment or outline the liver first.")
    fine = roi_input_spec(spec.input, box, pixel_yx or (1.0, 1.0))
    return _View(box.y, box.x, fine, pixel_yx or (1.0, 1.0), slice_mm)


def tumour_probability(volume: CtVolume, spec: ModelSpec, view: _View, z_range: tuple[int, int]) -> np.ndarray:
    """The model's tumour probability on slices ``z_range`` of the view's box, float32 [z, rows, cols]."""
    session = get_session(spec)
    stride = context_stride(view.spec, view.slice_mm)
    reach = view.spec.context_slices * stride
    start, stop = z_range
    lo, hi = max(start - reach, 0), min(stop + reach, volume.shape[0])
    crop = volume.voxels[lo:hi, view.rows, view.cols]
    prepared = prepare_volume(crop, volume.is_hu, view.pixel_yx, view.slice_mm, view.spec)
    height, width = crop.shape[1:]
    out = np.empty((stop - start, height, width), dtype=np.float32)
    name = session.get_inputs()[0].name
    wanted = np.arange(start - lo, stop - lo)
    for first in range(0, len(wanted), BATCH):
        indices = wanted[first : first + BATCH]
        try:
            scores = session.run(None, {name: prepared.batch(indices)})[0]
        except Exception as exc:  # onnxruntime's errors are not typed
            raise ModelError(f"Model '{spec.model_id}' failed: {str(exc).splitlines()[0][:200]}") from exc
        if scores.ndim != 4 or scores.shape[1] != 3 or not np.isfinite(scores).all():
            raise ModelError(f"Model '{spec.model_id}' returned unusable scores {scores.shape}; reinstall it.")
        out[first : first + len(indices)] = _probability_on_crop(scores, spec, prepared.where, (height, width))
    return out


def _probability_on_crop(scores: np.ndarray, spec: ModelSpec, where: Placement, shape: tuple[int, int]) -> np.ndarray:
    """Tumour probability [n, h, w] of model scores, the input placement undone and resized to ``shape``."""
    values = scores.astype(np.float32)
    if spec.output != "probabilities":
        values = values - values.max(axis=1, keepdims=True)
        np.exp(values, out=values)
        values /= values.sum(axis=1, keepdims=True)
    tumour = values[:, 2]
    if not where.is_plain_resize:
        placed = np.zeros((tumour.shape[0], *where.scaled), dtype=np.float32)
        source, target = where.regions()
        placed[(slice(None), *source)] = tumour[(slice(None), *target)]
        tumour = placed
    height, width = shape
    return np.stack([cv2.resize(plane, (width, height), interpolation=cv2.INTER_LINEAR) for plane in tumour])


def model_region(
    volume: CtVolume,
    labels: np.ndarray,
    seed: Index,
    manifest: Manifest,
    model_id: str | None = None,
    options: ModelGrowOptions | None = None,
) -> tuple[tuple[slice, slice, slice], np.ndarray]:
    """The lesion the model outlines at ``seed`` (z, y, x): its box and boolean mask on the box."""
    options = options or ModelGrowOptions()
    check_volume(volume, labels)
    require_3d(labels.shape, "Outlining a lesion with the model")
    seed = check_seed(labels.shape, seed)
    spec = manifest.get(model_id)
    view = _view(volume, labels, spec)
    if not (view.rows.start <= seed[1] < view.rows.stop and view.cols.start <= seed[2] < view.cols.stop):
        raise InputError(f"The click (z, y, x) = {seed} is not in or near the liver; click on the lesion.")
    sizes = voxel_mm(volume.spacing)

    def allowed(start: int, stop: int) -> np.ndarray:
        return allowed_region(labels[start:stop, view.rows, view.cols], options.liver_margin_mm, sizes)

    local_seed = (seed[0], seed[1] - view.rows.start, seed[2] - view.cols.start)
    if not allowed(seed[0], seed[0] + 1)[(0, *local_seed[1:])]:
        raise InputError(
            f"The click (z, y, x) = {seed} is not in the liver (or within {options.liver_margin_mm:g} mm of it); "
            "click on the lesion."
        )
    step = max(int(np.ceil(options.depth_mm / sizes[0])), 1)
    limit = max(int(np.ceil(options.max_depth_mm / sizes[0])), step)
    start, stop = max(seed[0] - step, 0), min(seed[0] + step + 1, labels.shape[0])
    probability = tumour_probability(volume, spec, view, (start, stop))
    while True:
        inside = (probability > options.threshold) & allowed(start, stop)
        region = component_at(inside, (seed[0] - start, *local_seed[1:]), options.reach_mm, sizes)
        if region is None:
            raise InputError(
                f"The model sees no lesion at the click (z, y, x) = {seed}; outline it with the brush or grow it "
                "by density (method 'grow')."
            )
        grow_down = region[0].any() and start > 0 and seed[0] - start < limit
        grow_up = region[-1].any() and stop < labels.shape[0] and stop - 1 - seed[0] < limit
        if not (grow_down or grow_up):
            break
        if grow_down:
            new_start = max(start - step, 0, seed[0] - limit)
            probability = np.concatenate([tumour_probability(volume, spec, view, (new_start, start)), probability])
            start = new_start
        if grow_up:
            new_stop = min(stop + step, labels.shape[0], seed[0] + limit + 1)
            probability = np.concatenate([probability, tumour_probability(volume, spec, view, (stop, new_stop))])
            stop = new_stop
    region = fill_holes_per_slice(region) & allowed(start, stop)
    return (slice(start, stop), view.rows, view.cols), region


def model_record(manifest: Manifest, model_id: str | None) -> dict[str, str]:
    """The model an outline came from, for the edit's record."""
    spec = manifest.get(model_id)
    return {"model_id": spec.model_id, "model_sha256": spec.sha256}
