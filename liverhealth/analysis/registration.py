"""Follow-up to baseline registration (SimpleITK): rigid then affine on the liver masks, then the
affine refined on the CT inside the baseline liver (plus a margin).

The masks bring the livers onto each other whatever the patient's position; the CT term then
aligns the vessels and the outline the masks only roughly agree on. The result maps baseline RAS
millimetres to follow-up RAS millimetres (ITK's fixed-to-moving convention), so the follow-up's
labels and CT can be resampled onto the baseline grid and its lesion centroids mapped back.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liverhealth.domain import CtVolume, Label
from liverhealth.errors import InputError
from liverhealth.text import one_line

_LPS = np.diag([-1.0, -1.0, 1.0])  # ITK's physical space is LPS, ours RAS


@dataclass(frozen=True)
class Registration:
    """``matrix`` (4 × 4) maps a baseline RAS point (mm) to the follow-up's; ``liver_dice`` is the
    overlap of the two livers on the baseline grid after registration (``before``: without it)."""

    matrix: np.ndarray
    liver_dice: float
    liver_dice_before: float
    seconds: float

    def to_followup(self, points_ras: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points_ras, dtype=np.float64))
        return points @ self.matrix[:3, :3].T + self.matrix[:3, 3]

    def to_baseline(self, points_ras: np.ndarray) -> np.ndarray:
        inverse = np.linalg.inv(self.matrix)
        points = np.atleast_2d(np.asarray(points_ras, dtype=np.float64))
        return points @ inverse[:3, :3].T + inverse[:3, 3]


def to_sitk(array: np.ndarray, affine: np.ndarray):
    """A [z, y, x] array on ``affine`` (voxel -> RAS) as a SimpleITK image in LPS space."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(np.ascontiguousarray(array))
    columns = np.asarray(affine, dtype=np.float64)[:3, :3]
    spacing = np.linalg.norm(columns, axis=0)
    image.SetSpacing(tuple(float(s) for s in spacing))
    image.SetDirection(tuple(float(v) for v in (_LPS @ (columns / spacing)).ravel()))
    image.SetOrigin(tuple(float(v) for v in _LPS @ np.asarray(affine, dtype=np.float64)[:3, 3]))
    return image


def _check(volume: CtVolume, labels: np.ndarray, side: str) -> None:
    if volume.spacing is None or volume.shape[0] < 3:
        raise InputError(
            f"The {side} is not a CT volume with known spacing ({volume.shape[0]} slice(s)); a follow-up "
            "comparison needs two CT volumes."
        )
    if not np.any(labels == Label.LIVER) and not np.any(labels == Label.TUMOUR):
        raise InputError(f"No liver was found on the {side}, so the two studies cannot be registered.")


def _transform_matrix(transform) -> np.ndarray:
    """A SimpleITK affine-like transform (LPS, fixed -> moving) as a 4 × 4 RAS matrix."""
    matrix = np.asarray(transform.GetMatrix(), dtype=np.float64).reshape(3, 3)
    centre = np.asarray(transform.GetCenter(), dtype=np.float64)
    translation = np.asarray(transform.GetTranslation(), dtype=np.float64)
    offset = translation + centre - matrix @ centre
    ras = np.eye(4)
    ras[:3, :3] = _LPS @ matrix @ _LPS
    ras[:3, 3] = _LPS @ offset
    return ras


def sitk_affine(matrix_ras: np.ndarray):
    """The inverse of ``_transform_matrix``: a 4 × 4 RAS matrix as a SimpleITK AffineTransform."""
    import SimpleITK as sitk

    transform = sitk.AffineTransform(3)
    transform.SetMatrix(tuple(float(v) for v in (_LPS @ matrix_ras[:3, :3] @ _LPS).ravel()))
    transform.SetTranslation(tuple(float(v) for v in _LPS @ matrix_ras[:3, 3]))
    return transform


