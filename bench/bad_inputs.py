"""Run the CLI over a fixed corpus of bad, hostile and tricky inputs and count what went wrong.

    python -m bench.bad_inputs [--data ../shared/data] [--keep DIR]

The corpus is built here from ../shared/data into a temporary folder (never committed): damaged
and oversized files, DICOM series with untrustworthy geometry, bad flag and environment values,
malformed manifests, URLs carrying secrets. Each case runs `liverhealth` in a fresh process (as a
user does) with a time limit, and is classed: a refusal on one line with exit 2 (expected), a
traceback, a hang, wrong output (exit 0 where it must refuse, or geometry that does not match the
original), partial output (files left behind by a refused run), a secret seen (in stdout, stderr
or any file written). Output: one row per case, then the totals.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import nibabel as nib
import numpy as np
import pydicom
from pydicom.uid import generate_uid

SECRET = "Zx9-secret-Qw7"
TIMEOUT_S = 120


@dataclass
class Case:
    name: str
    argv: list[str]
    expect: str  # "refuse" (one line, exit 2) or "ok" (exit 0)
    env: dict[str, str] = field(default_factory=dict)
    check: str = ""  # for "ok": a geometry check against the original series


def _dicom_slices(data: Path, first: int = 60, count: int = 12) -> list[pydicom.Dataset]:
    with zipfile.ZipFile(data / "3Dircadb1.1" / "PATIENT_DICOM.zip") as archive:
        return [
            pydicom.dcmread(io.BytesIO(archive.read(f"PATIENT_DICOM/image_{n}"))) for n in range(first, first + count)
        ]


def _write_series(folder: Path, datasets: list[pydicom.Dataset]) -> Path:
    folder.mkdir(parents=True)
    for i, ds in enumerate(datasets):
        ds.save_as(folder / f"s{i:03d}.dcm", enforce_file_format=True)
    return folder


def _series_variants(data: Path, root: Path) -> dict[str, Path]:
    base = _dicom_slices(data)
    out = {"original": _write_series(root / "original", copy.deepcopy(base))}

    def variant(name: str, change) -> None:
        datasets = [copy.deepcopy(ds) for ds in base]
        out[name] = _write_series(root / name, change(datasets) or datasets)

    def no_geometry(datasets):
        for ds in datasets:
            del ds.ImagePositionPatient, ds.SliceThickness, ds.SpacingBetweenSlices

    def no_positions(datasets):
        for ds in datasets:
            del ds.ImagePositionPatient

    def gap(datasets):
        return datasets[:3] + datasets[8:]

    def overlapping(datasets):
        extra = [copy.deepcopy(ds) for ds in datasets[:4]]
        for ds in extra:
            ds.SOPInstanceUID = generate_uid()
            ds.PixelData = (ds.pixel_array + 50).astype(np.int16).tobytes()
        return datasets + extra

    def zero_orientation(datasets):
        for ds in datasets:
            ds.ImageOrientationPatient = [0, 0, 0, 0, 0, 0]

    def zero_spacing(datasets):
        for ds in datasets:
            ds.PixelSpacing = [0, 0]

    def reversed_numbers(datasets):
        for number, ds in enumerate(reversed(datasets)):
            ds.InstanceNumber = number + 1

    def named(datasets):
        for ds in datasets:
            ds.SeriesDescription = f"liver {SECRET}"
            ds.PatientID = SECRET

    for name, change in (
        ("no geometry", no_geometry),
        ("no positions", no_positions),
        ("gap of 5 slices", gap),
        ("two acquisitions at one position", overlapping),
        ("zero orientation", zero_orientation),
        ("pixel spacing 0", zero_spacing),
        ("reversed numbering", reversed_numbers),
        ("patient ID in free text", named),
    ):
        variant(name, change)
    return out


def _files(data: Path, root: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    (root / "empty.nii.gz").write_bytes(b"")
    files["empty file"] = root / "empty.nii.gz"
    (root / "notes.dcm").write_text("not a DICOM file\n")
    files["text file as DICOM"] = root / "notes.dcm"
    raw = (data / "dcmqi" / "ct-3slice" / "01.dcm").read_bytes()
    (root / "truncated.dcm").write_bytes(raw[: len(raw) // 3])
    files["truncated DICOM"] = root / "truncated.dcm"
    _, good_png = cv2.imencode(".png", (np.random.default_rng(0).random((256, 256)) * 255).astype(np.uint8))
    (root / "truncated.png").write_bytes(good_png.tobytes()[:3000])
    files["truncated PNG"] = root / "truncated.png"
    (root / "broken.zip").write_bytes(b"PK\x03\x04" + os.urandom(2000))
    files["broken zip"] = root / "broken.zip"
    bomb = root / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("series/01.dcm", raw)
    data_bytes = bytearray(bomb.read_bytes())
    central = data_bytes.rfind(b"PK\x01\x02")
    data_bytes[central + 24 : central + 28] = struct.pack("<I", 0xF0000000)
    bomb.write_bytes(bytes(data_bytes))
    files["zip entry declaring 3.75 GiB"] = bomb
    _, png = cv2.imencode(".png", np.zeros((16, 16), np.uint8))
    png_bytes = bytearray(png.tobytes())
    png_bytes[16:24] = struct.pack(">II", 20000, 20000)
    png_bytes[29:33] = struct.pack(">I", zlib.crc32(bytes(png_bytes[12:29])))
    (root / "huge.png").write_bytes(bytes(png_bytes))
    files["PNG declaring 20000 x 20000"] = root / "huge.png"
    ct = nib.load(str(data / "totalsegmentator" / "example_ct_sm.nii.gz"))
    small = nib.Nifti1Image(np.zeros((4, 4, 4), np.int16), np.eye(4))
    nib.save(small, str(root / "huge.nii"))
    header = bytearray((root / "huge.nii").read_bytes())
    header[40:48] = struct.pack("<4h", 3, 30000, 30000, 30000)
    (root / "huge.nii").write_bytes(bytes(header))
    files["NIfTI header declaring 30000^3"] = root / "huge.nii"
    image = nib.Nifti1Image(np.asarray(ct.dataobj), ct.affine)
    image.set_qform(None, code=0)
    nib.save(image, str(root / "plain.nii"))
    nan_affine = bytearray((root / "plain.nii").read_bytes())
    nan_affine[312:328] = np.array([0.0, 0.0, np.nan, 0.0], "<f4").tobytes()
    (root / "nan_affine.nii").write_bytes(bytes(nan_affine))
    files["NIfTI with a NaN affine"] = root / "nan_affine.nii"
    nan_data = np.full(ct.shape, np.nan, np.float32)
    nib.save(nib.Nifti1Image(nan_data, ct.affine), str(root / "all_nan.nii.gz"))
    files["all-NaN NIfTI"] = root / "all_nan.nii.gz"
    files["label map instead of a CT"] = data / "totalsegmentator" / "example_seg.nii.gz"
    files["DICOM SEG instead of a CT"] = data / "dcmqi" / "liver.dcm"
    return files


def _manifests(root: Path, models: Path) -> dict[str, Path]:
    manifest = json.loads((models / "manifest.json").read_text())
    out = {}
    for name, change in (
        ("manifest: size as text", lambda e: e["input"].update(size="192x192")),
        ("manifest: NaN mean", lambda e: e["input"].update(mean=float("nan"))),
        ("manifest: models not a list", None),
    ):
        folder = root / name.replace(" ", "_").replace(":", "")
        folder.mkdir()
        for entry in manifest["models"]:
            shutil.copy(models / entry["file"], folder / entry["file"])
        broken = copy.deepcopy(manifest)
        if change is None:
            broken["models"] = {"unet": broken["models"][0]}
        else:
            change(broken["models"][0])
        (folder / "manifest.json").write_text(json.dumps(broken))
        out[name] = folder
    return out


def corpus(data: Path, root: Path, models: Path) -> list[Case]:
    series = _series_variants(data, root / "series")
    files = _files(data, root)
    manifests = _manifests(root, models)
    cases = [Case("missing path", ["segment", str(root / "nowhere")], "refuse")]
    cases += [Case(name, ["segment", str(path)], "refuse") for name, path in files.items()]
    for name in (
        "no geometry",
        "gap of 5 slices",
        "two acquisitions at one position",
        "zero orientation",
        "pixel spacing 0",
    ):
        cases.append(Case(f"DICOM: {name}", ["segment", str(series[name])], "refuse"))
    for name in ("no positions", "reversed numbering"):
        cases.append(Case(f"DICOM: {name}", ["segment", str(series[name])], "ok", check="same geometry"))
    cases.append(Case("DICOM: patient ID in free text", ["segment", str(series["patient ID in free text"])], "ok"))
    png = str(data / "lits_jpg" / "images" / "volume-29_slice_100.jpg")
    for value in ("nan", "inf", "1e308", "-1"):
        cases.append(Case(f"--pixel-size {value}", ["segment", png, "--pixel-size", value], "refuse"))
    cases += [
        Case("db list --since tomorrow", ["db", "list", "--since", "tomorrow"], "refuse"),
        Case("db show 99999999999999999999", ["db", "show", "99999999999999999999"], "refuse"),
        Case(
            "DB URL with a non-numeric port",
            ["db", "--db-url", f"mysql+pymysql://u:{SECRET}@127.0.0.1:abc/x", "list"],
            "refuse",
        ),
        Case(
            "DB URL with '@' in the password",
            ["db", "--db-url", f"mysql+pymysql://u:a@{SECRET}@127.0.0.1:9/x", "list"],
            "refuse",
        ),
        Case(
            "LIVERHEALTH_LLM_TIMEOUT=abc",
            ["segment", str(series["original"]), "--report"],
            "refuse",
            env={"LIVERHEALTH_LLM_TIMEOUT": "abc"},
        ),
        Case(
            "LLM URL with a key in it, endpoint down",
            ["segment", str(series["original"]), "--report"],
            "ok",
            env={"LIVERHEALTH_LLM_BASE_URL": f"http://user:{SECRET}@127.0.0.1:9/v1", "LIVERHEALTH_LLM_TIMEOUT": "5"},
        ),
    ]
    cases += [
        Case(name, ["--models-dir", str(folder), "segment", str(series["original"])], "refuse")
        for name, folder in manifests.items()
    ]
    return cases


def database_cases(work: Path) -> list[Case]:
    """A saved-output folder with an unreadable label map, and a database at an unknown schema revision."""
    import sqlite3

    from liverhealth.storage import Repository

    cases = []
    if (work / "reference" / "measurements.json").is_file():
        broken = work / "broken-output"
        shutil.copytree(work / "reference", broken, dirs_exist_ok=True)
        (broken / "labels.nii.gz").write_text("not a NIfTI file")
        cases.append(Case("db save: unreadable label map", ["db", "save", str(broken)], "refuse"))
    future = work / "future.db"
    Repository(f"sqlite:///{future}").init()
    with sqlite3.connect(future) as connection:
        connection.execute("UPDATE alembic_version SET version_num = '9999'")
    cases.append(Case("db init: unknown schema revision", ["db", "--db-url", f"sqlite:///{future}", "init"], "refuse"))
    return cases


@dataclass
class Outcome:
    case: Case
    code: int | None
    verdict: str
    detail: str


def run_case(case: Case, work: Path, reference_affine: np.ndarray | None) -> Outcome:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    argv = list(case.argv)
    if "segment" in argv:
        argv += ["--out", str(out)]
    env = {
        **os.environ,
        "LIVERHEALTH_CONFIG": str(work / "none.toml"),
        "LIVERHEALTH_LOG_DIR": str(work / "logs"),
        "LIVERHEALTH_DB_URL": f"sqlite:///{work / 'results.db'}",
        **case.env,
    }
    try:
        done = subprocess.run(
            [sys.executable, "-m", "liverhealth.cli", *argv],
            capture_output=True,
            text=True,
            env=env,
            stdin=subprocess.DEVNULL,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return Outcome(case, None, "hang", f"no answer in {TIMEOUT_S} s")
    text = done.stdout + done.stderr
    written = [p for p in out.rglob("*") if p.is_file()] if out.exists() else []
    if SECRET in text or any(SECRET.encode() in p.read_bytes() for p in written):
        return Outcome(case, done.returncode, "secret seen", text.strip()[-160:])
    if "Traceback" in text or (done.returncode not in (0, 2) and done.returncode is not None):
        return Outcome(case, done.returncode, "traceback", text.strip().splitlines()[-1][:160] if text else "")
    if case.expect == "refuse":
        if done.returncode != 2:
            return Outcome(case, done.returncode, "wrong output", "exit 0 where it must refuse")
        if written:
            return Outcome(case, done.returncode, "partial output", f"{len(written)} file(s) left in the output")
        lines = done.stderr.strip().splitlines()
        if len(lines) != 1:
            return Outcome(case, done.returncode, "not one line", f"{len(lines)} lines")
        return Outcome(case, 2, "one-line exit 2", lines[0][:150])
    if done.returncode != 0:
        return Outcome(case, done.returncode, "wrong output", done.stderr.strip()[-150:])
    if case.check and reference_affine is not None:
        affine = nib.load(str(out / "labels.nii.gz")).affine
        if not np.allclose(affine[:3, :3], reference_affine[:3, :3], atol=1e-3):
            return Outcome(case, 0, "wrong output", "geometry differs from the original series")
    return Outcome(case, 0, "ok", done.stdout.strip()[-150:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Bad-input corpus through the CLI.")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--keep", type=Path, default=None, help="build the corpus here and keep it")
    args = parser.parse_args(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="liverhealth-bad-"))
    root.mkdir(parents=True, exist_ok=True)
    cases = corpus(args.data, root / "corpus", args.models_dir)
    work = root / "work"
    work.mkdir(exist_ok=True)
    reference = subprocess.run(
        [
            sys.executable,
            "-m",
            "liverhealth.cli",
            "segment",
            str(root / "corpus" / "series" / "original"),
            "--out",
            str(work / "reference"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "LIVERHEALTH_CONFIG": str(work / "none.toml")},
        timeout=TIMEOUT_S,
    )
    reference_affine = nib.load(str(work / "reference" / "labels.nii.gz")).affine if reference.returncode == 0 else None
    cases += database_cases(work)
    outcomes = [run_case(case, work, reference_affine) for case in cases]
    width = max(len(o.case.name) for o in outcomes)
    print(f"{'input':<{width}}  expect  exit  verdict          detail")
    for o in outcomes:
        print(
            f"{o.case.name:<{width}}  {o.case.expect:<6}  {o.code if o.code is not None else '-':>4}  "
            f"{o.verdict:<15}  {o.detail}"
        )
    kinds = (
        "one-line exit 2",
        "ok",
        "traceback",
        "hang",
        "wrong output",
        "partial output",
        "not one line",
        "secret seen",
    )
    totals = {kind: sum(o.verdict == kind for o in outcomes) for kind in kinds}
    print(f"\ninputs tried {len(outcomes)}: " + ", ".join(f"{kind} {count}" for kind, count in totals.items()))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    bad = sum(totals[k] for k in kinds[2:])
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
