"""3D-IRCADb-01 cases: the CT and a label map built from its per-structure mask series.

Label 1 is the ``liver`` mask, label 2 the union of the ``livertumorNN`` masks (written after
liver, so it wins). Other structures, such as patient 7's ``tumor`` (outside the liver) or
``liverkyst`` (a cyst), stay 0: they are not liver tumours.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from liverhealth.domain import CtVolume, Label
from liverhealth.errors import InputError
from liverhealth.imaging.dicom import load_dicom_zip, read_mask_series

MASKS_ROOT = "MASKS_DICOM/"


def mask_structures(masks_zip: Path) -> list[str]:
    """Names of the structures in an IRCADb MASKS_DICOM.zip."""
    with zipfile.ZipFile(masks_zip) as archive:
        names = {
            n[len(MASKS_ROOT) :].split("/", 1)[0]
            for n in archive.namelist()
            if n.startswith(MASKS_ROOT) and n.count("/") >= 2
        }
    return sorted(n for n in names if n)


def ircadb_structure(case_dir: Path, name: str) -> np.ndarray:
    """Boolean [z, y, x] mask of one named IRCADb structure (e.g. 'tumor', 'portalvein')."""
    masks_zip = Path(case_dir) / "MASKS_DICOM.zip"
    structures = mask_structures(masks_zip)
    if name not in structures:
        raise InputError(f"{masks_zip} has no '{name}' mask (found {', '.join(structures)}).")
    return read_mask_series(masks_zip, f"{MASKS_ROOT}{name}/")


def ircadb_labels(case_dir: Path, shape: tuple[int, int, int]) -> np.ndarray:
    """uint8 label map (0/1/2) of an IRCADb case, on the CT's [z, y, x] grid."""
    masks_zip = Path(case_dir) / "MASKS_DICOM.zip"
    labels = np.zeros(shape, dtype=np.uint8)
    labels[ircadb_structure(case_dir, "liver")] = Label.LIVER
    for name in mask_structures(masks_zip):
        if name.startswith("livertumor"):
            labels[read_mask_series(masks_zip, f"{MASKS_ROOT}{name}/")] = Label.TUMOUR
    return labels


def load_ircadb_case(case_dir: Path) -> tuple[CtVolume, np.ndarray]:
    """The CT of an IRCADb case folder and its label map."""
    volume = load_dicom_zip(Path(case_dir) / "PATIENT_DICOM.zip")
    labels = ircadb_labels(case_dir, volume.shape)
    return volume, labels
