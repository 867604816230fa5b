"""Cohorts: one model over many CTs, each case written as `liverhealth segment` writes it, and a
cohort table (CSV, Parquet) with plots.

Cases come from files, folders (each DICOM series folder or NIfTI/NRRD file inside is one case)
or a CSV (path, optional case_id). Each worker process holds one workflow ``Workstation`` (the
model sessions load once per worker) with ``cores // workers`` ONNX threads. A case is written to
a temporary folder and renamed when complete, with ``batch.json`` naming the input's sha256 and
the model's: a rerun skips cases whose outputs match both, and a killed batch loses only the
cases in flight (their temporary folders are cleared on the next run). A bad case becomes an
error row with its one-line message; the batch goes on.
"""

from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import shutil
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from liverhealth.errors import InputError, LiverHealthError
from liverhealth.imaging import RASTER_SUFFIXES, VOLUME_SUFFIXES

BATCH_DOCUMENT = 1
COLUMNS = (
    "case_id", "input", "status", "error", "liver_ml", "tumour_ml", "burden_pct", "lesions",
    "largest_lesion_mm", "model_id", "model_sha256", "seconds",
)  # fmt: skip


@dataclass(frozen=True)
class Case:
    case_id: str
    path: str


@dataclass(frozen=True)
class Row:
    """One line of the cohort table."""

    case_id: str
    input: str
    status: str  # "done", "skipped" (complete from an earlier run), "error"
    error: str = ""
    liver_ml: float | None = None
    tumour_ml: float | None = None
    burden_pct: float | None = None
    lesions: int | None = None
    largest_lesion_mm: float | None = None
    model_id: str = ""
    model_sha256: str = ""
    seconds: float | None = None


def discover(inputs: Iterable[str | Path]) -> list[Case]:
    """The cases named by files, folders and CSV lists, with unique, file-system-safe case ids."""
    found: list[tuple[str | None, Path]] = []
    for item in inputs:
        path = Path(item)
        if path.suffix.lower() == ".csv" and path.is_file():
            found += _from_csv(path)
        elif path.is_dir():
            found += [(None, p) for p in _cases_in_folder(path)]
        elif path.exists():
            found.append((None, path))
        else:
            raise InputError(f"{path} does not exist. Check the batch's inputs.")
    cases, seen = [], set()
    for given, path in found:
        base = _safe_id(given or _stem(path))
        case_id, n = base, 2
        while case_id in seen:
            case_id, n = f"{base}-{n}", n + 1
        seen.add(case_id)
        cases.append(Case(case_id, str(path)))
    if not cases:
        raise InputError("The batch's inputs hold no case (no DICOM series, NIfTI, NRRD or image found).")
    return cases


