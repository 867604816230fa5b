"""Web jobs: one upload (or one reopened result) worked on by the workflow service off the
request thread, in a bounded pool (uploads queue), with events the page follows live.

Each job has its own folder and its own workflow ``Session``, so two users' jobs never share a
file or a result. Events are appended to the job and read by index (server-sent events resume
from the last one a page saw). A cancelled or failed job keeps no outputs; a job's folder goes
when the job is discarded or the server stops.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from liverhealth import config
from liverhealth.domain import Actor, PatientInfo
from liverhealth.errors import Cancelled, LiverHealthError
from liverhealth.progress import Step
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
    INTERRUPTED = "interrupted"  # the server stopped while the job was queued or running


FINISHED = (JobState.DONE, JobState.FAILED, JobState.CANCELLED, JobState.INTERRUPTED)
UNFINISHED = (JobState.QUEUED, JobState.LOADING, JobState.SEGMENTING, JobState.REPORTING)
INTERRUPTED_MESSAGE = "Interrupted by a server restart; nothing of it was kept. Upload the study again."
RETRY_AFTER_S = 60


class Busy(LiverHealthError):
    """The queue is full (for this account or for the server): the upload is refused, not queued."""

    def __init__(self, message: str, retry_after_s: int = RETRY_AFTER_S) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


STALE_WITHOUT_REPORT = ("report.pdf", "report.md", "report.json")
STALE_WITHOUT_COMPARISON = ("comparison.png", "comparison.json")
DICOM_FILES = ("seg.dcm", "sr.dcm", "report.dcm", "model_seg.dcm")  # written for the result they describe
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
    actor: Actor
    folder: Path
    request: JobRequest
    key: str | None = None  # the page's idempotency key of the upload: a repeat answers this job
    accepted: dict[str, Any] = field(default_factory=dict)  # what the upload was answered (for a repeat)
    state: JobState = JobState.QUEUED
    message: str = ""
    events: list[dict[str, Any]] = field(default_factory=list)
    cancel_event: threading.Event = field(default_factory=threading.Event)
    session: Session | None = None
    summary: dict[str, Any] | None = None
    created_s: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)
    on_state: Callable[[Job], None] | None = None  # told of every state change (the database keeps it)
    review_lock: threading.Lock = field(default_factory=threading.Lock)  # the reader's edits, one at a time
    labels_version: int = 0  # bumped when an edit rewrites the labels: the viewer's URL changes with it

    def emit(self, kind: str, **data: Any) -> None:
        with self.lock:
            self.events.append(
                {"id": len(self.events), "kind": kind, "t_s": round(time.monotonic() - self.created_s, 3), **data}
            )

    def set_state(self, state: JobState, message: str = "") -> None:
        self.state, self.message = state, message
        self.emit("state", state=state, message=message)
        if self.on_state is not None:
            self.on_state(self)

    def events_from(self, start: int) -> list[dict[str, Any]]:
        with self.lock:
            return self.events[start:]

    @property
    def owner(self) -> str:
        return self.actor.user

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    @property
    def out(self) -> Path:
        return self.folder / "out"


class JobManager:
    """Runs jobs on ``workers`` threads (the workflow's ONNX and numpy work releases the GIL, so
    the server keeps answering); more jobs than workers wait in the queue, up to ``max_waiting``
    unfinished jobs in all and ``max_waiting_per_user`` per account: the next is refused (``Busy``).
    Job states are kept in the database, so a job the server stopped in is reported afterwards."""

    def __init__(
        self,
        workstation: Workstation,
        root: Path,
        workers: int = 1,
        max_jobs_per_user: int = 20,
        max_waiting: int = 8,
        max_waiting_per_user: int = 2,
    ) -> None:
        self.workstation = workstation
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.pool = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="liverhealth-job")
        self.jobs: dict[str, Job] = {}
        self.max_jobs_per_user = max_jobs_per_user
        self.max_waiting, self.max_waiting_per_user = max_waiting, max_waiting_per_user
        self._lock = threading.Lock()
        self._claimed: set[tuple[str, str]] = set()  # (account, key) of uploads being stored
        self._stopping = False
        workstation.interrupt_web_jobs([str(s) for s in UNFINISHED], INTERRUPTED_MESSAGE)

    def check_room(self, owner: str) -> None:
        """Refuse (Busy) a new job when the queue is full for this account or for the server."""
        with self._lock:
            waiting = [j for j in self.jobs.values() if not j.finished]
        if sum(j.owner == owner for j in waiting) >= self.max_waiting_per_user:
            raise Busy(
                f"You already have {self.max_waiting_per_user} studies waiting or in work; wait for one to "
                "finish (or cancel one), then upload again."
            )
        if len(waiting) >= self.max_waiting:
            raise Busy(f"The server is busy ({len(waiting)} studies waiting or in work); try again in a minute.")

    def claim(self, owner: str, key: str) -> str | None:
        """The job an earlier upload with this idempotency key started for this account (kept as
        long as the job is), else None with the key claimed for this upload; ``KeyBusy`` while the
        first upload with the key is still being stored (the caller waits and asks again)."""
        with self._lock:
            if (owner, key) in self._claimed:
                raise KeyBusy(key)
            for job in self.jobs.values():
                if job.key == key and job.owner == owner:
                    return job.job_id
            self._claimed.add((owner, key))
            return None

    def release(self, owner: str, key: str) -> None:
        """Drop a claim whose upload was refused or became a job (which then holds the key)."""
        with self._lock:
            self._claimed.discard((owner, key))

    def interrupted(self, job_id: str, owner: str, admin: bool = False) -> tuple[str, str] | None:
        """(state, message) of a job of an earlier server run that is no longer held, else None."""
        return self.workstation.web_job_state(job_id, None if admin else owner)

    def _record(self, job: Job) -> None:
        """Keep the job's state in the database; a database that is away does not stop the job (its
        save will say so), and the state is written again at the next change."""
        with contextlib.suppress(LiverHealthError):
            self.workstation.record_web_job(job.job_id, job.owner, str(job.state), job.message)

    def new_folder(self) -> tuple[str, Path]:
        job_id = uuid.uuid4().hex
        return job_id, self.root / job_id

    def submit_upload(
        self, job_id: str, actor: Actor, upload: Path | str, request: JobRequest, key: str | None = None
    ) -> Job:
        """Work on an upload stored at ``upload`` (or ``pacs://STUDY_UID``: retrieved from the PACS
        first); ``key``, the upload's idempotency key, stays with the job."""
        self.check_room(actor.user)
        job = self._add(Job(job_id, actor, self.root / job_id, request, key))
        self.pool.submit(self._run, job, lambda: self._open_upload(job, upload))
        return job

    def submit_reopen(self, actor: Actor, result_id: int, stored_report_pdf: bytes | None) -> Job:
        self.check_room(actor.user)
        job_id, folder = self.new_folder()
        folder.mkdir(parents=True)
        job = self._add(Job(job_id, actor, folder, JobRequest()))
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
        self._stopping = True
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
        job.on_state = self._record
        job.set_state(JobState.QUEUED, "Waiting for a free worker.")
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
            if self._stopping:
                job.set_state(JobState.INTERRUPTED, INTERRUPTED_MESSAGE)
            else:
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
        session = self.workstation.session(job.actor)
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
        session.segment(job.request.model_id, progress=StepEvents(job), cancel=job.cancel_event.is_set)
        self._check(job)
        self._finish(job, session, use_llm=True)

    def _reopen(self, job: Job, result_id: int, stored_report_pdf: bytes | None) -> None:
        job.set_state(JobState.LOADING, f"Reopening saved result {result_id}.")
        session = self.workstation.reopen(result_id, job.actor)
        job.session = session
        self._first_view(job, session)
        self._finish(job, session, use_llm=False, stored_report_pdf=stored_report_pdf)

    def _first_view(self, job: Job, session: Session) -> None:
        info = session.export_viewer_volume(job.out)
        job.emit("volume", url=f"/api/jobs/{job.job_id}/files/ct.nii.gz", **info)

    def _finish(self, job: Job, session: Session, use_llm: bool, stored_report_pdf: bytes | None = None) -> None:
        view = viewer_numbers(session, job.out)
        if session.volume.dicom is not None:
            try:
                session.export_dicom(job.out)
            except LiverHealthError as exc:  # the result stands without them; the page says why
                job.emit("note", message=f"No DICOM SEG/SR: {exc}")
        job.summary = {**(job.summary or {}), **view, **_urls(job, session)}
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
        job.summary["draft"] = session.report.report.draft
        job.summary["files"] = available_files(job)
        job.emit("report", text=job.summary["report_text"], draft=job.summary["draft"], files=job.summary["files"])


