"""Jobs: an upload becomes a job (its own folder and workflow session in the job pool); its
state, its live events, its downloads, cancelling it and saving its result."""

import asyncio
import contextlib
import json
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import ClientDisconnect

from liverhealth.errors import InputError
from liverhealth.imaging.limits import MAX_ZIP_ENTRIES
from liverhealth.web.deps import (
    ChangeableJob,
    ChangingUser,
    CurrentUser,
    JobsDep,
    ReadableJob,
    SavableJob,
    SaveBody,
    SettingsDep,
    UploadSize,
    WorkstationDep,
    known_model,
    own_job,
)
from liverhealth.web.jobs import FILES, Job, JobManager, KeyBusy
from liverhealth.web.schemas import JobCancelled, JobStatus, Saved, UploadAccepted, UploadOptions
from liverhealth.web.uploads import StoredUpload, not_stored_message, store_upload

EVENT_POLL_S = 0.1
SAVED_REPORT = "saved-report.pdf"  # a reopened result's stored PDF, besides the files of FILES
NOT_STORED = 507  # Insufficient Storage: the server could not write the upload
LOG = logging.getLogger("liverhealth.web")
KEY_HEADER = "Idempotency-Key"  # the page's fresh key per submission: a repeat answers the same job
KEY_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,128}")
KEY_WAIT_S = 600  # how long a repeat waits for the first upload with its key to be stored
KEY_POLL_S = 0.1

router = APIRouter(prefix="/api/jobs", tags=["jobs"])


@router.post("")
async def upload(
    request: Request,
    session: ChangingUser,
    size: UploadSize,  # declared after the CSRF check, so a 403 comes before a 411 or 413
    settings: SettingsDep,
    workstation: WorkstationDep,
    jobs: JobsDep,
) -> UploadAccepted:
    """Store and check an upload (nothing of a refused one is kept), then queue its job. An upload
    carrying the ``Idempotency-Key`` of an earlier one of this account is answered with that job
    (a double click or a resent form starts one job); its body is read and dropped."""
    key = _key(request)
    if key is not None:
        earlier = await _claim(jobs, session.user, key)
        if earlier is not None:
            await _drain(request)
            return UploadAccepted(**earlier.accepted, repeated=True)
    try:
        jobs.check_room(session.user)  # a full queue refuses before the upload is read
        try:
            form = await request.form(max_files=MAX_ZIP_ENTRIES, max_fields=20)
        except OSError as exc:  # its parts spill to the temporary folder past 1 MB: a full disk fails here
            await _drain(request)
            raise _not_stored(exc) from exc
        try:
            options = UploadOptions.from_form(form)
            known_model(workstation, options.model)
            job_id, folder = jobs.new_folder()
            stored = await _store(form, folder, settings.max_upload_bytes)
        except OSError as exc:
            raise _not_stored(exc) from exc
        finally:
            await form.close()
        try:
            job = jobs.submit_upload(job_id, session.actor, stored.path, options.job_request(), key)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        job.accepted = {"job_id": job.job_id, "kind": stored.kind, "size_bytes": stored.size_bytes}
        return UploadAccepted(**job.accepted)
    finally:
        if key is not None:
            jobs.release(session.user, key)  # the job holds the key from now on, or nothing does


def _key(request: Request) -> str | None:
    """The upload's idempotency key, when the page sent one."""
    key = request.headers.get(KEY_HEADER)
    if key is None:
        return None
    if not KEY_PATTERN.fullmatch(key):
        raise InputError(f"The {KEY_HEADER} header must be 8 to 128 letters, digits, '-' or '_'; reload the page.")
    return key


