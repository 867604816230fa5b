"""LiverHealth side by side with a published liver-and-lesion tool, on the same CT in one run.

    python -m bench.compare_peers [--cases 3Dircadb1.1 3Dircadb1.7] [--no-peer] [--held-out-only] [--out DIR]

For each IRCADb case in the data folder it runs, as a user would, ``liverhealth segment`` with
every shipped model (``models/``) and every leave-one-case-out fold model
(``training/work/models_eval``, when it exists), and the peer, pyliverlesionseg 0.3, in its own
Python 3.6 environment (``bench/peer/setup_pyliverlesionseg.sh``, run here when the environment
is missing; it takes minutes). The peer reads NIfTI only, so the CT is converted with our own
reader first (not counted in its time). Each run is a separate process: wall time from start to
exit, peak RSS from the kernel (``wait4``). Scores against the IRCADb reference: liver Dice
(liver + tumour, as LiTS scores it), tumour Dice, lesion recall (a reference lesion is found when
a predicted tumour component overlaps it), false-positive lesions, mean per-lesion Dice.

Rows on a case the model was trained on say so; pyliverlesionseg was trained on LiTS, whose
training set contains 3D-IRCADb-01, so its rows are marked as possibly trained on the case.
Prints one Markdown table with the ratios ours / peer and writes ``results.json``,
``comparison.md`` and ``comparison.png`` (Dice and time) under ``--out``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from bench.commands import segment_command
from liverhealth import config
from liverhealth.analysis.detection import lesion_detection
from liverhealth.analysis.metrics import dice
from liverhealth.errors import LiverHealthError
from liverhealth.imaging.ircadb import load_ircadb_case
from liverhealth.imaging.writers import read_label_map, save_volume_nifti
from liverhealth.inference import load_manifest
from training.protocol import FOLDS

PEER = "pyliverlesionseg 0.3"
PEER_VENV = Path(os.environ.get("PEER_VENV", config.REPO_ROOT / ".venv-peer"))
PEER_SETUP = config.REPO_ROOT / "bench" / "peer" / "setup_pyliverlesionseg.sh"
PEER_RUNNER = config.REPO_ROOT / "bench" / "peer" / "run_pyliverlesionseg.py"
PEER_TRAINING = "LiTS (contains 3D-IRCADb-01): may include this case"


@dataclass(frozen=True)
class Measured:
    """One process: how it ended, how long it took, how much memory it held at most."""

    returncode: int
    wall_s: float
    peak_rss_mb: float
    tail: str


@dataclass
class Row:
    """One tool (or model) on one case."""

    tool: str
    case: str
    trained_on_case: str
    wall_s: float | None = None
    peak_rss_mb: float | None = None
    liver_dice: float | None = None
    tumour_dice: float | None = None
    lesions_found: int | None = None
    reference_lesions: int | None = None
    false_positive_lesions: int | None = None
    mean_lesion_dice: float | None = None
    note: str = ""
    ratios: dict[str, float] = field(default_factory=dict)


def _high_water_kb(pid: int) -> int:
    """VmHWM of a running process in kB (0 once it has exited)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(command: list[str], env: dict[str, str] | None = None, timeout_s: float = 3600) -> Measured:
    """Run a command to its end; wall time and the peak RSS of the process.

    The peak is the process's own high-water mark (VmHWM), sampled every 20 ms: wait4's
    ru_maxrss would also count this (large) parent, whose memory the child shares until exec.
    """
    started = time.perf_counter()
    peak_kb = 0
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})}
        )
        deadline = started + timeout_s
        while True:
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
            pid, status, _ = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, _ = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        tail = log.read().decode("utf-8", "replace")[-2000:]
    return Measured(process.returncode, round(wall, 2), round(peak_kb / 1024, 1), tail)


def labels_on_grid(path: Path) -> np.ndarray:
    """A label NIfTI written on our CT grid ([column, row, slice]) as [z, y, x] uint8."""
    return read_label_map(path)[0]


def score(row: Row, prediction: np.ndarray, reference: np.ndarray) -> None:
    """Fill a row's accuracy columns from a label map against the reference."""
    if prediction.shape != reference.shape:
        row.note = f"output shape {prediction.shape} differs from the CT {reference.shape}"
        return
    row.liver_dice = round(dice(prediction > 0, reference > 0), 4)
    has_tumour = bool((reference == 2).any())  # without one, tumour Dice is undefined: FP lesions count
    row.tumour_dice = round(dice(prediction == 2, reference == 2), 4) if has_tumour else None
    detection = lesion_detection(prediction, reference)
    row.lesions_found, row.reference_lesions = detection.found_count, detection.reference_count
    row.false_positive_lesions = detection.false_positives
    row.mean_lesion_dice = round(float(np.mean([m.dice for m in detection.matches])), 4) if detection.matches else None


def our_models(models_dirs: list[Path]) -> list[tuple[Path, str, str | None]]:
    """(models dir, model id, protocol fold) of every model in these manifests.

    A file listed twice (a shipped model that is also a fold model) runs once, under its first name.
    """
    found, seen = [], set()
    for folder in models_dirs:
        if not (folder / "manifest.json").is_file():
            continue
        for spec in load_manifest(folder).models:
            if spec.sha256 not in seen:
                seen.add(spec.sha256)
                found.append((folder, spec.model_id, spec.trained.get("fold")))
    return found