class KeyBusy(LiverHealthError):
    """An upload with this idempotency key is still being stored: the repeat waits for its job."""


STEP_WORDS = {Step.FINDING_LIVER: "Finding the liver", Step.SEGMENTING: "Segmenting"}
MEASURING = "Measuring the liver and the lesions."


class StepEvents:
    """The segmentation's progress as the job's events: each step named, slice k of the CT's n
    (``progress.report_step``), at most four a second but every step's first and last; once the
    last slice is segmented, the measuring step."""

    def __init__(self, job: Job, interval_s: float = 0.25) -> None:
        self.job, self.interval_s = job, interval_s
        self.last: tuple[Step | None, int, float] = (None, -1, 0.0)

    def __call__(self, done: int, total: int) -> None:
        self.step(Step.SEGMENTING, done, total)

    def step(self, step: Step, done: int, total: int) -> None:
        now = time.monotonic()
        same_step, same_count = step == self.last[0], done == self.last[1]
        if same_step and (same_count or (done != total and now - self.last[2] <= self.interval_s)):
            return
        self.last = (step, done, now)
        message = f"{STEP_WORDS[step]}: slice {done} of {total}."
        self.job.emit("progress", step=str(step), done=done, total=total, message=message)
        if step is Step.SEGMENTING and done == total:
            self.job.emit("progress", step="measuring", done=total, total=total, message=MEASURING)