def _from_csv(path: Path) -> list[tuple[str | None, Path]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if rows and "path" not in rows[0]:
        raise InputError(f"{path}: a batch CSV needs a 'path' column (and optionally 'case_id').")
    return [(row.get("case_id") or None, (path.parent / row["path"]).resolve()) for row in rows if row.get("path")]


def _cases_in_folder(folder: Path) -> list[Path]:
    """Volume and image files are cases; a folder holding DICOM files (and no sub-case) is one case."""
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    singles = [p for p in files if p.name.lower().endswith((*VOLUME_SUFFIXES, *RASTER_SUFFIXES, ".zip"))]
    others = [p for p in files if p not in singles]
    cases = list(singles)
    if others and any(_is_dicom(p) for p in others[:5]):
        cases.append(folder)
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        cases += _cases_in_folder(sub)
    return cases


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(132)[128:132] == b"DICM"


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", *VOLUME_SUFFIXES, ".zip", *RASTER_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or name
    return name


def _safe_id(text: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("._")
    return cleaned[:80] or "case"


def input_sha256(path: Path) -> str:
    """sha256 over the input's bytes (a folder: every file, in name order, with its relative name)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(str(file.relative_to(path) if path.is_dir() else file.name).encode())
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()


# the work, in worker processes -------------------------------------------------------------------
_WORKSTATION = None
_STOP = None  # set by the batch when it is interrupted: queued cases return without work


def _init_worker(models_dir: str | None, threads: int, stop) -> None:
    global _WORKSTATION, _STOP
    _STOP = stop
    os.environ["LIVERHEALTH_THREADS"] = str(threads)
    from liverhealth.workflow import Workstation

    _WORKSTATION = Workstation(models_dir=Path(models_dir) if models_dir else None)


def run_case(case: Case, out_root: str, model_id: str | None, model_sha256: str) -> Row:
    """Segment one case into ``out_root/case_id`` (via a temporary folder); a bad case is an error row."""
    from liverhealth.workflow import Workstation

    started = time.perf_counter()
    out = Path(out_root)
    final, partial = out / case.case_id, out / f".{case.case_id}.{os.getpid()}.partial"
    if _STOP is not None and _STOP.is_set():
        return Row(case.case_id, case.path, "not run", "The batch was interrupted before this case.")
    try:
        source_sha = input_sha256(Path(case.path))
        done = _complete(final, source_sha, model_sha256)
        if done is not None:
            return done
        shutil.rmtree(partial, ignore_errors=True)
        session = (_WORKSTATION or Workstation()).session()
        session.open(case.path)
        result = session.segment(model_id)
        session.export(partial)
        row = _row(case, "done", result, time.perf_counter() - started)
        document = {"liverhealth_batch_case": BATCH_DOCUMENT, "input_sha256": source_sha, "row": asdict(row)}
        (partial / "batch.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        return row
    except LiverHealthError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        return Row(case.case_id, case.path, "error", " ".join(str(exc).split())[:300],
                   seconds=round(time.perf_counter() - started, 2))  # fmt: skip
    except MemoryError:
        shutil.rmtree(partial, ignore_errors=True)
        return Row(case.case_id, case.path, "error", "Out of memory on this case; run it alone or with fewer workers.")


def _complete(folder: Path, source_sha: str, model_sha256: str) -> Row | None:
    try:
        document = json.loads((folder / "batch.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    row = document.get("row", {})
    if document.get("input_sha256") != source_sha or row.get("model_sha256") != model_sha256:
        return None
    if not (folder / "measurements.json").is_file():
        return None
    return Row(**{**row, "status": "skipped"})


def _row(case: Case, status: str, result: Any, seconds: float) -> Row:
    m = result.measurements
    diameters = [lesion.longest_diameter_mm for lesion in m.lesions if lesion.longest_diameter_mm is not None]
    return Row(
        case_id=case.case_id,
        input=case.path,
        status=status,
        liver_ml=None if m.liver_volume_ml is None else round(m.liver_volume_ml, 2),
        tumour_ml=None if m.tumour_volume_ml is None else round(m.tumour_volume_ml, 3),
        burden_pct=round(m.tumour_burden_pct, 3),
        lesions=len(m.lesions),
        largest_lesion_mm=max(diameters) if diameters else None,
        model_id=result.model.model_id,
        model_sha256=result.model.sha256,
        seconds=round(seconds, 2),
    )


# the batch, in the calling process ---------------------------------------------------------------
def run_batch(
    cases: list[Case],
    out: Path,
    model_id: str | None,
    model_sha256: str,
    models_dir: Path | None = None,
    workers: int = 1,
    fail_fast: bool = False,
    on_row: Callable[[Row], None] | None = None,
) -> list[Row]:
    """Run every case on a local process pool (threads per worker so that workers × threads ≤
    cores); write the cohort table and plots; return the rows in case order."""
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob(".*.partial"):  # cases in flight when an earlier batch was killed
        shutil.rmtree(stale, ignore_errors=True)
    workers = max(1, min(workers, len(cases)))
    threads = max(1, (os.cpu_count() or 1) // workers)
    rows: dict[str, Row] = {}
    context = multiprocessing.get_context()
    stop = context.Event()
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_init_worker,
        initargs=(str(models_dir) if models_dir else None, threads, stop),
    )
    try:
        futures = {pool.submit(run_case, case, str(out), model_id, model_sha256): case for case in cases}
        for future in as_completed(futures):
            row = future.result()
            rows[row.case_id] = row
            if on_row:
                on_row(row)
            if fail_fast and row.status == "error":
                break
    except BaseException:  # interrupted (Ctrl+C, SIGTERM): the cases in flight finish, the rest are not started
        stop.set()
        raise
    finally:
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
    ordered = [rows[c.case_id] for c in cases if c.case_id in rows]
    write_cohort(ordered, out)
    return ordered


def write_cohort(rows: list[Row], out: Path) -> None:
    """cohort.csv, cohort.parquet and cohort.png (distributions), each written whole or not at all."""
    from liverhealth.imaging.writers import atomic_target

    with atomic_target(out / "cohort.csv") as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        table = pa.Table.from_pylist([asdict(row) for row in rows], schema=_schema(pa))
        with atomic_target(out / "cohort.parquet") as temporary:
            pq.write_table(table, str(temporary))
    _plots(rows, out)


def _schema(pa):
    text, number = pa.string(), pa.float64()
    types = {"lesions": pa.int64()} | {
        k: number for k in ("liver_ml", "tumour_ml", "burden_pct", "largest_lesion_mm", "seconds")
    }
    return pa.schema([(name, types.get(name, text)) for name in COLUMNS])


def _plots(rows: list[Row], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    from liverhealth.imaging.writers import atomic_target

    ok = [r for r in rows if r.status in ("done", "skipped")]
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = (
        ("Liver volume (mL)", [r.liver_ml for r in ok if r.liver_ml is not None]),
        ("Tumour burden (% of liver)", [r.burden_pct for r in ok if r.burden_pct is not None]),
        ("Lesions per case", [r.lesions for r in ok if r.lesions is not None]),
        ("Seconds per case", [r.seconds for r in ok if r.seconds is not None]),
    )
    for axis, (title, values) in zip(axes.flat, panels, strict=True):
        axis.hist(values, bins=min(20, max(len(values), 1)), color="#4a7fb0")
        axis.set_title(f"{title}, n = {len(values)}")
    figure.suptitle(f"LiverHealth cohort: {len(ok)} cases, {len(rows) - len(ok)} failed (draft, not reviewed)")
    figure.tight_layout()
    with atomic_target(out / "cohort.png") as temporary:
        figure.savefig(str(temporary), format="png", dpi=100)
    plt.close(figure)
