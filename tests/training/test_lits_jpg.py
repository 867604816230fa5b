"""The lits_jpg reader on the real slices: HU from the G window, geometry, labels, orientation."""

from __future__ import annotations

import csv

import cv2
import numpy as np
import pytest

from liverhealth.domain import spacing_from_affine
from liverhealth.inference.manifest import InputSpec
from liverhealth.inference.preprocess import to_unit
from training.lits_jpg import hu_from_jpeg, lits_volume_ids, read_lits_volume


@pytest.fixture(scope="module")
def lits_root(data_root):
    return data_root / "lits_jpg"


def test_every_volume_of_the_csv_is_listed(lits_root):
    with open(lits_root / "volumes.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert lits_volume_ids(lits_root) == [int(r["volume"]) for r in rows] and len(rows) == 26


def test_ircad_volume_geometry_labels_and_window(lits_root):
    lits = read_lits_volume(lits_root, 29)  # IRCAD patient 2: 0.782 mm, 1.6 mm step, images S = 36..164
    volume = lits.volume
    assert lits.slice_indices == tuple(range(36, 165, 2)) and volume.shape == (65, 512, 512)
    assert volume.spacing == pytest.approx((3.2, 0.782, 0.782))  # every 2nd slice is stored
    assert spacing_from_affine(volume.affine) == pytest.approx(volume.spacing)
    assert not lits.spacing_estimated and lits.is_ircadb
    assert int(volume.voxels.min()) == -40 and int(volume.voxels.max()) == 160
    assert set(np.unique(lits.labels)) == {0, 1, 2}
    # the README's count of tumour slices for this volume
    assert int((lits.labels == 2).reshape(65, -1).any(axis=1).sum()) == 11
    # the liver is on the image left (patient right), as in the app's DICOM arrays
    liver_columns = np.flatnonzero((lits.labels > 0).any(axis=(0, 1)))
    assert liver_columns.mean() < 256


def test_estimated_spacing_is_flagged(lits_root):
    lits = read_lits_volume(lits_root, 4)
    assert lits.spacing_estimated and lits.volume.spacing == pytest.approx((1.44, 0.7546, 0.7546))
    assert lits.volume.source.notes == ("spacing estimated (±11 %)",)


def test_model_input_from_rebuilt_hu_is_the_g_channel(lits_root):
    """Through the app's to_unit with the [-40, 160] window the input is G / 255 (within rounding)."""
    image = cv2.imread(str(lits_root / "images" / "volume-29_slice_100.jpg"), cv2.IMREAD_COLOR)
    hu = np.rint(hu_from_jpeg(image)).astype(np.int16)
    spec = InputSpec(context_slices=0, size=(8, 8), hu_window=(-40.0, 160.0), mean=0.5, std=0.5)
    unit = to_unit(hu, True, spec.hu_window)
    assert float(np.abs(unit * 255 - image[:, :, 1]).max()) <= 0.65
    refined = hu_from_jpeg(image, use_red=True)
    inside = (image[:, :, 2] > 0) & (image[:, :, 2] < 255)
    assert np.allclose(refined[inside], image[:, :, 2][inside].astype(float) * 150 / 255 - 45, atol=1e-3)
