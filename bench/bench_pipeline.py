"""Pipeline speed on the real CT: DICOM load, and per-slice / per-volume segmentation.

Usage: python -m bench.bench_pipeline [--repeats N] [--skip-reference] [--models-dir DIR ...]
       [--models ID ...] [--cli]   (from the repository root)

Times (1) loading 3Dircadb1.1 (129 DICOM slices of 512², zipped), (2) each model in the
manifest on that volume (per slice at batch 8, and the whole workflow segment step:
preprocess, model, resize back, post-process, measure), and (3) until trained models ship,
an untrained reference UNet of the planned slim size, labelled as such; its own output is
noise, so its post-processing is timed on the ground-truth label map instead. With ``--cli``,
each model also runs as a user runs it: ``liverhealth segment`` on the zip in a new process
(imports, session start, DICOM read, outputs written), and the table gives each model's time as a
ratio to the first model's, measured in the same run. For a cascade, ms/slice is its second
stage on whole slices (the engine runs it on the liver's box only). Prints the machine and the
best of N runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from bench.commands import segment_command
from bench.reference_unet import build_unet
from liverhealth import config
from liverhealth.analysis import measure
from liverhealth.errors import LiverHealthError
from liverhealth.imaging import load
from liverhealth.imaging.ircadb import ircadb_labels
from liverhealth.inference import get_session, load_manifest, postprocess
from liverhealth.inference.manifest import file_sha256
from liverhealth.inference.preprocess import gather_context, normalised_stack
from liverhealth.workflow import Workstation


def best_of(repeats: int, fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def bench_model(manifest, model_id: str, volume, repeats: int) -> dict:
    """Per-slice model latency (batch 8) and the whole workflow segment step on ``volume``."""
    spec = manifest.get(model_id)
    session = get_session(spec)
    stack = normalised_stack(volume.voxels[:8], volume.is_hu, spec.input)
    batch = gather_context(stack, np.arange(8), spec.input.context_slices)
    name = session.get_inputs()[0].name
    session.run(None, {name: batch})  # warm-up
    per_batch, _ = best_of(max(repeats, 3), lambda: session.run(None, {name: batch}))
    workstation = Workstation(models_dir=manifest.path.parent)
    session = workstation.session()
    session.set_volume(volume)
    per_volume, result = best_of(repeats, lambda: session.segment(model_id))
    return {"ms_per_slice": 1000 * per_batch / 8, "volume_s": per_volume, "timings": result.timings}


def bench_cli(models_dir: Path, model_id: str, zip_path: Path, repeats: int) -> float:
    """Best-of-N wall time of ``liverhealth segment`` in a new process, outputs written."""

    def run() -> None:
        with tempfile.TemporaryDirectory() as out:
            command = segment_command(models_dir, zip_path, model_id, out)
            done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=600)
            if done.returncode != 0:
                raise SystemExit(f"{model_id}: {done.stderr.strip()}")

    seconds, _ = best_of(repeats, run)
    return seconds


def bench_clean_and_measure(volume, labels, repeats: int) -> tuple[float, float]:
    """Post-processing and measuring on a realistic label map (the ground truth)."""
    post_s, cleaned = best_of(repeats, lambda: postprocess(labels, volume.spacing))
    measure_s, _ = best_of(repeats, lambda: measure(volume, cleaned))
    return post_s, measure_s


def reference_manifest(folder: Path, base: int, size: int) -> Path:
    """A manifest holding one untrained reference UNet (speed only)."""
    path = folder / f"reference_unet_w{base}.onnx"
    build_unet(path, base=base, size=size)
    entry = {
        "id": f"untrained-unet-w{base}-{size}",
        "name": "untrained UNet",
        "architecture": "reference UNet",
        "file": path.name,
        "sha256": file_sha256(path),
        "input": {"context_slices": 1, "size": [size, size], "hu_window": [-200, 200], "mean": 0.5, "std": 0.5},
        "classes": ["background", "liver", "tumour"],
        "output": "logits",
    }
    (folder / "manifest.json").write_text(json.dumps({"schema": 1, "default": entry["id"], "models": [entry]}))
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-reference", action="store_true")
    parser.add_argument(
        "--models-dir",
        type=Path,
        action="append",
        default=None,
        help="manifest folder(s) to bench (default: the installed models)",
    )
    parser.add_argument("--models", nargs="+", default=None, help="only these model ids, in this order")
    parser.add_argument("--cli", action="store_true", help="also time `liverhealth segment` per model")
    args = parser.parse_args()
    case = config.data_dir() / "3Dircadb1.1"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"onnxruntime {ort.__version__}, threads={os.environ.get('LIVERHEALTH_THREADS', os.cpu_count())}"
    )
    load_s, volume = best_of(args.repeats, lambda: load(case / "PATIENT_DICOM.zip"))
    print(
        f"DICOM load 3Dircadb1.1 ({volume.shape[0]} slices, {volume.shape[1]}x{volume.shape[2]}, zip): "
        f"{load_s:.2f} s (best of {args.repeats})"
    )
    post_s, measure_s = bench_clean_and_measure(volume, ircadb_labels(case, volume.shape), args.repeats)
    print(f"post-process {post_s:.2f} s + measure {measure_s:.2f} s on the 3Dircadb1.1 ground-truth label map")

    trained = []
    for folder in args.models_dir or [config.models_dir()]:
        try:
            manifest = load_manifest(folder)
            trained += [(folder, manifest, m.model_id) for m in manifest.models]
        except LiverHealthError as exc:
            print(f"manifest: {exc}")
    if args.models:
        by_id = {model_id: (folder, manifest, model_id) for folder, manifest, model_id in trained}
        trained = [by_id[m] for m in args.models if m in by_id]
    cli_head = f" {'CLI s':>7} {'CLI ratio':>9}" if args.cli else ""
    print(f"\n{'model':<26} {'ms/slice':>9} {'model+resize s':>15} {'end-to-end s':>13}{cli_head}  note")
    first_cli = None
    for folder, manifest, model_id in trained:
        row = bench_model(manifest, model_id, volume, args.repeats)
        t = row["timings"]
        cascade = manifest.get(model_id).input.roi is not None
        cli = ""
        if args.cli:
            seconds = bench_cli(folder, model_id, case / "PATIENT_DICOM.zip", args.repeats)
            first_cli = first_cli or seconds
            cli = f" {seconds:>7.2f} {seconds / first_cli:>9.2f}"
        note = "cascade: locator + model on the liver box" if cascade else "load + segment + post-process + measure"
        print(
            f"{model_id:<26} {row['ms_per_slice']:>9.1f} {t['model_s'] + t['resize_back_s']:>15.2f} "
            f"{load_s + row['volume_s']:>13.2f}{cli}  {note}"
        )
    if not trained:
        print("(no trained models in the manifest yet)")
    if args.skip_reference:
        return
    with tempfile.TemporaryDirectory() as tmp:
        for base, size in ((16, 256), (16, 192)):
            folder = Path(tmp) / f"w{base}_{size}"
            folder.mkdir()
            ref = load_manifest(reference_manifest(folder, base, size))
            row = bench_model(ref, ref.default, volume, args.repeats)
            t = row["timings"]
            core = t["preprocess_s"] + t["model_s"] + t["resize_back_s"]
            estimate = load_s + core + post_s + measure_s
            print(
                f"{ref.default:<26} {row['ms_per_slice']:>9.1f} {t['model_s'] + t['resize_back_s']:>15.2f} "
                f"{estimate:>13.2f}  untrained (random weights): load + preprocess + model + resize "
                "+ ground-truth post-process/measure"
            )


if __name__ == "__main__":
    main()
