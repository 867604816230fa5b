"""`liverhealth segment` before and after, in one run: wall, peak memory, model share, same labels.

Usage: python -m bench.bench_speed [--baseline REV] [--repeats N] [--case NAME] [--models-dir DIR]
       [--skip-web] [--skip-cohort]   (from the repository root)

The baseline is the ``liverhealth`` package at git revision REV, unpacked into a temporary
folder and put first on ``PYTHONPATH``; the current tree is the working copy. Both run the same
models (``--models-dir``, default the installed ones) on the same zipped DICOM series, the runs
alternating (baseline, current, baseline, ...) so that load from other work on the machine falls
on both alike. Three measurements per tree:

* **CLI**: ``liverhealth segment ZIP --out DIR`` in a new process (imports, session start, DICOM
  read, outputs written): wall seconds and peak resident memory (the child's ``ru_maxrss``);
* **in process**: open + segment + export in one process, the ONNX sessions warm (as the window
  and the web page run a second study), with the seconds spent inside ONNX Runtime's
  ``InferenceSession.run`` counted by a timing wrapper; the batches of the last run are then fed
  to the model again with nothing else running ("model alone": the model's own compute, locator
  + stage 2), and the in-process time is given as a multiple of it;
* **web**: seconds from the start of an upload to the page's result event on a real
  ``liverhealth web`` server (``bench.bench_web``), best of N after a warming upload;
* **cohort**: ``liverhealth batch`` with one worker on ``bench.bench_batch``'s four real CTs,
  in cases per minute;
* **same output**: the two trees' ``labels.nii.gz`` compared voxel for voxel, and the
  confidence map too.

Prints medians of N; the ratios (current / baseline) are the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from bench.commands import segment_command

ROOT = Path(__file__).resolve().parent.parent


def unpack_baseline(revision: str, into: Path) -> Path:
    """The ``liverhealth`` package at ``revision``, unpacked under ``into``."""
    archive = into / "baseline.tar"
    subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", "-o", str(archive), revision, "liverhealth"], check=True
    )
    with tarfile.open(archive) as tar:
        tar.extractall(into / "src", filter="data")
    vendor = Path("liverhealth/web/static/vendor")  # built by setup from npm, not in git: the same for both
    if (ROOT / vendor).is_dir():
        shutil.copytree(ROOT / vendor, into / "src" / vendor, dirs_exist_ok=True)
    return into / "src"


def environment(source: Path | None) -> dict[str, str]:
    """The environment of a child running ``source``'s package (None: the working copy)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(str(p) for p in (source, ROOT) if p is not None)
    return env