def _method(metric: str, shrink: tuple[int, ...], iterations: int, mask=None):
    import SimpleITK as sitk

    method = sitk.ImageRegistrationMethod()
    if metric == "mi":
        method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=48)
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(0.25, seed=7)
    else:
        method.SetMetricAsMeanSquares()
        method.SetMetricSamplingStrategy(method.RANDOM)
        method.SetMetricSamplingPercentage(0.2, seed=7)
    if mask is not None:
        method.SetMetricFixedMask(mask)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(
        learningRate=1.0, minStep=1e-4, numberOfIterations=iterations, gradientMagnitudeTolerance=1e-8
    )
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel(list(shrink))
    method.SetSmoothingSigmasPerLevel([float(s) for s in shrink])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOff()
    return method


COARSE_MM = 2.0  # the CT stage's grid: fine enough for sub-millimetre error, small enough for seconds
MASK_MM = 4.0  # the mask stages' grid (the smoothed masks hold no finer detail)
BOX_MARGIN_MM = 30.0


def _liver_box(labels: np.ndarray, volume: CtVolume) -> tuple[slice, ...]:
    """The liver's bounding box plus ``BOX_MARGIN_MM``, in index space ([z, y, x])."""
    from liverhealth.imaging.geometry import bounding_box

    box = bounding_box(labels > 0)
    grow = [int(np.ceil(BOX_MARGIN_MM / s)) for s in volume.spacing]
    return tuple(
        slice(max(b.start - g, 0), min(b.stop + g, n)) for b, g, n in zip(box, grow, volume.shape, strict=True)
    )


def _coarse(
    array: np.ndarray, volume: CtVolume, box: tuple[slice, ...], step_mm: float = COARSE_MM, nearest: bool = False
):
    """``array`` (on ``volume``'s grid) cropped to ``box`` and resampled to ``step_mm`` voxels."""
    import SimpleITK as sitk

    start = np.array([box[2].start, box[1].start, box[0].start, 1.0])
    affine = np.array(volume.affine, dtype=np.float64)
    affine[:3, 3] = (affine @ start)[:3]
    image = to_sitk(array[box], affine)
    size = [max(1, round(n * s / step_mm)) for n, s in zip(image.GetSize(), image.GetSpacing(), strict=True)]
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    return sitk.Resample(
        image, size, sitk.Transform(), interpolator, image.GetOrigin(), [step_mm] * 3, image.GetDirection(),
        0.0, image.GetPixelID(),
    )  # fmt: skip


def liver_dice(baseline_labels: np.ndarray, followup_on_baseline: np.ndarray) -> float:
    a, b = baseline_labels > 0, followup_on_baseline > 0
    total = int(a.sum()) + int(b.sum())
    return 2.0 * int(np.logical_and(a, b).sum()) / total if total else 0.0


def register(
    baseline: CtVolume, baseline_labels: np.ndarray, followup: CtVolume, followup_labels: np.ndarray
) -> Registration:
    """Register the follow-up onto the baseline (see the module's docstring); a pair SimpleITK
    cannot register is refused in one line."""
    _check(baseline, baseline_labels, "baseline")
    _check(followup, followup_labels, "follow-up")
    for volume, labels, side in ((baseline, baseline_labels, "baseline"), (followup, followup_labels, "follow-up")):
        extent = [(b.stop - b.start) * s for b, s in zip(_liver_box(labels, volume), volume.spacing, strict=True)]
        if min(extent) < 4 * MASK_MM:
            raise InputError(
                f"The {side} covers too little of the liver ({min(extent):.0f} mm along one axis) to register; "
                "a follow-up comparison needs CT volumes that cover the liver."
            )
    try:
        return _register(baseline, baseline_labels, followup, followup_labels)
    except RuntimeError as exc:
        reason = one_line(exc)[-160:]
        raise InputError(
            f"The two studies could not be registered ({reason}). Check that both cover the liver."
        ) from exc


