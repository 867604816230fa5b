"""Web jobs: one upload (or one reopened result) worked on by the workflow service off the
request thread, in a bounded pool (uploads queue), with events the page follows live.

Each job has its own folder and its own workflow ``Session``, so two users' jobs never share a
file or a result. Events are appended to the job and read by index (server-sent events resume
from the last one a page saw). A cancelled or failed job keeps no outputs; a job's folder goes
when the job is discarded or the server stops.
"""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from liverhealth import config
from liverhealth.analysis.recist import target_lesions
from liverhealth.domain import PatientInfo
from liverhealth.errors import Cancelled, LiverHealthError
from liverhealth.imaging.display import uncertainty_map
from liverhealth.imaging.geometry import index_to_ras
from liverhealth.imaging.writers import save_label_map, save_labels_nifti, save_volume_nifti
from liverhealth.presentation import confidence_text, lesion_text, size_summary
from liverhealth.text import one_line
from liverhealth.workflow import PACS_SCHEME, Session, Workstation


class JobState(StrEnum):
    """Where a job is; the values are what the page's events and the API carry."""

    QUEUED = "queued"
    LOADING = "loading"
    SEGMENTING = "segmenting"
    REPORTING = "reporting"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
JOB_TTL_S = 4 * 3600  # a finished job (its files and the result held for saving) is kept this long
FILES = {  # download name -> (file in the job's output folder, media type)
    "ct.nii.gz": ("ct.nii.gz", "application/gzip"),
    "labels.nii.gz": ("labels.nii.gz", "application/gzip"),
    "labels.png": ("labels.png", "image/png"),
    "confidence.nii.gz": ("confidence.nii.gz", "application/gzip"),
    "uncertainty.nii.gz": ("uncertainty.nii.gz", "application/gzip"),
    "overlay.png": ("overlay.png", "image/png"),
    "measurements.json": ("measurements.json", "application/json"),
    "report.pdf": ("report.pdf", "application/pdf"),
    "seg.dcm": ("seg.dcm", "application/dicom"),
    "sr.dcm": ("sr.dcm", "application/dicom"),
    "comparison.png": ("comparison.png", "image/png"),
    "comparison.json": ("comparison.json", "application/json"),
}


@dataclass(frozen=True)
class JobRequest:
    """What a user asked for with an upload."""

    model_id: str | None = None
    patient: PatientInfo | None = None  # typed in the form: goes into the PDF only
    include_patient: bool = False  # put the patient (typed or from the DICOM) in the PDF


