"""One case of a batch, in a worker: segment it (and, when asked, make the report, the DICOM SEG/SR
and the database row) into a temporary folder that is renamed when complete, with ``batch.json``
naming the input's sha256, the model's and what was asked, so that a rerun skips it and a killed
batch never leaves a folder that looks complete."""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, fields
from enum import StrEnum
from pathlib import Path
from typing import Any

from liverhealth.batch.cases import Case, input_sha256
from liverhealth.errors import InputError, LiverHealthError
from liverhealth.text import one_line

BATCH_DOCUMENT = 2  # 1: without "options" (nothing beyond the segmentation was asked)


class CaseStatus(StrEnum):
    """How a case of the batch ended; the values are what batch.json and the cohort table hold."""

    DONE = "done"
    SKIPPED = "skipped"  # complete from an earlier run
    ERROR = "error"
    NOT_RUN = "not run"  # the batch was interrupted before it


@dataclass(frozen=True)
class CaseOptions:
    """What every case of the batch makes, beside the segmentation's files."""

    model_id: str
    model_sha256: str
    report: bool = False  # report.pdf/.md (with an LLM draft when one is configured)
    dicom_out: bool = False  # CASE/dicom/seg.dcm, sr.dcm (and report.dcm) on DICOM inputs
    save_db: bool = False  # a row in the results database

    def asked(self) -> dict[str, bool]:
        return {"report": self.report, "dicom_out": self.dicom_out, "save_db": self.save_db}


@dataclass(frozen=True)
class Row:
    """One line of the cohort table; times in seconds (``inference_s`` includes the measurement)."""

    case_id: str
    input: str
    status: CaseStatus
    error: str = ""
    note: str = ""  # what was asked but could not be made for this case (e.g. a SEG on a NIfTI)
    liver_ml: float | None = None
    tumour_ml: float | None = None
    burden_pct: float | None = None
    lesions: int | None = None
    largest_lesion_mm: float | None = None
    liver_confidence: float | None = None  # the model's confidence along the liver edge (0..1)
    lesions_check_first: int | None = None  # lesions under the model's calibrated threshold; None: not calibrated
    model_id: str = ""
    model_sha256: str = ""
    result_id: int | None = None
    worker: str = ""
    seconds: float | None = None
    load_s: float | None = None
    inference_s: float | None = None
    outputs_s: float | None = None


COLUMNS = tuple(f.name for f in fields(Row))