def trained_on(fold: str | None, case: str) -> str:
    """Whether a model of this protocol fold saw the case in training."""
    if fold not in FOLDS:
        return "unknown (no protocol fold recorded)"
    cases = {name.split("+")[0] for name in FOLDS[fold]["train"] + FOLDS[fold]["val"]}
    return "yes" if case in cases else "no (held out)"


def ensure_peer() -> str | None:
    """Set up the peer's environment when missing; None when ready, else why it is skipped."""
    python = PEER_VENV / "bin" / "python"
    if python.exists():
        return None
    print(f"setting up {PEER} in {PEER_VENV} (several minutes, once)...", file=sys.stderr)
    result = subprocess.run(
        ["bash", str(PEER_SETUP)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PEER_VENV": str(PEER_VENV)},
    )
    if result.returncode == 3:
        return (
            f"{PEER} skipped: no Python 3.6 here (it needs TensorFlow 1.12); install one, e.g. "
            "`pyenv install 3.6.15`, or set PYTHON36"
        )
    if result.returncode != 0 or not python.exists():
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
        script = PEER_SETUP.relative_to(config.REPO_ROOT)
        return f"{PEER} skipped: its set-up failed ({last[0][:200]}); see bash {script}"
    return None


def add_ratios(rows: list[Row]) -> None:
    """Ours / peer on the same case: time, memory and Dice."""
    for row in rows:
        row.ratios = {}
    peers = {r.case: r for r in rows if r.tool == PEER and r.wall_s is not None and not r.note}
    for row in rows:
        peer = peers.get(row.case)
        if row.tool == PEER or peer is None or row.wall_s is None:
            continue
        for key in ("wall_s", "peak_rss_mb", "liver_dice", "tumour_dice"):
            mine, theirs = getattr(row, key), getattr(peer, key)
            if mine is not None and theirs:
                row.ratios[key] = round(mine / theirs, 4)


def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def table(rows: list[Row]) -> str:
    """The Markdown table the README quotes."""
    lines = [
        "| case | tool | trained on this case? | wall s | peak RSS MB | liver Dice | tumour Dice | "
        "lesions found | FP lesions | time ours/peer | RSS ours/peer | liver Dice ours/peer | "
        "tumour Dice ours/peer |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        found = "–" if r.lesions_found is None else f"{r.lesions_found} of {r.reference_lesions}"
        tumour = "n/a (no tumour)" if r.reference_lesions == 0 else _fmt(r.tumour_dice)
        tool = r.tool + (f" ({r.note})" if r.note else "")
        lines.append(
            f"| {r.case} | {tool} | {r.trained_on_case} | {_fmt(r.wall_s, 1)} | {_fmt(r.peak_rss_mb, 0)} | "
            f"{_fmt(r.liver_dice)} | {tumour} | {found} | {_fmt(r.false_positive_lesions)} | "
            + " | ".join(_fmt(r.ratios.get(k), 3) for k in ("wall_s", "peak_rss_mb", "liver_dice", "tumour_dice"))
            + " |"
        )
    return "\n".join(lines)


def chart(rows: list[Row], path: Path) -> None:
    """Bar chart: liver and tumour Dice, and wall time (log scale), per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.liver_dice is not None]
    if not shown:
        return
    x = np.arange(len(shown))
    labels = [f"{r.tool}\n{r.case}" + ("\n(trained on it)" if r.trained_on_case == "yes" else "") for r in shown]
    fig, (left, right) = plt.subplots(1, 2, figsize=(max(8, 1.3 * len(shown) * 2), 4.2))
    left.bar(x - 0.2, [r.liver_dice for r in shown], 0.4, label="liver Dice")
    left.bar(x + 0.2, [r.tumour_dice or 0 for r in shown], 0.4, label="tumour Dice")
    left.set_ylim(0, 1)
    left.legend(fontsize=7)
    right.bar(x, [r.wall_s for r in shown], 0.6, color="tab:gray")
    right.set_yscale("log")
    right.set_ylabel("wall time, s (log)")
    for axis in (left, right):
        axis.set_xticks(x)
        axis.set_xticklabels(labels, fontsize=6, rotation=60, ha="right")
    fig.suptitle(f"Same CT, same run ({platform.node() or 'this machine'}, {os.cpu_count()} cores)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def compare_case(
    case: str,
    data: Path,
    models: list[tuple[Path, str, str | None]],
    peer_skip: str | None,
    peer_liver_only: bool,
    work: Path,
    held_out_only: bool = False,
) -> list[Row]:
    """Every tool on one case (with ``held_out_only``, only our models that did not train on it)."""
    folder = data / case
    volume, reference = load_ircadb_case(folder)
    dicom = folder / "PATIENT_DICOM.zip"
    rows = []
    for models_dir, model_id, fold in models:
        row = Row(tool=f"LiverHealth {model_id}", case=case, trained_on_case=trained_on(fold, case))
        if held_out_only and not row.trained_on_case.startswith("no"):
            continue
        out = work / f"{case}_{model_id}"
        print(f"{case}: liverhealth segment --model {model_id}", file=sys.stderr)
        measured = run_measured(segment_command(models_dir, dicom, model_id, out))
        row.wall_s, row.peak_rss_mb = measured.wall_s, measured.peak_rss_mb
        if measured.returncode != 0:
            row.note = f"failed: {measured.tail.strip().splitlines()[-1][:120]}"
        else:
            score(row, labels_on_grid(out / "labels.nii.gz"), reference)
        rows.append(row)
    peer_row = Row(tool=PEER, case=case, trained_on_case=PEER_TRAINING)
    if peer_skip:
        peer_row.note = peer_skip
    else:
        ct = work / f"{case}_ct.nii.gz"
        save_volume_nifti(volume, ct)
        out = work / f"{case}_peer_labels.nii.gz"
        command = [str(PEER_VENV / "bin" / "python"), str(PEER_RUNNER), "--ct", str(ct), "--out", str(out)]
        if peer_liver_only:
            command.append("--liver-only")
            peer_row.tool = f"{PEER} (liver only)"
        print(f"{case}: {PEER}{' (liver only)' if peer_liver_only else ''} (minutes)", file=sys.stderr)
        measured = run_measured(command)
        peer_row.wall_s, peer_row.peak_rss_mb = measured.wall_s, measured.peak_rss_mb
        if measured.returncode != 0:
            peer_row.note = f"failed: {(measured.tail.strip().splitlines() or ['no output'])[-1][:120]}"
        else:
            score(peer_row, labels_on_grid(out), reference)
    rows.append(peer_row)
    return rows


def write_outputs(rows: list[Row], out: Path, header: str, stamp: str, machine: str) -> str:
    """results.json, comparison.md and comparison.png; returns the Markdown."""
    add_ratios(rows)
    markdown = header + "\n\n" + table(rows)
    (out / "comparison.md").write_text(markdown + "\n")
    (out / "results.json").write_text(
        json.dumps(
            {"measured": stamp, "machine": machine, "header": header, "rows": [asdict(r) for r in rows]}, indent=2
        )
    )
    chart(rows, out / "comparison.png")
    return markdown


def render(out: Path) -> int:
    """Redraw the outputs of an earlier run from its results.json."""
    saved = json.loads((out / "results.json").read_text())
    rows = [Row(**row) for row in saved["rows"]]
    header = saved.get("header") or (out / "comparison.md").read_text().split("\n\n", 1)[0]
    print(write_outputs(rows, out, header, saved["measured"], saved["machine"]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="LiverHealth vs pyliverlesionseg on the IRCADb cases, one table.")
    parser.add_argument(
        "--data", type=Path, default=None, help="data folder (default: $LIVERHEALTH_DATA or ../shared/data)"
    )
    parser.add_argument("--cases", nargs="+", default=None, help="IRCADb case folders (default: every 3Dircadb*)")
    parser.add_argument(
        "--models-dir",
        type=Path,
        action="append",
        default=None,
        help="manifest folders (default: models/ and training/work/models_eval if present)",
    )
    parser.add_argument("--no-peer", action="store_true", help="only our models")
    parser.add_argument(
        "--peer-liver-only",
        action="store_true",
        help="run the peer's liver step only (minutes instead of ~20 per case)",
    )
    parser.add_argument(
        "--held-out-only", action="store_true", help="run our models only on the cases their fold held out"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/compare_peers"))
    parser.add_argument(
        "--render", action="store_true", help="only redraw the table and chart from --out/results.json (no runs)"
    )
    args = parser.parse_args(argv)
    if args.render:
        return render(args.out)
    data = args.data or config.data_dir()
    cases = args.cases or sorted(p.name for p in data.glob("3Dircadb*") if (p / "PATIENT_DICOM.zip").is_file())
    if not cases:
        print(f"No IRCADb cases under {data}; set LIVERHEALTH_DATA or pass --data.", file=sys.stderr)
        return 2
    models_dirs = args.models_dir or [config.REPO_ROOT / "models", config.REPO_ROOT / "training/work/models_eval"]
    try:
        models = our_models(models_dirs)
    except LiverHealthError as exc:
        print(exc, file=sys.stderr)
        return 2
    peer_skip = "not run (--no-peer)" if args.no_peer else ensure_peer()
    if peer_skip:
        print(peer_skip, file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="liverhealth-compare-") as tmp:
        for case in cases:
            rows += compare_case(case, data, models, peer_skip, args.peer_liver_only, Path(tmp), args.held_out_only)
    stamp = dt.datetime.now().astimezone().isoformat(timespec="seconds")
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    header = (
        f"Measured {stamp} on {machine}; data {os.path.relpath(Path(data).resolve())}; "
        "command: python -m bench.compare_peers " + " ".join(argv if argv is not None else sys.argv[1:])
    )
    print(write_outputs(rows, args.out, header, stamp, machine))
    return 0


if __name__ == "__main__":
    sys.exit(main())
