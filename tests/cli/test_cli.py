"""`liverhealth` as a real process: outputs on the real CT and every bad-input case."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np
import pytest

from liverhealth.imaging import load
from tests.helpers.cli import run_cli


def test_segment_dicom_series_writes_all_outputs(data_root, models_dir, tmp_path):
    series = data_root / "totalsegmentator" / "example_ct_dicom"
    out = tmp_path / "out"
    result = run_cli("segment", str(series), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "segmenting" in result.stderr  # progress bar on stderr
    volume = load(series)
    image = nib.load(str(out / "labels.nii.gz"))
    assert image.shape == (512, 512, 20)  # [column, row, slice]
    np.testing.assert_allclose(image.affine, volume.affine, atol=1e-4)
    labels_xyz = np.asanyarray(image.dataobj)
    assert labels_xyz.dtype == np.uint8 and set(np.unique(labels_xyz)) <= {0, 1, 2}
    doc = json.loads((out / "measurements.json").read_text())
    assert doc["model"]["id"] == "threshold"
    assert {"load_s", "inference_s", "total_s"} <= set(doc["timings"])
    assert doc["input"]["slice_count"] == 20 and doc["input"]["format"] == "DICOM folder"
    liver_voxels = int(np.count_nonzero(labels_xyz))
    assert doc["measurements"]["liver_voxels"] == liver_voxels
    voxel_ml = np.prod(volume.spacing) / 1000
    assert doc["measurements"]["liver_volume_ml"] == pytest.approx(liver_voxels * voxel_ml)
    assert "not a medical device" in doc["disclaimer"]
    overlay = cv2.imread(str(out / "overlay.png"))
    assert overlay.shape == (512, 512, 3)
    key = doc["key_slice"]
    tumour_area = (labels_xyz == 2).sum(axis=(0, 1))
    assert key == int(np.argmax(tumour_area)) if tumour_area.any() else True


def test_segment_png_writes_label_png(models_dir, tmp_path, ircadb1):
    from liverhealth.imaging.display import apply_preset

    cv2.imwrite(str(tmp_path / "slice.png"), apply_preset(ircadb1.voxels[70], "training"))
    result = run_cli("segment", str(tmp_path / "slice.png"), "--out", str(tmp_path / "o"), "--pixel-size", "0.57")
    assert result.returncode == 0, result.stderr
    labels = cv2.imread(str(tmp_path / "o" / "labels.png"), cv2.IMREAD_UNCHANGED)
    assert labels.shape == (512, 512) and set(np.unique(labels)) <= {0, 1, 2} and labels.max() > 0
    doc = json.loads((tmp_path / "o" / "measurements.json").read_text())
    assert doc["measurements"]["is_2d"] and doc["measurements"]["liver_area_mm2"] > 0


def test_models_lists_metrics(models_dir):
    result = run_cli("models")
    assert result.returncode == 0
    assert "threshold" in result.stdout and "protocol" in result.stdout
    assert "FP/case" in result.stdout.splitlines()[0]


def _bad_inputs(tmp: Path, data_root: Path) -> dict[str, Path]:
    cases = {"missing": tmp / "nope.dcm"}
    (tmp / "empty").mkdir()
    cases["empty folder"] = tmp / "empty"
    cases["text file"] = tmp / "notes.txt"
    cases["text file"].write_text("patient notes, not an image\n")
    real = (data_root / "dcmqi" / "ct-3slice" / "01.dcm").read_bytes()
    cases["truncated dicom"] = tmp / "cut.dcm"
    cases["truncated dicom"].write_bytes(real[: len(real) // 2])
    cases["corrupt dicom"] = tmp / "corrupt.dcm"
    cases["corrupt dicom"].write_bytes(real[:132] + os.urandom(2000))
    cases["corrupt dicom, VR guessed"] = tmp / "guessed.dcm"  # bytes on which pydicom warns "Expected implicit VR"
    cases["corrupt dicom, VR guessed"].write_bytes(real[:132] + np.random.default_rng(170).bytes(2000))
    cases["dicom seg"] = data_root / "dcmqi" / "liver.dcm"
    (tmp / "masks").mkdir()
    with zipfile.ZipFile(data_root / "3Dircadb1.1" / "MASKS_DICOM.zip") as archive:
        for i in range(4):
            (tmp / "masks" / f"image_{i}").write_bytes(archive.read(f"MASKS_DICOM/liver/image_{i}"))
    cases["mask series"] = tmp / "masks"
    cases["broken zip"] = tmp / "series.zip"
    cases["broken zip"].write_bytes(b"PK\x03\x04 not really a zip")
    cases["label map nifti"] = data_root / "totalsegmentator" / "example_seg.nii.gz"
    cases["fake png"] = tmp / "slice.png"
    cases["fake png"].write_text("not a png")
    _, png = cv2.imencode(".png", (np.random.default_rng(1).random((256, 256)) * 255).astype(np.uint8))
    cases["truncated png"] = tmp / "cut.png"  # OpenCV prints its own warning line for this one
    cases["truncated png"].write_bytes(png.tobytes()[:3000])
    return cases


@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, data_root):
    return _bad_inputs(tmp_path_factory.mktemp("bad"), data_root)


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "empty folder",
        "text file",
        "truncated dicom",
        "corrupt dicom",
        "corrupt dicom, VR guessed",
        "dicom seg",
        "mask series",
        "broken zip",
        "label map nifti",
        "fake png",
        "truncated png",
    ],
)
def test_bad_input_one_line_exit_2(bad_inputs, models_dir, tmp_path, case):
    result = run_cli("segment", str(bad_inputs[case]), "--out", str(tmp_path / "out"))
    assert result.returncode == 2, (case, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("liverhealth: error: ")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_bad_model_choices(data_root, models_dir, tmp_path):
    series = str(data_root / "dcmqi" / "ct-3slice")
    result = run_cli("segment", series, "--model", "nosuch")
    assert result.returncode == 2 and "No model 'nosuch'" in result.stderr
    onnx_file = models_dir / "threshold.onnx"
    backup = onnx_file.read_bytes()
    onnx_file.write_bytes(backup + b"tampered")
    result = run_cli("segment", series, "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "does not match the manifest" in result.stderr
    onnx_file.write_bytes(backup)
    shutil.rmtree(models_dir)
    result = run_cli("models")
    assert result.returncode == 2 and "No model manifest" in result.stderr


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["segment", "x.png", "--pixel-size", "nan"], "not a pixel size"),
        (["segment", "x.png", "--pixel-size", "inf"], "not a pixel size"),
        (["segment", "x.png", "--pixel-size", "1e308"], "not a pixel size"),
        (["db", "list", "--since", "tomorrow"], "not a date"),
        (["db", "show", "99999999999999999999"], "not a result or study id"),
        (["db", "show", "0"], "not a result or study id"),
    ],
)
def test_bad_flag_values_are_one_line_and_exit_2(argv, expected, capsys):
    from liverhealth.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 2 and expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_bad_llm_timeout_fails_before_the_work(tmp_path, monkeypatch, capsys, data_root, models_dir):
    from liverhealth.cli import main

    monkeypatch.setenv("LIVERHEALTH_LLM_TIMEOUT", "abc")
    out = tmp_path / "out"
    code = main(["segment", str(data_root / "dcmqi" / "ct-3slice"), "--report", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "LLM timeout 'abc'" in err and err.count("\n") == 1
    assert not (out / "labels.nii.gz").exists()  # refused before any segmentation


def test_unwritable_output_folder_is_refused_before_segmenting(tmp_path, capsys, data_root, models_dir):
    from liverhealth.cli import main

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = main(["segment", str(data_root / "dcmqi" / "ct-3slice"), "--out", str(blocker / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "Cannot write into the output folder" in err and err.count("\n") == 1


def test_gui_without_the_xcb_libraries_says_which_to_install(tmp_path):
    """On a machine with a display but without Qt's xcb libraries, one line naming them, not Qt's abort."""
    import ctypes.util

    from liverhealth.cli import XCB_LIBRARIES, missing_xcb_packages

    expected = [package for library, package in XCB_LIBRARIES.items() if ctypes.util.find_library(library) is None]
    env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
    assert missing_xcb_packages() == expected or os.environ.get("QT_QPA_PLATFORM") == "offscreen"
    if not expected:
        return  # this machine has them all: the check lets the window start
    done = subprocess.run(
        [sys.executable, "-m", "liverhealth.cli", "gui"],
        capture_output=True,
        text=True,
        env={**env, "DISPLAY": ":99"},
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert all(package in done.stderr for package in expected) and "apt-get install" in done.stderr
