"""DICOM geometry that used to come out silently wrong, built from a real series (3Dircadb1.1).

Each test writes a changed copy of 20 real slices and checks, in world coordinates (voxels and
affine against the original's), that the reader fixes the geometry or refuses it.
"""

from __future__ import annotations

import copy
import io
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from liverhealth.errors import InputError
from liverhealth.imaging import load
from liverhealth.imaging.geometry import index_to_ras

FIRST, COUNT = 60, 20  # slices image_60 .. image_79 of 3Dircadb1.1 (z = 96.0 .. 126.4 mm)


@pytest.fixture(scope="module")
def originals(data_root) -> list[pydicom.Dataset]:
    with zipfile.ZipFile(data_root / "3Dircadb1.1" / "PATIENT_DICOM.zip") as archive:
        return [
            pydicom.dcmread(io.BytesIO(archive.read(f"PATIENT_DICOM/image_{n}"))) for n in range(FIRST, FIRST + COUNT)
        ]


@pytest.fixture(scope="module")
def reference(originals, tmp_path_factory):
    folder = tmp_path_factory.mktemp("original")
    _write(folder, [copy.deepcopy(ds) for ds in originals])
    return load(folder)


def _write(folder: Path, datasets: list[pydicom.Dataset]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, ds in enumerate(datasets):
        ds.save_as(folder / f"slice{i:03d}.dcm", enforce_file_format=True)
    return folder


def _copies(originals) -> list[pydicom.Dataset]:
    return [copy.deepcopy(ds) for ds in originals]


def test_reversed_and_renumbered_files_give_the_same_volume(originals, reference, tmp_path):
    datasets = _copies(originals)[::-1]
    for number, ds in enumerate(datasets):
        ds.InstanceNumber = number + 1  # runs against z
    volume = load(_write(tmp_path / "s", datasets))
    assert np.array_equal(volume.voxels, reference.voxels) and np.allclose(volume.affine, reference.affine)
    assert volume.spacing == pytest.approx((1.6, 0.57, 0.57), abs=1e-6)


def test_no_positions_use_the_slice_spacing_and_say_so(originals, reference, tmp_path):
    datasets = _copies(originals)
    for ds in datasets:
        del ds.ImagePositionPatient
    volume = load(_write(tmp_path / "s", datasets))
    assert volume.spacing[0] == pytest.approx(1.6, abs=1e-6)  # not 1.0 from InstanceNumber
    assert np.array_equal(volume.voxels, reference.voxels)
    assert any("no ImagePositionPatient" in note for note in volume.source.notes)
    for ds in datasets:
        del ds.SliceThickness
        del ds.SpacingBetweenSlices
    with pytest.raises(InputError, match="spacing is unknown"):
        load(_write(tmp_path / "t", datasets))


def test_one_missing_slice_is_resampled_on_the_acquired_positions(originals, reference, tmp_path):
    datasets = _copies(originals)
    del datasets[7]
    volume = load(_write(tmp_path / "s", datasets))
    assert volume.shape == reference.shape and np.allclose(volume.affine, reference.affine, atol=1e-4)
    kept = [i for i in range(COUNT) if i != 7]
    assert np.array_equal(volume.voxels[kept], reference.voxels[kept])  # acquired slices land where acquired
    between = (reference.voxels[6].astype(float) + reference.voxels[8]) / 2
    assert np.abs(volume.voxels[7] - between).max() <= 0.5 + 1e-6
    assert any("resampled onto a regular 1.60 mm grid" in note for note in volume.source.notes)


def test_a_wide_gap_is_refused(originals, tmp_path):
    datasets = _copies(originals)
    del datasets[5:9]
    with pytest.raises(InputError, match=r"slices are missing between 102\.4 and 110\.4 mm"):
        load(_write(tmp_path / "s", datasets))


def test_duplicated_slice_is_dropped(originals, reference, tmp_path):
    datasets = _copies(originals)
    twin = copy.deepcopy(datasets[10])
    twin.SOPInstanceUID = generate_uid()
    volume = load(_write(tmp_path / "s", [*datasets, twin]))
    assert np.array_equal(volume.voxels, reference.voxels)
    assert "1 duplicated slice(s) dropped" in volume.source.notes


def test_two_acquisitions_in_one_series(originals, reference, tmp_path):
    datasets = _copies(originals)
    other = _copies(originals[:10])
    for ds in other:  # a second reconstruction with another pixel size, same SeriesInstanceUID
        ds.PixelSpacing = [0.7, 0.7]
        ds.SOPInstanceUID = generate_uid()
    volume = load(_write(tmp_path / "s", datasets + other))
    assert np.array_equal(volume.voxels, reference.voxels)
    assert any("another acquisition" in note for note in volume.source.notes)
    overlapping = _copies(originals[:5])
    for ds in overlapping:  # same geometry, other pixels, same positions
        ds.SOPInstanceUID = generate_uid()
        ds.PixelData = (ds.pixel_array + 100).astype(np.int16).tobytes()
    with pytest.raises(InputError, match="mixes two acquisitions"):
        load(_write(tmp_path / "t", datasets + overlapping))


def _resliced(originals, reference, plane: str) -> list[pydicom.Dataset]:
    """A sagittal or coronal series holding the same voxels as a 48 x 40 crop of the reference."""
    crop = reference.voxels[:, 200:240, 150:198]  # [z, y, x]
    pixel = 0.57
    z_top = 96.0 + 1.6 * (COUNT - 1)
    datasets = []
    count = crop.shape[2] if plane == "sagittal" else crop.shape[1]
    for k in range(count):
        ds = copy.deepcopy(originals[0])
        if plane == "sagittal":  # rows run feet-ward (-z), columns posterior (+y); slices along +x
            image = crop[::-1, :, k]
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
            ds.ImagePositionPatient = [(150 + k) * pixel, 200 * pixel, z_top]
            ds.PixelSpacing = [1.6, pixel]
        else:  # coronal: rows feet-ward, columns to the patient's left (+x); slices along +y
            image = crop[::-1, k, :]
            ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
            ds.ImagePositionPatient = [150 * pixel, (200 + k) * pixel, z_top]
            ds.PixelSpacing = [1.6, pixel]
        ds.Rows, ds.Columns = image.shape
        ds.PixelData = np.ascontiguousarray(image).astype(np.int16).tobytes()
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = count - k
        datasets.append(ds)
    return datasets


@pytest.mark.parametrize("plane", ["sagittal", "coronal"])
def test_sagittal_and_coronal_series_are_reoriented_to_axial(originals, reference, tmp_path, plane):
    volume = load(_write(tmp_path / plane, _resliced(originals, reference, plane)))
    assert np.array_equal(volume.voxels, reference.voxels[:, 200:240, 150:198])
    # the same voxel is at the same place in the patient
    for index in ((0, 0, 0), (19, 39, 47), (7, 13, 21)):
        original = index_to_ras(reference.affine, (index[0], index[1] + 200, index[2] + 150))
        assert index_to_ras(volume.affine, index) == pytest.approx(original, abs=1e-3)
    assert any(f"{plane} series" in note for note in volume.source.notes)


def test_gantry_tilt_uses_the_true_voxel_volume(originals, reference, tmp_path):
    datasets = _copies(originals)
    shift = 1.6 * np.tan(np.radians(20))
    for k, ds in enumerate(datasets):
        ds.ImagePositionPatient = [0.0, k * shift, 96.0 + 1.6 * k]
    volume = load(_write(tmp_path / "s", datasets))
    assert np.array_equal(volume.voxels, reference.voxels)
    assert volume.voxel_mm3 == pytest.approx(0.57 * 0.57 * 1.6, rel=1e-4)  # not 0.57² × 1.70
    assert np.prod(volume.spacing) == pytest.approx(0.57 * 0.57 * 1.6 / np.cos(np.radians(20)), rel=1e-4)
    assert any("tilted or sheared by 20.0°" in note for note in volume.source.notes)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"PixelSpacing": [0, 0]}, "not a pixel size"),
        ({"ImageOrientationPatient": [0, 0, 0, 0, 0, 0]}, "does not describe an image plane"),
        ({"ImageOrientationPatient": [1, 0, 0, 1, 0, 0]}, "does not describe an image plane"),
    ],
)
def test_degenerate_geometry_is_refused_before_the_pixels(originals, tmp_path, change, message):
    datasets = _copies(originals)
    for ds in datasets:
        for key, value in change.items():
            setattr(ds, key, value)
        ds.PixelData = ds.PixelData[:100]  # undecodable: the geometry must be refused first
    with pytest.raises(InputError, match=message):
        load(_write(tmp_path / "s", datasets))