def _register(
    baseline: CtVolume, baseline_labels: np.ndarray, followup: CtVolume, followup_labels: np.ndarray
) -> Registration:
    import time

    import SimpleITK as sitk

    started = time.perf_counter()
    sides = ((baseline, baseline_labels), (followup, followup_labels))
    boxes = [_liver_box(labels, volume) for volume, labels in sides]
    masks = [
        sitk.SmoothingRecursiveGaussian(_coarse((labels > 0).astype(np.float32), volume, box, MASK_MM), 3.0)
        for (volume, labels), box in zip(sides, boxes, strict=True)
    ]
    initial = sitk.CenteredTransformInitializer(
        masks[0], masks[1], sitk.Euler3DTransform(), sitk.CenteredTransformInitializerFilter.MOMENTS
    )
    rigid = _method("ms", (2, 1), 60)
    rigid.SetInitialTransform(initial, inPlace=True)
    rigid.Execute(masks[0], masks[1])
    affine = sitk.AffineTransform(3)
    affine.SetCenter(initial.GetCenter())
    affine.SetMatrix(initial.GetMatrix())
    affine.SetTranslation(initial.GetTranslation())
    on_masks = _method("ms", (2, 1), 60)
    on_masks.SetInitialTransform(affine, inPlace=True)
    on_masks.Execute(masks[0], masks[1])
    cts = [
        _coarse(np.clip(volume.voxels, -200, 300).astype(np.float32), volume, box)
        for volume, box in zip((baseline, followup), boxes, strict=True)
    ]
    inside = _coarse((baseline_labels > 0).astype(np.uint8), baseline, boxes[0], COARSE_MM, nearest=True)
    on_ct = _method("mi", (2, 1), 100, sitk.BinaryDilate(inside, [3, 3, 3]))
    on_ct.SetInitialTransform(affine, inPlace=True)
    on_ct.Execute(cts[0], cts[1])
    matrix = _transform_matrix(affine)
    identity = np.eye(4)
    after = resample_labels(followup_labels, followup, baseline, matrix)
    before = resample_labels(followup_labels, followup, baseline, identity)
    return Registration(
        matrix=matrix,
        liver_dice=round(liver_dice(baseline_labels, after), 4),
        liver_dice_before=round(liver_dice(baseline_labels, before), 4),
        seconds=round(time.perf_counter() - started, 2),
    )


def _grid(volume: CtVolume, pixel_id: int):
    """An empty SimpleITK image with ``volume``'s size and geometry (the resampling target)."""
    import SimpleITK as sitk

    geometry = to_sitk(np.zeros((1, 1, 1), np.uint8), volume.affine)
    image = sitk.Image([int(n) for n in volume.shape[::-1]], pixel_id)
    image.SetSpacing(geometry.GetSpacing())
    image.SetDirection(geometry.GetDirection())
    image.SetOrigin(geometry.GetOrigin())
    return image


def _resample(
    array: np.ndarray, source: CtVolume, target: CtVolume, matrix: np.ndarray, nearest: bool, fill: float
) -> np.ndarray:
    import SimpleITK as sitk

    moving = to_sitk(array, source.affine)
    interpolator = sitk.sitkNearestNeighbor if nearest else sitk.sitkLinear
    reference = _grid(target, moving.GetPixelID())
    out = sitk.Resample(moving, reference, sitk_affine(matrix), interpolator, fill, moving.GetPixelID())
    return sitk.GetArrayFromImage(out)


def resample_labels(labels: np.ndarray, source: CtVolume, target: CtVolume, matrix: np.ndarray) -> np.ndarray:
    """``source``'s label map on ``target``'s grid (nearest neighbour), through ``matrix``
    (target RAS -> source RAS)."""
    return _resample(labels.astype(np.uint16), source, target, matrix, True, 0).astype(labels.dtype)


def resample_ct(source: CtVolume, target: CtVolume, matrix: np.ndarray) -> np.ndarray:
    """``source``'s voxels on ``target``'s grid (linear; outside the source: its minimum)."""
    fill = float(source.voxels.min())
    return _resample(source.voxels.astype(np.float32), source, target, matrix, False, fill)
