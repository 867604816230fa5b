"""Reader for ``lits_jpg/`` (data README, section 4): 26 LiTS volumes stored as windowed JPEG slices.

A volume comes back as the app's own ``CtVolume`` (HU rebuilt from the JPEG's G channel, the
[−40, 160] HU window; optionally refined from R, the [−45, 105] window, where R is inside its
range) with its label map, so training samples and evaluation go through the same placement
and normalisation code as a DICOM series in the app. Traps handled here:

- only every 2nd original slice is stored: the stored slices are stacked in increasing S
  (feet -> head) and the z spacing is twice the original slice step, so a neighbour in the
  array is S±2;
- HU outside [−40, 160] is lost: air and fat come back as −40 HU, exactly what a full-HU CT
  clipped to that window looks like (so any model reading these must use a window inside it);
- 13 volumes have estimated spacing (±11 %): ``LitsVolume.spacing_estimated`` says so;
- orientation: anterior up, patient right on the image left, as the app's DICOM arrays.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from liverhealth.domain import CtVolume, SourceInfo
from liverhealth.imaging.geometry import dicom_affine

G_WINDOW = (-40.0, 160.0)
R_WINDOW = (-45.0, 105.0)


@dataclass(frozen=True)
class LitsVolume:
    """One ``lits_jpg`` volume: CT, labels (0/1/2) and what is known of its geometry."""

    case: str
    volume: CtVolume
    labels: np.ndarray
    slice_indices: tuple[int, ...]
    source: str
    spacing_estimated: bool

    @property
    def is_ircadb(self) -> bool:
        return self.source.startswith("3D-IRCADb")


def lits_volume_ids(root: Path) -> list[int]:
    """The LiTS volume numbers listed in ``root/volumes.csv``."""
    return [int(row["volume"]) for row in _rows(root)]


def _rows(root: Path) -> list[dict[str, str]]:
    with open(Path(root) / "volumes.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def hu_from_jpeg(bgr: np.ndarray, use_red: bool = False) -> np.ndarray:
    """HU (float32 [y, x]) of one windowed slice: G = [−40, 160]; R = [−45, 105] where 0 < R < 255."""
    green = bgr[:, :, 1].astype(np.float32)
    hu = green * np.float32((G_WINDOW[1] - G_WINDOW[0]) / 255.0) + np.float32(G_WINDOW[0])
    if use_red:
        red = bgr[:, :, 2].astype(np.float32)
        inside = (red > 0) & (red < 255)
        hu[inside] = red[inside] * np.float32((R_WINDOW[1] - R_WINDOW[0]) / 255.0) + np.float32(R_WINDOW[0])
    return hu


def read_lits_volume(root: Path, volume_id: int, use_red: bool = False) -> LitsVolume:
    """The stored slices of LiTS volume ``volume_id`` as a CtVolume (feet -> head) and its labels."""
    root = Path(root)
    row = next((r for r in _rows(root) if int(r["volume"]) == volume_id), None)
    if row is None:
        raise ValueError(f"LiTS volume {volume_id} is not in {root / 'volumes.csv'}")
    first, last = (int(v) for v in row["image_slice_range"].split("-"))
    indices = tuple(range(first, last + 1, 2))
    slices, labels = [], []
    for s in indices:
        image = cv2.imread(str(root / "images" / f"volume-{volume_id}_slice_{s}.jpg"), cv2.IMREAD_COLOR)
        mask = cv2.imread(str(root / "masks" / f"volume-{volume_id}_slice_{s}_mask.png"), cv2.IMREAD_UNCHANGED)
        if image is None or mask is None:
            raise ValueError(f"LiTS volume {volume_id}: slice {s} is missing from {root}")
        slices.append(hu_from_jpeg(image, use_red))
        labels.append(mask.astype(np.uint8))
    voxels = np.clip(np.rint(np.stack(slices)), -1024, 3071).astype(np.int16)
    pixel = float(row["inplane_spacing_mm"])
    step = 2.0 * float(row["slice_step_mm"])  # every 2nd original slice is stored
    # Pixel (row, col) of stored slice S lies at DICOM LPS (col * ps, row * ps, S * step).
    affine = dicom_affine(
        np.array([0.0, 0.0, first * float(row["slice_step_mm"])]),
        np.array([1.0, 0, 0, 0, 1.0, 0]),
        (pixel, pixel),
        np.array([0.0, 0.0, step]),
    )
    estimated = row["inplane_status"].startswith("estimated") or row["slice_step_status"].startswith("estimated")
    source = SourceInfo(
        format="LiTS JPEG slices",
        path=str(root),
        description=(
            f"LiTS volume {volume_id}, {len(indices)} stored slices (every 2nd), HU rebuilt from the "
            f"[-40, 160] window{' and R' if use_red else ''}"
        ),
        slice_count=len(indices),
        modality="CT",
        notes=("spacing estimated (±11 %)",) if estimated else (),
    )
    volume = CtVolume(voxels=voxels, spacing=(step, pixel, pixel), affine=affine, is_hu=True, source=source)
    return LitsVolume(
        case=f"lits{volume_id:03d}",
        volume=volume,
        labels=np.stack(labels),
        slice_indices=indices,
        source=row["source"],
        spacing_estimated=estimated,
    )
