"""NIfTI and NRRD input: any stored orientation comes out as the same [z, y, x] volume."""

from __future__ import annotations

import nibabel as nib
import nrrd
import numpy as np
import pytest

from liverhealth.errors import InputError
from liverhealth.imaging import load
from liverhealth.imaging.geometry import LPS_TO_RAS
from liverhealth.imaging.volumes import read_label_volume

TS = "totalsegmentator"


def test_nifti_ct_and_its_segmentation(data_root):
    volume = load(data_root / TS / "example_ct_sm.nii.gz")
    assert volume.shape == (30, 101, 122)
    assert volume.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert volume.affine[2, 2] > 0  # z runs feet -> head
    seg, affine = read_label_volume(data_root / TS / "example_seg.nii.gz")
    np.testing.assert_allclose(affine, volume.affine, atol=1e-4)
    liver = seg == 5
    assert int(liver.sum()) == 38_634
    assert 30 < float(np.median(volume.voxels[liver])) < 200


def test_full_totalsegmentator_nifti(data_root):
    volume = load(data_root / TS / "example_ct.nii.gz")
    assert volume.shape == (112, 101, 122)
    assert volume.voxels.dtype == np.int16
    assert (int(volume.voxels.min()), int(volume.voxels.max())) == (-1207, 3382)
    assert volume.spacing == pytest.approx((3.0, 3.0, 3.0))
    assert volume.affine[2, 2] > 0


@pytest.mark.parametrize("axcodes", [("R", "A", "S"), ("L", "A", "I"), ("S", "P", "R")])
def test_nifti_orientation_is_normalised(data_root, tmp_path, axcodes):
    reference = load(data_root / TS / "example_ct_sm.nii.gz")
    image = nib.load(str(data_root / TS / "example_ct_sm.nii.gz"))
    ornt = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(image.affine), nib.orientations.axcodes2ornt(axcodes)
    )
    moved = image.as_reoriented(ornt)
    assert nib.aff2axcodes(moved.affine) == axcodes
    nib.save(moved, str(tmp_path / "moved.nii.gz"))
    volume = load(tmp_path / "moved.nii.gz")
    np.testing.assert_array_equal(volume.voxels, reference.voxels)
    np.testing.assert_allclose(volume.affine, reference.affine, atol=1e-4)


def test_nrrd_ct_matches_nifti(data_root, tmp_path):
    reference = load(data_root / TS / "example_ct_sm.nii.gz")
    xyz = reference.voxels.transpose(2, 1, 0)
    lps = LPS_TO_RAS @ reference.affine  # RAS -> LPS (the matrix is its own inverse)
    header = {
        "space": "left-posterior-superior",
        "space directions": lps[:3, :3].T,
        "space origin": lps[:3, 3],
        "kinds": ["domain"] * 3,
    }
    nrrd.write(str(tmp_path / "ct.nrrd"), xyz, header)
    volume = load(tmp_path / "ct.nrrd")
    np.testing.assert_array_equal(volume.voxels, reference.voxels)
    np.testing.assert_allclose(volume.affine, reference.affine, atol=1e-4)
    assert volume.source.format == "NRRD"


def test_label_map_is_not_a_ct(data_root):
    with pytest.raises(InputError, match="label map"):
        load(data_root / TS / "example_seg.nii.gz")


def test_truncated_nifti(data_root, tmp_path):
    data = (data_root / TS / "example_ct_sm.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="NIfTI"):
        load(tmp_path / "cut.nii.gz")


def test_ct_written_as_nifti_reads_back_the_same(tmp_path, ircadb1):
    from liverhealth.imaging.writers import save_volume_nifti

    save_volume_nifti(ircadb1, tmp_path / "ct.nii.gz")
    again = load(tmp_path / "ct.nii.gz")
    assert again.is_hu and np.array_equal(again.voxels, ircadb1.voxels)
    assert np.allclose(again.spacing, ircadb1.spacing, atol=1e-4)


def test_ct_exported_already_windowed_is_a_ct(data_root, tmp_path):
    """A CT stored clipped to the liver window (air and fat at −40 HU) opens, with its HU kept."""
    original = nib.load(str(data_root / "totalsegmentator" / "example_ct_sm.nii.gz"))
    windowed = np.clip(np.asarray(original.dataobj), -40, 160).astype(np.int16)
    path = tmp_path / "windowed.nii.gz"
    nib.save(nib.Nifti1Image(windowed, original.affine), str(path))
    volume = load(path)
    assert volume.is_hu and int(volume.voxels.min()) == -40 and int(volume.voxels.max()) == 160
    assert volume.shape == load(data_root / "totalsegmentator" / "example_ct_sm.nii.gz").shape


def test_nan_volume_is_refused(data_root, tmp_path):
    original = nib.load(str(data_root / "totalsegmentator" / "example_ct_sm.nii.gz"))
    data = np.asarray(original.dataobj).astype(np.float32)
    data[0, 0, 0] = np.nan
    path = tmp_path / "nan.nii.gz"
    nib.save(nib.Nifti1Image(data, original.affine), str(path))
    with pytest.raises(InputError, match="NaN"):
        load(path)


@pytest.mark.parametrize("scale", [0.0, float("nan")])
def test_degenerate_nifti_affine_is_refused(data_root, tmp_path, scale):
    """A header whose slice axis is zero or NaN (written into the header bytes: nibabel would not save it)."""
    original = nib.load(str(data_root / "totalsegmentator" / "example_ct_sm.nii.gz"))
    image = nib.Nifti1Image(np.asarray(original.dataobj), original.affine)
    image.set_qform(None, code=0)
    plain = tmp_path / "plain.nii"
    nib.save(image, str(plain))
    raw = bytearray(plain.read_bytes())
    raw[312:328] = np.array([0.0, 0.0, scale, 0.0], "<f4").tobytes()  # srow_z of the NIfTI-1 header
    path = tmp_path / "degenerate.nii"
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match="geometry"):
        load(path)
