"""Training samples from a real IRCADb case, and the LiTS layout read the same way."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np
import pytest

from liverhealth.imaging.display import apply_window
from liverhealth.imaging.ircadb import ircadb_structure, load_ircadb_case
from liverhealth.inference.manifest import parse_input_spec
from liverhealth.inference.preprocess import roi_box
from training import preprocess

pytestmark = pytest.mark.slow  # builds sample folders or scores whole cases: the full gate runs it

SIZE = 64


@pytest.fixture(scope="module")
def samples(tmp_path_factory, data_root) -> Path:
    out = tmp_path_factory.mktemp("samples")
    assert (
        preprocess.main(
            [
                "--out",
                str(out),
                "--ircadb",
                str(data_root / "3Dircadb1.1"),
                "--size",
                str(SIZE),
                "--synthetic-copies",
                "1",
                "--lesions",
                "2-2",
            ]
        )
        == 0
    )
    return out


def _lines(out: Path, case: str) -> list[list[str]]:
    return [line.split() for line in (out / "cases" / f"{case}.txt").read_text().splitlines()]


def test_kept_slices_and_labels(samples, ircadb1_masks):
    lines = _lines(samples, "3Dircadb1.1")
    stems = [int(Path(image).stem.rsplit("_", 1)[1]) for image, _ in lines]
    # liver on slices 27..124, a margin of 5, and every 4th slice elsewhere as negatives
    assert stems == sorted(set(range(22, 129)) | set(range(0, 22, 4)))
    label = cv2.imread(str(samples / lines[stems.index(70)][1]), cv2.IMREAD_UNCHANGED)
    assert label.shape == (SIZE, SIZE) and set(np.unique(label)) <= {0, 1, 2} and (label == 1).any()
    liver_fraction = float(ircadb1_masks["liver"][70].mean())
    assert float((label > 0).mean()) == pytest.approx(liver_fraction, abs=0.02)
    meta = json.loads((samples / "meta.json").read_text())
    assert meta["context"] == 1 and meta["split"].startswith("fewer than ten")


def test_channels_are_neighbouring_slices_in_the_training_window(samples, ircadb1):
    lines = _lines(samples, "3Dircadb1.1")
    image = cv2.imread(str(samples / lines[50][0]), cv2.IMREAD_UNCHANGED)
    z = int(Path(lines[50][0]).stem.rsplit("_", 1)[1])
    assert image.shape == (SIZE, SIZE, 3)
    for channel, offset in enumerate((-1, 0, 1)):
        expected = cv2.resize(
            apply_window(ircadb1.voxels[z + offset], 0, 400).astype(np.float32),
            (SIZE, SIZE),
            interpolation=cv2.INTER_AREA,
        )
        assert float(np.abs(image[:, :, channel] - expected).mean()) < 1.5


def test_synthetic_copy_adds_tumour(samples):
    real = sum(
        int((cv2.imread(str(samples / lab), cv2.IMREAD_UNCHANGED) == 2).sum())
        for _, lab in _lines(samples, "3Dircadb1.1")
    )
    synthetic = sum(
        int((cv2.imread(str(samples / lab), cv2.IMREAD_UNCHANGED) == 2).sum())
        for _, lab in _lines(samples, "3Dircadb1.1+synth0")
    )
    assert synthetic > real
    meta = json.loads((samples / "meta.json").read_text())
    assert len(meta["cases"]["3Dircadb1.1"]["synthetic"][0]["lesions"]) >= 1


def test_lits_layout_gives_the_same_samples(samples, data_root, tmp_path):
    volume, labels = load_ircadb_case(data_root / "3Dircadb1.1")
    lits = tmp_path / "lits"
    lits.mkdir()
    nib.save(nib.Nifti1Image(volume.voxels.transpose(2, 1, 0), volume.affine), str(lits / "volume-7.nii"))
    nib.save(nib.Nifti1Image(labels.transpose(2, 1, 0), volume.affine), str(lits / "segmentation-7.nii"))
    out = tmp_path / "out"
    assert (
        preprocess.main(["--out", str(out), "--lits", str(lits), "--size", str(SIZE), "--synthetic-copies", "0"]) == 0
    )
    ours = _lines(out, "lits007")
    theirs = _lines(samples, "3Dircadb1.1")
    assert len(ours) == len(theirs)
    for (image_a, label_a), (image_b, label_b) in zip(ours[::20], theirs[::20], strict=True):
        assert np.array_equal(cv2.imread(str(out / image_a)), cv2.imread(str(samples / image_b)))
        assert np.array_equal(cv2.imread(str(out / label_a)), cv2.imread(str(samples / label_b)))


def test_labelled_case_in_another_numbering(data_root, tmp_path):
    """TotalSegmentator's multi-label map (liver = 5) on its JPEG 2000 DICOM series becomes 0/1 samples."""
    folder = data_root / "totalsegmentator"
    out = tmp_path / "ts"
    assert (
        preprocess.main(
            [
                "--out",
                str(out),
                "--size",
                str(SIZE),
                "--synthetic-copies",
                "1",
                "--lesions",
                "1-1",
                "--labelled",
                "ts-dicom",
                str(folder / "example_ct_dicom"),
                str(folder / "example_seg_dicom.nii.gz"),
                "liver=5",
            ]
        )
        == 0
    )
    lines = _lines(out, "ts-dicom")
    assert len(lines) == 20  # every slice of the 20-slice slab shows liver
    labels = np.stack([cv2.imread(str(out / label), cv2.IMREAD_UNCHANGED) for _, label in lines])
    assert set(np.unique(labels)) == {0, 1}  # other organs (labels 1-4, 6-104) are background here
    raw = nib.load(str(folder / "example_seg_dicom.nii.gz")).get_fdata()
    assert float((labels == 1).mean()) == pytest.approx(float((raw == 5).mean()), rel=0.1)
    painted = np.stack(
        [cv2.imread(str(out / label), cv2.IMREAD_UNCHANGED) for _, label in _lines(out, "ts-dicom+synth0")]
    )
    assert (painted == 2).any()
    with pytest.raises(SystemExit, match="which value is liver"):
        preprocess.parse_values("tumour=2")