@dataclass
class Job:
    job_id: str
    owner: str
    folder: Path
    request: JobRequest
    state: JobState = JobState.QUEUED
    message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    session: Session | None = None
    summary: dict[str, Any] | None = None
    created_s: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, kind: str, **data: Any) -> None:
        with self.lock:
            self.events.append(
                {"id": len(self.events), "kind": kind, "t_s": round(time.monotonic() - self.created_s, 3), **data}
            )

    def set_state(self, state: JobState, message: str = "") -> None:
        self.state, self.message = state, message
        self.emit("state", state=state, message=message)

    def events_from(self, start: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.events[start:]

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def out(self) -> Path:
        return self.folder / "out"


class JobManager:
    """Runs jobs on ``workers`` threads (the workflow's ONNX and numpy work releases the GIL, so
    the server keeps answering); more jobs than workers wait in the queue."""

    def __init__(self, workstation: Workstation, root: Path, workers: int = 1, max_jobs_per_user: int = 20) -> None:
        self.workstation = workstation
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="liverhealth-job")
        self.jobs: dict[str, Job] = {}
        self.max_jobs_per_user = max_jobs_per_user
        self._lock = threading.Lock()

    def new_folder(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        return job_id, self.root / job_id

    def submit_upload(self, job_id: str, owner: str, upload: Path | str, request: JobRequest) -> Job:
        """Work on an upload stored at ``upload`` (or ``pacs://STUDY_UID``: retrieved from the PACS first)."""
        job = self._add(Job(job_id, owner, self.root / job_id, request))
        self.pool.submit(self._run, job, lambda: self._open_upload(job, upload))
        return job

    def submit_reopen(self, owner: str, result_id: int, stored_report_pdf: bytes | None) -> Job:
        job_id, folder = self.new_folder()
        folder.mkdir(parents=True)
        job = self._add(Job(job_id, owner, folder, JobRequest()))
        job.summary = {"saved_result_id": result_id}
        self.pool.submit(self._run, job, lambda: self._reopen(job, result_id, stored_report_pdf))
        return job

    def get(self, job_id: str, owner: str, admin: bool = False) -> Job | None:
        job = self.jobs.get(job_id)
        return job if job is not None and (admin or job.owner == owner) else None

    def cancel(self, job: Job) -> None:
        job.cancel_event.set()
        job.emit("cancel-requested")

    def discard(self, job: Job) -> None:
        self.cancel(job)
        with self._lock:
            self.jobs.pop(job.job_id, None)
        if job.finished:
            shutil.rmtree(job.folder, ignore_errors=True)

    def shutdown(self) -> None:
        for job in list(self.jobs.values()):
            job.cancel_event.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def _add(self, job: Job) -> Job:
        with self._lock:
            now = time.monotonic()
            mine = sorted((j for j in self.jobs.values() if j.owner == job.owner), key=lambda j: j.created_s)
            surplus = {j.job_id for j in mine[: max(0, len(mine) - self.max_jobs_per_user + 1)]}
            for old in list(self.jobs.values()):
                if old.finished and (old.job_id in surplus or now - old.created_s > JOB_TTL_S):
                    self.jobs.pop(old.job_id, None)  # a user's oldest finished jobs make room; old ones expire
                    shutil.rmtree(old.folder, ignore_errors=True)
            self.jobs[job.job_id] = job
        job.emit("state", state=JobState.QUEUED, message="Waiting for a free worker.")
        return job

    # the work ---------------------------------------------------------------------------------
    def _run(self, job: Job, work) -> None:
        try:
            if job.cancel_event.is_set():
                raise Cancelled("Cancelled before it started.")
            work()
            job.set_state(JobState.DONE, "Ready.")
        except Cancelled:
            shutil.rmtree(job.out, ignore_errors=True)
            job.set_state(JobState.CANCELLED, "Cancelled; nothing was kept.")
        except LiverHealthError as exc:
            shutil.rmtree(job.out, ignore_errors=True)
            job.set_state(JobState.FAILED, one_line(exc))
        except Exception:  # a bug: the page gets one line, the log file the traceback
            shutil.rmtree(job.out, ignore_errors=True)
            path = config.log_exception("a web job")
            where = f" Details were written to {path}." if path else ""
            job.set_state(JobState.FAILED, f"Internal error while working on the upload.{where} Please report it.")

    def _check(self, job: Job) -> None:
        if job.cancel_event.is_set():
            raise Cancelled("Cancelled.")

    def _open_upload(self, job: Job, upload: Path | str) -> None:
        session = self.workstation.session()
        job.session = session
        from_pacs = str(upload).startswith(PACS_SCHEME)
        job.set_state(JobState.LOADING, "Retrieving the study from the PACS." if from_pacs else "Reading the CT.")
        volume = session.open(
            upload,
            progress=lambda done, total: job.emit("retrieve", done=done, total=total),
            cancel=job.cancel_event.is_set,
        )
        patient = job.request.patient
        if patient is not None and not patient.is_empty():
            session.set_volume(replace(volume, patient=patient))
            session.load_s = 0.0
        self._check(job)
        self._first_view(job, session)
        job.set_state(JobState.SEGMENTING, "Segmenting liver and tumours.")
        last = [0.0]

        def progress(done: int, total: int) -> None:
            now = time.monotonic()
            if done == total or now - last[0] > 0.25:
                last[0] = now
                job.emit("progress", done=done, total=total)

        session.segment(job.request.model_id, progress=progress, cancel=job.cancel_event.is_set)
        self._check(job)
        self._finish(job, session, use_llm=True)

    def _reopen(self, job: Job, result_id: int, stored_report_pdf: bytes | None) -> None:
        job.set_state(JobState.LOADING, f"Reopening saved result {result_id}.")
        session = self.workstation.reopen(result_id)
        job.session = session
        self._first_view(job, session)
        self._finish(job, session, use_llm=False, stored_report_pdf=stored_report_pdf)

    def _first_view(self, job: Job, session: Session) -> None:
        job.out.mkdir(parents=True, exist_ok=True)
        save_volume_nifti(session.volume, job.out / "ct.nii.gz")
        job.emit("volume", url=f"/api/jobs/{job.job_id}/files/ct.nii.gz", **_volume_info(session))

    def _finish(self, job: Job, session: Session, use_llm: bool, stored_report_pdf: bytes | None = None) -> None:
        session.export(job.out)
        if not (job.out / "labels.nii.gz").is_file():  # a 2D image: the viewer still reads NIfTI
            save_labels_nifti(session.result.segmentation.labels, session.volume, job.out / "labels.nii.gz")
        confidence = session.result.segmentation.confidence
        if confidence is not None:  # the viewer's overlay: only where the model was unsure
            save_label_map(uncertainty_map(confidence), session.volume.affine, job.out / "uncertainty.nii.gz")
        if session.volume.dicom is not None:
            try:
                session.export_dicom(job.out)
            except LiverHealthError as exc:  # the result stands without them; the page says why
                job.emit("note", message=f"No DICOM SEG/SR: {exc}")
        job.summary = {**(job.summary or {}), **result_summary(job, session)}
        job.emit("result", **job.summary)
        job.set_state(JobState.REPORTING, "Writing the report.")
        session.make_report(
            use_llm=use_llm,
            on_text=lambda piece: job.emit("draft", text=piece),
            cancel=job.cancel_event.is_set,
            include_patient=job.request.include_patient,
        )
        self._check(job)
        session.export_report(job.out)
        if stored_report_pdf:
            (job.out / "saved-report.pdf").write_bytes(stored_report_pdf)
        job.summary["report_text"] = session.report_text()
        job.summary["files"] = available_files(job)
        job.emit("report", text=job.summary["report_text"], files=job.summary["files"])


def _volume_info(session: Session) -> dict[str, Any]:
    volume = session.volume
    return {
        "shape_zyx": list(volume.shape),
        "spacing_zyx_mm": list(volume.spacing) if volume.spacing else None,
        "is_hu": volume.is_hu,
        "description": volume.source.description,
    }


def result_summary(job: Job, session: Session) -> dict[str, Any]:
    """What the page shows beside the viewer (numbers from the segmentation only)."""
    result = session.result
    m = result.measurements
    lesions = [
        {
            "lesion_id": lesion.lesion_id,
            "label": lesion_text(lesion),
            "confidence": lesion.confidence,
            "confidence_text": confidence_text(lesion.confidence, lesion.unsure),
            "unsure": lesion.unsure,
            "volume_ml": lesion.volume_ml,
            "longest_diameter_mm": lesion.longest_diameter_mm,
            "perpendicular_diameter_mm": lesion.perpendicular_diameter_mm,
            "largest_slice": lesion.largest_slice,
            "ras_mm": _ras_mm(
                result.volume.affine, (lesion.largest_slice, lesion.centroid_index[1], lesion.centroid_index[2])
            ),
        }
        for lesion in m.lesions
    ]
    targets = target_lesions(m.lesions)
    model = result.model
    return {
        "size": size_summary(m),
        "liver_volume_ml": m.liver_volume_ml,
        "tumour_volume_ml": m.tumour_volume_ml,
        "tumour_burden_pct": m.tumour_burden_pct,
        "lesions": lesions,
        "liver_confidence": m.liver_confidence,
        "uncertainty_url": f"/api/jobs/{job.job_id}/files/uncertainty.nii.gz"
        if result.segmentation.confidence is not None
        else None,
        "recist_targets": [t.lesion_id for t in targets],
        "recist_sum_mm": round(sum(t.longest_diameter_mm for t in targets), 1) if targets else None,
        "model": {"id": model.model_id, "name": model.name, "validation": model.validation_text()},
        "key_slice": result.key_slice,
        "key_ras_mm": _ras_mm(
            result.volume.affine, (result.key_slice, result.volume.shape[1] / 2, result.volume.shape[2] / 2)
        ),
        "labels_url": f"/api/jobs/{job.job_id}/files/labels.nii.gz",
        "files": available_files(job),
    }


def _ras_mm(affine: np.ndarray, zyx: tuple[float, float, float]) -> list[float]:
    """Scanner (RAS) mm of a voxel, to 0.01 mm: what the viewer is told to go to (it shows its own orientation)."""
    return [round(v, 2) for v in index_to_ras(affine, zyx)]


def available_files(job: Job) -> list[str]:
    return [name for name, (file, _) in FILES.items() if (job.out / file).is_file()]