class CaseRunner:
    """A worker's state: one workflow ``Workstation`` (the model sessions load once per worker,
    with ``threads`` ONNX threads) and the batch's stop flag (queued cases then return unrun)."""

    def __init__(self, models_dir: str | None, db_url: str | None, threads: int, stop: Any = None) -> None:
        os.environ["LIVERHEALTH_THREADS"] = str(threads)
        from liverhealth.workflow import Workstation

        self.workstation = Workstation(models_dir=Path(models_dir) if models_dir else None, db_url=db_url)
        self.stop = stop
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def run(self, case: Case, out_root: str, options: CaseOptions) -> Row:
        """Make ``out_root/case_id``; a bad case is an error row, never an exception."""
        started = time.perf_counter()
        out = Path(out_root)
        final, partial = out / case.case_id, out / f".{case.case_id}.{os.getpid()}.partial"
        if self.stop is not None and self.stop.is_set():
            return Row(case.case_id, case.path, CaseStatus.NOT_RUN, "The batch was interrupted before this case.")
        try:
            source_sha = input_sha256(Path(case.path))
            database = self.workstation.repository.where if options.save_db else None
            done = complete_row(final, source_sha, options, database)
            if done is not None:
                return done
            shutil.rmtree(partial, ignore_errors=True)
            row = self._segment(case, partial, options, started)
            document = {
                "liverhealth_batch_case": BATCH_DOCUMENT,
                "input_sha256": source_sha,
                "options": options.asked(),
                "database": database,  # where --save-db saved it (no credentials)
                "row": asdict(row),
            }
            (partial / "batch.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
            shutil.rmtree(final, ignore_errors=True)
            os.replace(partial, final)
            return row
        except LiverHealthError as exc:
            return self._failed(case, partial, one_line(exc, 300), started)
        except MemoryError:
            message = "Out of memory on this case; run it alone or with fewer workers."
            return self._failed(case, partial, message, started)
        except Exception as exc:  # a defect on one case must not end a cohort of thousands
            message = f"Unexpected {type(exc).__name__} on this case ({one_line(exc, 200)}); please report it."
            return self._failed(case, partial, message, started)

    def _segment(self, case: Case, folder: Path, options: CaseOptions, started: float) -> Row:
        from liverhealth.imaging.dicom_seg import source_headers

        session = self.workstation.session()
        session.open(case.path)
        notes, dicom = [], options.dicom_out
        if dicom:
            try:
                source_headers(session.volume)
            except InputError as exc:
                notes.append(f"No DICOM SEG/SR: {one_line(exc, 300)}")
                dicom = False
        result = session.segment(options.model_id)
        tick = time.perf_counter()
        if options.report:
            content = session.make_report()
            if content.report.draft_notice:
                notes.append(f"Report without an LLM draft: {one_line(content.report.draft_notice, 160)}")
        session.export(folder)
        if dicom:
            session.export_dicom(folder / "dicom")
        saved = session.save() if options.save_db else None
        m, timings = result.measurements, result.timings
        flags = self.workstation.confidence_flags(result.model)
        diameters = [lesion.longest_diameter_mm for lesion in m.lesions if lesion.longest_diameter_mm is not None]
        return Row(
            case_id=case.case_id,
            input=case.path,
            status=CaseStatus.DONE,
            note=" ".join(notes),
            liver_ml=None if m.liver_volume_ml is None else round(m.liver_volume_ml, 2),
            tumour_ml=None if m.tumour_volume_ml is None else round(m.tumour_volume_ml, 3),
            burden_pct=round(m.tumour_burden_pct, 3),
            lesions=len(m.lesions),
            largest_lesion_mm=max(diameters) if diameters else None,
            liver_confidence=m.liver_confidence,
            lesions_check_first=None if flags.lesion_below is None else sum(bool(x.unsure) for x in m.lesions),
            model_id=result.model.model_id,
            model_sha256=result.model.sha256,
            result_id=saved.result_id if saved else None,
            worker=self.worker,
            seconds=round(time.perf_counter() - started, 2),
            load_s=round(timings["load_s"], 2),
            inference_s=round(timings["total_s"] - timings["load_s"], 2),
            outputs_s=round(time.perf_counter() - tick, 2),
        )

    @staticmethod
    def _failed(case: Case, partial: Path, message: str, started: float) -> Row:
        shutil.rmtree(partial, ignore_errors=True)
        return Row(case.case_id, case.path, CaseStatus.ERROR, message, seconds=round(time.perf_counter() - started, 2))


def complete_row(folder: Path, source_sha: str, options: CaseOptions, database: str | None = None) -> Row | None:
    """The earlier run's row, as "skipped", when ``folder`` is complete for this input, this model
    and everything now asked (with --save-db: in this database); else None (the case is made again)."""
    try:
        document = json.loads((folder / "batch.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    row = document.get("row", {})
    if document.get("input_sha256") != source_sha or row.get("model_sha256") != options.model_sha256:
        return None
    earlier = document.get("options", {})
    if any(wanted and not earlier.get(name) for name, wanted in options.asked().items()):
        return None
    if options.save_db and document.get("database") != database:
        return None
    if not (folder / "measurements.json").is_file():
        return None
    known = {f.name for f in fields(Row)}
    return Row(**{**{k: v for k, v in row.items() if k in known}, "status": CaseStatus.SKIPPED})


_RUNNER: CaseRunner | None = None


def worker_runner(models_dir: str | None, db_url: str | None, threads: int, stop: Any = None) -> CaseRunner:
    """This process's runner, made on first use (a pool initializer or the first Ray task)."""
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = CaseRunner(models_dir, db_url, threads, stop)
    return _RUNNER
