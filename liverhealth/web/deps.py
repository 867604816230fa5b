"""What the web routes depend on, as FastAPI dependencies: the app's settings and services, who
asks (the session cookie, the CSRF token), which job or saved result is theirs, and the
preconditions several routes share. A route names what it needs with the ``Annotated`` aliases
here; FastAPI solves them in the order a route declares them, so a route lists who asks before
what it asks about (401 and 403 come before 404 and 400)."""

import hmac
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel

from liverhealth.accounts import WebSession, idle_timeout, key_hash
from liverhealth.errors import InputError, StorageError
from liverhealth.storage import StoredResult
from liverhealth.web.jobs import Job, JobManager
from liverhealth.web.schemas import (
    AuditSearch,
    BrushEdit,
    CompareRequest,
    FillEdit,
    LesionEdit,
    PacsOpenRequest,
    PacsQuery,
    ResultSearch,
    SaveRequest,
    SignRequest,
    parse_edit,
)
from liverhealth.workflow import Workstation

COOKIE = "liverhealth_session"
LOGIN_COOKIE = "liverhealth_login"
DEFAULT_MAX_UPLOAD_BYTES = 2 << 30
Body = TypeVar("Body", bound=BaseModel)


@dataclass(frozen=True)
class WebSettings:
    """How the server runs (``liverhealth web`` flags)."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    workers: int = 1
    max_waiting: int = 8  # unfinished jobs in all: the next upload is refused (503, Retry-After)
    max_waiting_per_user: int = 2
    secure_cookies: bool = False  # True behind TLS: cookies only over HTTPS
    work_dir: Path | None = None  # job folders (default: a private temporary folder)


# the app's state --------------------------------------------------------------------------------
def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings


def get_workstation(request: Request) -> Workstation:
    return request.app.state.workstation


def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


SettingsDep = Annotated[WebSettings, Depends(get_settings)]
WorkstationDep = Annotated[Workstation, Depends(get_workstation)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]


# who asks ---------------------------------------------------------------------------------------
class RecentSessions:
    """The sessions the database confirmed lately (by the SHA-256 of the cookie key), so that a
    logged-in user keeps their own jobs (state, events, downloads) while the database is away. Only
    asked when the database cannot answer; an entry lasts one idle timeout from the database's last
    word, and a session the database ends or no longer knows is dropped at its next answer."""

    def __init__(self) -> None:
        self._confirmed: dict[str, tuple[WebSession, float]] = {}
        self._lock = threading.Lock()

    def remember(self, key: str | None, session: WebSession | None) -> None:
        if not key:
            return
        now = time.monotonic()
        with self._lock:
            if session is None:
                self._confirmed.pop(key_hash(key), None)
            else:
                self._confirmed[key_hash(key)] = (session, now)
            horizon = now - idle_timeout().total_seconds()
            for hashed in [h for h, (_, seen) in self._confirmed.items() if seen < horizon]:
                del self._confirmed[hashed]

    def recall(self, key: str | None) -> WebSession | None:
        if not key:
            return None
        with self._lock:
            session, seen = self._confirmed.get(key_hash(key), (None, 0.0))
        return session if time.monotonic() - seen < idle_timeout().total_seconds() else None


def get_recent_sessions(request: Request) -> RecentSessions:
    return request.app.state.recent_sessions


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())


def client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def current_user(
    request: Request, workstation: WorkstationDep, recent: Annotated[RecentSessions, Depends(get_recent_sessions)]
) -> WebSession:
    """The logged-in session named by the cookie (kept in the database: it outlives a restart), else 401.
    While the database is away a session it confirmed lately still holds (anything that needs the
    database then says it is away); an unknown one gets the database's error."""
    key = request.cookies.get(COOKIE)
    try:
        session = workstation.web_session(key)
    except StorageError:
        session = recent.recall(key)
        if session is None:
            raise
    else:
        recent.remember(key, session)
    if session is None:
        raise HTTPException(401, "Log in first (your session ended or you are not logged in).")
    return replace(session, client=client_address(request))


CurrentUser = Annotated[WebSession, Depends(current_user)]


def changing_user(request: Request, session: CurrentUser) -> WebSession:
    """The session, when the request carries its CSRF token (every change must), else 403."""
    if not same_token(session.csrf, request.headers.get("X-CSRF-Token")):
        raise HTTPException(403, "The request lacks this page's security token (CSRF); reload the page.")
    return session


ChangingUser = Annotated[WebSession, Depends(changing_user)]


# what is theirs ---------------------------------------------------------------------------------
def own_job(jobs: JobManager, job_id: str, session: WebSession) -> Job:
    """The job when it is this account's (an admin sees every job), else 404."""
    job = jobs.get(job_id, session.user, session.admin)
    if job is None:
        raise HTTPException(404, "No such job for this account (it finished long ago or is another user's).")
    return job