def test_ignored_structure_is_255_outside_the_liver_only(data_root, tmp_path, ircadb1_masks):
    out = tmp_path / "ignore"
    assert (
        preprocess.main(
            [
                "--out",
                str(out),
                "--ircadb",
                str(data_root / "3Dircadb1.1"),
                "--size",
                str(SIZE),
                "--synthetic-copies",
                "0",
                "--ignore",
                "3Dircadb1.1:spleen",
            ]
        )
        == 0
    )
    lines = _lines(out, "3Dircadb1.1")
    labels = np.stack([cv2.imread(str(out / label), cv2.IMREAD_UNCHANGED) for _, label in lines])
    assert set(np.unique(labels)) == {0, 1, 2, 255}
    stems = [int(Path(image).stem.rsplit("_", 1)[1]) for image, _ in lines]
    assert stems == sorted(set(range(22, 129)) | set(range(0, 22, 4)))  # 255 alone does not make a slice "liver"
    spleen = ircadb_structure(data_root / "3Dircadb1.1", "spleen") & ~ircadb1_masks["liver"]
    spleen_px = spleen[stems].reshape(len(stems), -1).mean(axis=1)
    ignored_px = (labels == 255).reshape(len(stems), -1).mean(axis=1)
    assert np.allclose(ignored_px, spleen_px, atol=0.01)
    assert json.loads((out / "meta.json").read_text())["cases"]["3Dircadb1.1"]["ignored"] == ["spleen"]
    with pytest.raises(SystemExit):
        preprocess.main(["--out", str(out), "--ircadb", str(data_root / "3Dircadb1.1"), "--ignore", "other:tumor"])


def test_second_stage_samples_are_the_liver_box_and_record_the_contract(tmp_path, data_root, ircadb1_masks):
    """--roi-stage: slices cropped to the liver's box + margin; meta.json carries the input spec the
    manifest parser accepts, and parity inputs made by the engine's own input path."""
    out = tmp_path / "fine"
    assert (
        preprocess.main(
            [
                "--out",
                str(out),
                "--ircadb",
                str(data_root / "3Dircadb1.1"),
                "--size",
                str(SIZE),
                "--window",
                "-40",
                "160",
                "--context-mm",
                "3",
                "--roi-stage",
                "locator",
                "--roi-margin-mm",
                "10",
                "--synthetic-copies",
                "0",
            ]
        )
        == 0
    )
    meta = json.loads((out / "meta.json").read_text())
    spec = parse_input_spec("fine", meta["input"])
    assert spec.roi.stage == "locator" and spec.roi.margin_mm == 10 and spec.hu_window == (-40, 160)
    assert spec.context_mm == 3 and spec.pixel_mm is None
    liver = ircadb1_masks["liver"] | ircadb1_masks["tumour"]
    box = roi_box(liver, (1.6, 0.57, 0.57), 10)
    stems = [int(Path(image).stem.rsplit("_", 1)[1]) for image, _ in _lines(out, "3Dircadb1.1")]
    assert stems[0] >= box.z.start and stems[-1] < box.z.stop
    label = cv2.imread(str(out / "labels" / "3Dircadb1.1_070.png"), cv2.IMREAD_UNCHANGED)
    assert float((label > 0).mean()) > 1.5 * float(liver[70].mean())  # the crop is the liver region
    parity = np.load(out / "parity_inputs.npy")
    assert parity.shape == (8, 3, SIZE, SIZE) and parity.dtype == np.float32
    assert parity.min() >= -1.0 - 1e-6 and parity.max() <= 1.0 + 1e-6  # (unit - 0.5) / 0.5


@pytest.mark.slow
def test_lits_jpg_samples_come_through_the_same_path(tmp_path, data_root):
    out = tmp_path / "lits"
    assert (
        preprocess.main(
            [
                "--out",
                str(out),
                "--lits-jpg",
                str(data_root / "lits_jpg"),
                "--size",
                str(SIZE),
                "--pixel-mm",
                "6",
                "--window",
                "-40",
                "160",
                "--synthetic-copies",
                "1",
                "--small-synthetic-copies",
                "1",
                "--small-lesions",
                "2-2",
            ]
        )
        == 0
    )
    meta = json.loads((out / "meta.json").read_text())
    assert len(meta["cases"]) == 26 and meta["cases"]["lits029"]["synthetic"] == []  # real tumours only
    small = {name for name, case in meta["cases"].items() if case["synthetic"]}
    assert small == {"lits032", "lits041", "lits047"}  # the tumour-free livers only get small lesions
    for name in small:
        (copy,) = meta["cases"][name]["synthetic"]
        assert copy["variant"] == f"{name}+synthsmall0" and copy["small"] and copy["lesions"]
        assert all(2.5 <= lesion["radius_mm"] <= 10.0 for lesion in copy["lesions"])
        assert all(lesion["voxels"] > 0 and not lesion["peripheral"] for lesion in copy["lesions"])
        assert len(_lines(out, copy["variant"])) == meta["cases"][name]["slices"]  # 6 mm pixels hide them
    assert meta["cases"]["lits029"]["slices"] == 65 and meta["cases"]["lits029"]["source"].startswith("..")
    image = cv2.imread(str(out / "images" / "lits029_032.png"), cv2.IMREAD_UNCHANGED)
    assert image.shape == (SIZE, SIZE, 3) and image.max() > 200