async def _claim(jobs: JobManager, owner: str, key: str) -> Job | None:
    """The job of an earlier upload with ``key``, waiting while that upload is still being stored;
    None once this request holds the key (the first upload with it, or a repeat of a refused one)."""
    deadline = time.monotonic() + KEY_WAIT_S
    while True:
        try:
            job_id = jobs.claim(owner, key)
        except KeyBusy:
            if time.monotonic() > deadline:
                raise HTTPException(409, "The upload this repeats is still being stored; wait for it.") from None
            await asyncio.sleep(KEY_POLL_S)
            continue
        job = jobs.get(job_id, owner) if job_id is not None else None
        if job_id is None or job is not None:
            return job


async def _store(form: FormData, folder: Path, limit_bytes: int) -> StoredUpload:
    """The form's files checked and stored in the job's folder, which goes if they are refused."""
    pairs = [(item.filename or "", item.file) for item in form.getlist("files") if isinstance(item, UploadFile)]
    try:
        return await run_in_threadpool(store_upload, pairs, folder / "upload", limit_bytes)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def _not_stored(exc: OSError) -> HTTPException:
    """A write failure of an upload (the spooled form or its copy in the job's folder, both removed)."""
    LOG.warning("an upload could not be stored: %s", exc)
    return HTTPException(NOT_STORED, not_stored_message(exc))


async def _drain(request: Request) -> None:
    """Read and drop what is left of a refused upload's body, so that the browser reads the answer
    instead of a reset connection."""
    with contextlib.suppress(RuntimeError, ClientDisconnect):  # RuntimeError: the body was all read
        async for _ in request.stream():
            pass


@router.get("/{job_id}")
def job_status(job_id: str, session: CurrentUser, jobs: JobsDep) -> JobStatus:
    """The job's state; a job of an earlier server run answers "interrupted" with what to do."""
    job = jobs.get(job_id, session.user, session.admin)
    if job is not None:
        return JobStatus.of(job)
    kept = jobs.interrupted(job_id, session.user, session.admin)
    if kept is None:
        own_job(jobs, job_id, session)  # the usual 404
    state, message = kept
    return JobStatus(job_id=job_id, state=state, message=message, summary=None, files=[])


@router.get("/{job_id}/events")
async def job_events(
    request: Request, job_id: str, session: CurrentUser, jobs: JobsDep, start: int = 0
) -> StreamingResponse:
    """The job's events as server-sent events, from ``start`` or after the last one the page saw.
    The job is looked up here, not as a dependency, so that a malformed ``start`` is a 422 first."""
    job = own_job(jobs, job_id, session)
    start = max(start, int(request.headers.get("last-event-id", -1)) + 1)
    return StreamingResponse(
        _event_stream(request, job, start), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
    )


async def _event_stream(request: Request, job: Job, start: int) -> AsyncIterator[str]:
    index = start
    while True:
        for event in job.events_from(index):
            index = event["id"] + 1
            yield f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"
        if job.finished and index >= len(job.events):
            return
        if await request.is_disconnected():
            return
        await asyncio.sleep(EVENT_POLL_S)


@router.post("/{job_id}/cancel")
def cancel(job: ChangeableJob, jobs: JobsDep) -> JobCancelled:
    jobs.cancel(job)
    return JobCancelled(job_id=job.job_id, state=job.state)


@router.get("/{job_id}/files/{name}")
def job_file(job: ReadableJob, name: str) -> FileResponse:
    """One of the job's downloads, once it is written."""
    if name not in FILES and name != SAVED_REPORT:
        raise HTTPException(404, "No such download.")
    file, media = FILES.get(name, (SAVED_REPORT, "application/pdf"))
    path = job.out / file
    if not path.is_file():
        raise HTTPException(404, f"{name} is not ready (yet).")
    return FileResponse(path, media_type=media, filename=name)


@router.post("/{job_id}/save")
async def save(job: SavableJob, body: SaveBody, session: ChangingUser) -> Saved:
    """Save the job's result (and its report) in the results database, owned by this account."""
    saved = await run_in_threadpool(job.session.save, body.store_patient, session.user)
    return Saved(result_id=saved.result_id, where=saved.where if session.admin else "the results database")