def own_result(workstation: Workstation, result_id: int, session: WebSession) -> StoredResult:
    """The saved result when it is this account's (an admin sees every result), else 404."""
    return workstation.get(result_id, session.actor, owner=None if session.admin else session.user)


def readable_job(job_id: str, session: CurrentUser, jobs: JobsDep) -> Job:
    """The caller's job named in the path, to look at (a login is enough)."""
    return own_job(jobs, job_id, session)


def changeable_job(job_id: str, session: ChangingUser, jobs: JobsDep) -> Job:
    """The caller's job named in the path, to act on (the CSRF token is checked first)."""
    return own_job(jobs, job_id, session)


def changeable_result(result_id: int, session: ChangingUser, workstation: WorkstationDep) -> StoredResult:
    """The caller's saved result named in the path, to act on (the CSRF token is checked first)."""
    return own_result(workstation, result_id, session)


ReadableJob = Annotated[Job, Depends(readable_job)]
ChangeableJob = Annotated[Job, Depends(changeable_job)]
ChangeableResult = Annotated[StoredResult, Depends(changeable_result)]


# shared preconditions ---------------------------------------------------------------------------
def has_result(job: Job) -> bool:
    """Whether the job finished with a result held in its session (to save or compare)."""
    return job.state == "done" and job.session is not None and job.session.result is not None


def finished_job(refusal: str) -> Callable[[Job], Job]:
    """A dependency: the caller's job when it has a result, else ``refusal`` (400)."""

    def finished(job: ChangeableJob) -> Job:
        if not has_result(job):
            raise InputError(refusal)
        return job

    return finished


SavableJob = Annotated[Job, Depends(finished_job("Only a finished result can be saved; wait for the job to finish."))]
ComparableJob = Annotated[
    Job, Depends(finished_job("Only a finished result can be compared; wait for the job to finish."))
]


def reviewable_job(job: ChangeableJob, session: ChangingUser) -> Job:
    """The caller's own finished job, to edit or sign its result: the edits and the signature are
    the reader's who opened the study, so an admin may look at another's job but not review it."""
    if job.owner != session.user:
        raise HTTPException(403, "Only the account that opened this study can edit or sign it.")
    if not has_result(job):
        raise InputError("Only a finished result can be edited or signed; wait for the job to finish.")
    return job


ReviewableJob = Annotated[Job, Depends(reviewable_job)]


def stated_upload_size(request: Request, settings: SettingsDep) -> int:
    """The upload's declared size, refused before it is read when missing (411) or too large (413)."""
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise HTTPException(411, "Uploads must state their size (Content-Length).")
    if int(length) > settings.max_upload_bytes + (1 << 20):
        raise HTTPException(413, f"The upload is larger than the limit of {settings.max_upload_bytes / 2**20:,.0f} MB.")
    return int(length)


UploadSize = Annotated[int, Depends(stated_upload_size)]


def known_model(workstation: Workstation, model_id: str | None) -> str | None:
    """The model asked for (None: the default), refused with the manifest's message when unknown."""
    if model_id is not None:
        workstation.manifest.get(model_id)
    return model_id


# request bodies ---------------------------------------------------------------------------------
async def json_object(request: Request) -> dict[str, Any]:
    """The JSON body when it is an object, else {}: the page's bodies are optional, never refused."""
    try:
        body = await request.json()
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


def json_body(schema: type[Body]) -> Callable[..., Coroutine[Any, Any, Body]]:
    """A dependency: the JSON object read into ``schema`` (whose fields coerce what they get)."""

    async def parse(body: Annotated[dict[str, Any], Depends(json_object)]) -> Body:
        return schema.model_validate(body)

    return parse


async def edit_body(body: Annotated[dict[str, Any], Depends(json_object)]) -> BrushEdit | LesionEdit | FillEdit:
    """The edit asked for; unlike the page's other bodies a malformed one is refused (400, one line)."""
    return parse_edit(body)


SaveBody = Annotated[SaveRequest, Depends(json_body(SaveRequest))]
EditBody = Annotated[BrushEdit | LesionEdit | FillEdit, Depends(edit_body)]
SignBody = Annotated[SignRequest, Depends(json_body(SignRequest))]
CompareBody = Annotated[CompareRequest, Depends(json_body(CompareRequest))]
PacsQueryBody = Annotated[PacsQuery, Depends(json_body(PacsQuery))]
PacsOpenBody = Annotated[PacsOpenRequest, Depends(json_body(PacsOpenRequest))]
SearchBody = Annotated[ResultSearch, Depends(json_body(ResultSearch))]
AuditBody = Annotated[AuditSearch, Depends(json_body(AuditSearch))]