def run_cli(models_dir: Path, case: Path, out: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak resident MiB of one ``liverhealth segment`` (``out`` must not exist)."""
    command = segment_command(models_dir, case, default_model(models_dir), out)
    with tempfile.TemporaryFile() as stderr:  # a file, not a pipe: wait4 cannot block on a full pipe
        started = time.perf_counter()
        child = subprocess.Popen(  # cwd outside the repository: `-m` puts the cwd first on sys.path
            command, env=env, cwd=out.parent, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr
        )
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        if child.returncode != 0:
            stderr.seek(0)
            raise SystemExit(f"segment failed: {stderr.read().decode(errors='replace').strip()[-400:]}")
    return wall, usage.ru_maxrss / 1024


def default_model(models_dir: Path) -> str:
    return json.loads((models_dir / "manifest.json").read_text())["default"]


def run_in_process(models_dir: Path, case: Path, repeats: int, env: dict[str, str], cwd: Path) -> dict:
    """The in-process measurement in a child on ``env``'s tree (see ``in_process``)."""
    command = [sys.executable, "-m", "bench.bench_speed", "--in-process", str(case), "--models-dir", str(models_dir)]
    command += ["--repeats", str(repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd=cwd)
    if done.returncode != 0:
        raise SystemExit(f"in-process run failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def in_process(case: Path, models_dir: Path, repeats: int) -> dict:
    """Open + segment + export, warm sessions, best of ``repeats``; seconds inside ONNX Runtime."""
    import onnxruntime as ort

    import liverhealth
    from liverhealth.workflow import Workstation

    inside = [0.0]
    fed: list[tuple[object, tuple, dict]] = []
    run = ort.InferenceSession.run

    def timed_run(self, *args, **kwargs):
        fed.append((self, args, kwargs))
        started = time.perf_counter()
        try:
            return run(self, *args, **kwargs)
        finally:
            inside[0] += time.perf_counter() - started

    ort.InferenceSession.run = timed_run
    workstation = Workstation(models_dir=models_dir)
    model = default_model(models_dir)
    rows = []
    for attempt in range(repeats + 1):  # the first warms the sessions and is not counted
        with tempfile.TemporaryDirectory() as out:
            inside[0] = 0.0
            fed.clear()
            started = time.perf_counter()
            session = workstation.session()
            session.open(str(case))
            opened = time.perf_counter()
            session.segment(model)
            segmented = time.perf_counter()
            session.export(Path(out))
            ended = time.perf_counter()
            if attempt:
                rows.append(
                    {
                        "total_s": ended - started,
                        "open_s": opened - started,
                        "segment_s": segmented - opened,
                        "export_s": ended - segmented,
                        "model_s": inside[0],
                    }
                )
    best = min(rows, key=lambda row: row["total_s"])
    alone = []
    for _ in range(repeats):  # the last run's batches again, nothing else running beside the model
        started = time.perf_counter()
        for session, args, kwargs in fed:
            run(session, *args, **kwargs)
        alone.append(time.perf_counter() - started)
    best["model_alone_s"] = min(alone)
    import resource

    best["peak_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    best["package"] = str(Path(liverhealth.__file__).parent)
    return best


def cohort_cases(data: Path) -> list[Path]:
    """The real CTs of ``bench.bench_batch``'s cohort, once each."""
    return [
        data / "3Dircadb1.1" / "PATIENT_DICOM.zip",
        data / "totalsegmentator" / "example_ct_dicom",
        data / "totalsegmentator" / "example_ct_sm.nii.gz",
        data / "dcmqi" / "ct-3slice",
    ]


def run_cohort(models_dir: Path, listing: Path, out: Path, env: dict[str, str]) -> float:
    """Wall seconds of ``liverhealth batch LISTING --workers 1`` (the local pool, one worker)."""
    command = [sys.executable, "-m", "liverhealth.cli", "--models-dir", str(models_dir), "batch", str(listing)]
    command += ["--out", str(out), "--workers", "1"]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=out.parent, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise SystemExit(f"batch failed: {done.stderr.strip()[-400:]}")
    return time.perf_counter() - started


def web_result_s(models_dir: Path, case: Path, env: dict[str, str], uploads: int) -> float:
    """Seconds from the start of an upload to the web page's result event, best of ``uploads``
    after one that warms the server's sessions (``bench.bench_web``'s client and server)."""
    from bench.bench_web import one_upload, running_server

    with running_server(models_dir, 1, env) as (url, _):
        rows = [one_upload(url, case) for _ in range(uploads + 1)]
    failed = [row["state"] for row in rows if row.get("state") != "done"]
    if failed:
        raise SystemExit(f"web upload failed: {failed[0]}")
    return min(float(row["result_s"]) for row in rows[1:])


def same_outputs(first: Path, second: Path) -> dict[str, bool]:
    """Whether the two output folders hold the same label and confidence voxels."""
    import nibabel as nib
    import numpy as np

    same = {}
    for name in ("labels.nii.gz", "confidence.nii.gz"):
        a, b = first / name, second / name
        if a.exists() and b.exists():
            same[name] = bool(np.array_equal(np.asanyarray(nib.load(a).dataobj), np.asanyarray(nib.load(b).dataobj)))
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="123ed3f", help="git revision measured as 'before'")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--case", default="3Dircadb1.1", help="a case folder of ../shared/data with PATIENT_DICOM.zip")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--skip-web", action="store_true", help="leave out the web page's time to result")
    parser.add_argument("--skip-cohort", action="store_true", help="leave out the cohort (batch) throughput")
    parser.add_argument("--in-process", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    from liverhealth import config

    models_dir = (args.models_dir or config.models_dir()).resolve()
    if args.in_process:
        print(json.dumps(in_process(args.in_process, models_dir, args.repeats)))
        return
    case = config.data_dir() / args.case / "PATIENT_DICOM.zip"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"case {args.case} ({case.name}); model {default_model(models_dir)}; baseline {args.baseline}; "
        f"median of {args.repeats} (CLI), best of {args.repeats} warm (in process)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"before": environment(unpack_baseline(args.baseline, Path(tmp))), "after": environment(None)}
        cli: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for attempt in range(args.repeats):
            for name, env in trees.items():
                cli[name].append(run_cli(models_dir, case, Path(tmp) / f"{name}{attempt}", env))
        same = same_outputs(Path(tmp) / "before0", Path(tmp) / "after0")
        inproc = {name: run_in_process(models_dir, case, args.repeats, env, Path(tmp)) for name, env in trees.items()}
        web = {name: [] for name in trees}
        cohort = {name: [] for name in trees}
        listing = Path(tmp) / "cohort.csv"
        cases = cohort_cases(config.data_dir())
        listing.write_text("path,case_id\n" + "".join(f"{ct},case{i}\n" for i, ct in enumerate(cases)))
        for attempt in range(args.repeats):
            for name, env in trees.items():
                if not args.skip_web and attempt == 0:
                    web[name].append(web_result_s(models_dir, case, env, args.repeats))
                if not args.skip_cohort:
                    cohort[name].append(run_cohort(models_dir, listing, Path(tmp) / f"cohort-{name}{attempt}", env))
        if inproc["before"]["package"] == inproc["after"]["package"]:
            raise SystemExit(f"both runs imported {inproc['after']['package']}: the baseline was not used")
    rows = {}
    for name in trees:
        walls, peaks = zip(*cli[name], strict=True)
        inner = inproc[name]
        rows[name] = {
            "cli_wall_s": statistics.median(walls),
            "cli_peak_mib": max(peaks),
            "in_process_s": inner["total_s"],
            "model_s": inner["model_s"],
            "model_alone_s": inner["model_alone_s"],
            "in_process_over_model": inner["total_s"] / inner["model_alone_s"],
            "open_s": inner["open_s"],
            "segment_s": inner["segment_s"],
            "export_s": inner["export_s"],
        }
        if web[name]:
            rows[name]["web_result_s"] = web[name][0]
        if cohort[name]:
            rows[name]["cohort_per_min"] = len(cases) / statistics.median(cohort[name]) * 60
    print(f"\n{'':<24} {'before':>9} {'after':>9} {'after/before':>13}")
    for key, label in (
        ("cli_wall_s", "CLI wall s"),
        ("cli_peak_mib", "CLI peak MiB"),
        ("in_process_s", "in-process s"),
        ("model_s", "  inside ONNX run s"),
        ("model_alone_s", "model alone s"),
        ("in_process_over_model", "in-process / model alone"),
        ("open_s", "  open s"),
        ("segment_s", "  segment s"),
        ("export_s", "  export s"),
        ("web_result_s", "web upload -> result s"),
        ("cohort_per_min", f"cohort cases/min ({len(cases)})"),
    ):
        if key not in rows["after"]:
            continue
        before, after = rows["before"][key], rows["after"][key]
        print(f"{label:<24} {before:>9.2f} {after:>9.2f} {after / before:>13.2f}")
    print("same output voxel for voxel: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in same.items()))


if __name__ == "__main__":
    main()