def viewer_numbers(session: Session, out: Path) -> dict[str, Any]:
    """The session's result written for the viewer (``Session.export_viewer``) and its numbers,
    with each lesion's caliper (outline and RECIST axes) for the page to draw."""
    return session.export_viewer(out)


def _urls(job: Job, session: Session) -> dict[str, Any]:
    """Where the page fetches the viewer's layers and the files of this job (the labels' URL names
    their version, so that the viewer fetches them again after an edit)."""
    has_confidence = session.result.segmentation.confidence is not None
    version = f"?v={job.labels_version}" if job.labels_version else ""
    return {
        "uncertainty_url": f"/api/jobs/{job.job_id}/files/uncertainty.nii.gz" if has_confidence else None,
        "labels_url": f"/api/jobs/{job.job_id}/files/labels.nii.gz{version}",
        "files": available_files(job),
    }


def rewrite_outputs(job: Job, with_dicom: bool = False) -> dict[str, Any]:
    """The job's viewer layers and downloads written again, by the workflow, for its session's current
    result (after a reader's edit, undo, save or signature); a report or comparison the result no
    longer has (an edit drops both) leaves no file behind, and ``with_dicom`` writes a DICOM study's
    SEG and SR again. The job's summary follows (each lesion marked ``edited`` where the reader
    changed it); returns the viewer's numbers."""
    session = job.session
    for name in STALE_WITHOUT_REPORT if session.report is None else ():
        (job.out / name).unlink(missing_ok=True)
    for name in STALE_WITHOUT_COMPARISON if session.comparison is None else ():
        (job.out / name).unlink(missing_ok=True)
    for name in DICOM_FILES:
        (job.out / name).unlink(missing_ok=True)
    view = viewer_numbers(session, job.out)
    view["lesions"] = [
        {**shown, "edited": lesion.edited}
        for shown, lesion in zip(view["lesions"], session.result.measurements.lesions, strict=True)
    ]
    job.labels_version += 1
    if session.report is not None:
        session.export_report(job.out)
    if with_dicom and session.volume.dicom is not None:
        with contextlib.suppress(LiverHealthError):  # the result stands without them, as after the job
            session.export_dicom(job.out)
    report_text = session.report_text() if session.report is not None else None
    job.summary = {**(job.summary or {}), **view, **_urls(job, session), "report_text": report_text}
    return view


def available_files(job: Job) -> list[str]:
    return [name for name, (file, _) in FILES.items() if (job.out / file).is_file()]
