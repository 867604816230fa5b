"""DICOM input on the real data: geometry, slice order, series choice, compression."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pydicom
import pytest

from liverhealth.errors import InputError
from liverhealth.imaging import load
from liverhealth.imaging.volumes import read_label_volume

TS_SLICES = "totalsegmentator/example_ct_dicom"


def test_ircadb1_geometry(ircadb1):
    assert ircadb1.shape == (129, 512, 512)
    assert ircadb1.voxels.dtype == np.int16
    assert ircadb1.spacing == pytest.approx((1.6, 0.57, 0.57), abs=1e-4)
    assert ircadb1.is_hu
    assert (int(ircadb1.voxels.min()), int(ircadb1.voxels.max())) == (-1024, 1023)
    # z runs feet -> head: slice k is at z = 1.6 k mm (ImagePositionPatient), RAS affine.
    assert ircadb1.affine[:3, 2] == pytest.approx([0, 0, 1.6], abs=1e-4)
    assert ircadb1.affine[0, 0] == pytest.approx(-0.57, abs=1e-6)
    assert ircadb1.patient.name == "liver_01^patient"
    assert "liver_01" not in str(ircadb1.source.to_dict())


def test_ircadb1_masks_line_up_with_ct(ircadb1, ircadb1_masks):
    liver = ircadb1_masks["liver"]
    assert liver.shape == ircadb1.shape
    assert int(liver.sum()) == 2_865_131
    present = np.flatnonzero(liver.any(axis=(1, 2)))
    assert (present[0], present[-1]) == (27, 124)
    liver_hu = float(ircadb1.voxels[liver].mean())
    assert 60 < liver_hu < 200, liver_hu  # enhanced parenchyma, not fat or air
    # A mask shifted by a few slices or flipped would no longer sit on liver-like HU.
    flipped = float(ircadb1.voxels[liver[::-1]].mean())
    assert flipped < liver_hu - 40


def test_jpeg2000_series_sorted_by_position(data_root):
    volume = load(data_root / TS_SLICES)
    assert volume.shape == (20, 512, 512)
    assert volume.spacing == pytest.approx((2.0, 0.9765625, 0.9765625), abs=1e-5)
    assert (int(volume.voxels.min()), int(volume.voxels.max())) == (-1024, 1839)
    assert volume.affine[2, 3] == pytest.approx(-804.5)
    assert volume.affine[2, 2] == pytest.approx(2.0)
    # InstanceNumber decreases as z increases here: slice 0 must be the lowest z, not instance 1.
    files = sorted((data_root / TS_SLICES).iterdir())
    lowest = min(files, key=lambda p: float(pydicom.dcmread(p, stop_before_pixels=True).ImagePositionPatient[2]))
    ds = pydicom.dcmread(lowest)
    expected = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(volume.voxels[0], expected.astype(np.int16))


def test_totalsegmentator_dicom_aligns_with_its_nifti_segmentation(data_root):
    volume = load(data_root / TS_SLICES)
    seg, affine = read_label_volume(data_root / "totalsegmentator" / "example_seg_dicom.nii.gz")
    assert seg.shape == volume.shape
    np.testing.assert_allclose(affine, volume.affine, atol=1e-3)
    liver = seg == 5
    assert int(liver.sum()) == 366_708
    assert 40 < float(volume.voxels[liver].mean()) < 200
    assert float(volume.voxels[liver[:, :, ::-1]].mean()) < float(volume.voxels[liver].mean()) - 40


def test_messy_folder_picks_the_ct_series(data_root, tmp_path):
    """Shuffled names, a text file, a DICOM SEG and a mask series beside the CT."""
    folder = tmp_path / "study"
    (folder / "ct").mkdir(parents=True)
    files = sorted((data_root / TS_SLICES).iterdir())
    for i, path in enumerate(files):  # name files in the reverse of their z order
        shutil.copy(path, folder / "ct" / f"img{len(files) - i:03d}.dcm")
    (folder / "notes.txt").write_text("not dicom")
    shutil.copy(data_root / "dcmqi" / "liver.dcm", folder / "seg.dcm")
    with zipfile.ZipFile(data_root / "3Dircadb1.1" / "MASKS_DICOM.zip") as archive:
        (folder / "mask").mkdir()
        for i in range(30):  # an 8-bit mask series with more slices than the CT
            (folder / "mask" / f"m{i}").write_bytes(archive.read(f"MASKS_DICOM/liver/image_{i}"))
    volume = load(folder)
    reference = load(data_root / TS_SLICES)
    assert volume.shape == (20, 512, 512)
    np.testing.assert_array_equal(volume.voxels, reference.voxels)
    np.testing.assert_allclose(volume.affine, reference.affine)


def test_zip_of_a_folder(data_root, tmp_path):
    archive_path = tmp_path / "series.zip"
    with zipfile.ZipFile(archive_path, "w") as archive:
        for path in sorted((data_root / TS_SLICES).iterdir()):
            archive.write(path, f"export/DICOM/{path.name}")
        archive.writestr("export/README.txt", "exported by a PACS")
    volume = load(archive_path)
    np.testing.assert_array_equal(volume.voxels, load(data_root / TS_SLICES).voxels)
    assert volume.source.format == "DICOM zip"


def test_single_file_and_dcmqi_alignment(data_root):
    one = load(data_root / "dcmqi" / "ct-3slice" / "02.dcm")
    assert one.shape == (1, 512, 512)
    volume = load(data_root / "dcmqi")  # holds the 3 slices, a SEG, an NRRD and a JSON
    assert volume.shape == (3, 512, 512)
    assert volume.affine[2, 3] == pytest.approx(-128.69)
    np.testing.assert_array_equal(volume.voxels[1], one.voxels[0])
    seg, affine = read_label_volume(data_root / "dcmqi" / "liver_seg.nrrd")
    np.testing.assert_allclose(affine, volume.affine, atol=1e-3)
    assert [int(seg[k].sum()) for k in range(3)] == [36_233, 35_645, 35_220]
    liver = seg > 0
    median_hu = float(np.median(volume.voxels[liver]))
    assert 30 < median_hu < 120, median_hu  # unenhanced liver parenchyma
    for moved in (liver[:, :, ::-1], liver[:, ::-1, :], liver.transpose(0, 2, 1)):
        assert float(np.median(volume.voxels[moved])) < median_hu - 15


def test_rescale_slope_and_intercept_applied(data_root, tmp_path):
    source = data_root / "dcmqi" / "ct-3slice" / "01.dcm"
    ds = pydicom.dcmread(source)
    ds.RescaleSlope = 2
    ds.RescaleIntercept = -100
    ds.save_as(tmp_path / "scaled.dcm")
    raw = ds.pixel_array.astype(np.int32)
    np.testing.assert_array_equal(
        load(tmp_path / "scaled.dcm").voxels[0], np.clip(raw * 2 - 100, -32768, 32767).astype(np.int16)
    )


@pytest.mark.parametrize("name", ["liver.dcm"])
def test_non_ct_file_refused(data_root, name):
    with pytest.raises(InputError, match="no CT image series"):
        load(data_root / "dcmqi" / name)


def test_mask_series_is_not_a_ct(data_root, tmp_path):
    with zipfile.ZipFile(data_root / "3Dircadb1.1" / "MASKS_DICOM.zip") as archive:
        for i in range(5):
            (tmp_path / f"m{i}").write_bytes(archive.read(f"MASKS_DICOM/liver/image_{i}"))
    with pytest.raises(InputError, match="8-bit CT"):
        load(tmp_path)


def test_empty_and_truncated(tmp_path, data_root):
    with pytest.raises(InputError, match="No DICOM files"):
        load(tmp_path)
    data = (data_root / "dcmqi" / "ct-3slice" / "01.dcm").read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated"):
        load(tmp_path / "cut.dcm")
    Path(tmp_path / "noise.dcm").write_bytes(b"\0" * 128 + b"DICM" + bytes(range(256)) * 8)
    with pytest.raises(InputError):
        load(tmp_path / "noise.dcm")
