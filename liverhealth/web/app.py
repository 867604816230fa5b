"""``liverhealth web``: the browser face (FastAPI). Every step is the workflow service's; the web
face only checks who asks (login, CSRF, ownership: ``deps.py``), validates uploads and hands work
to the job pool (``routes/``). Patient identifiers never appear in a URL or a log line: jobs and
results are named by ids, and searches go in request bodies."""

import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from liverhealth.errors import LiverHealthError, NotFound, StorageError
from liverhealth.web.deps import RecentSessions, WebSettings
from liverhealth.web.jobs import Busy, JobManager
from liverhealth.web.routes import accounts, admin, comparisons, jobs, pacs, pages, results, review
from liverhealth.web.routes.pages import NIIVUE, STATIC
from liverhealth.web.uploads import UploadError
from liverhealth.workflow import Workstation

__all__ = ["WebSettings", "create_app"]

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "connect-src 'self' blob: data:; worker-src 'self' blob:; object-src 'none'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
LOG = logging.getLogger("liverhealth.web")
WORK_PREFIX = "liverhealth-web-"
ROUTERS = (
    pages.router,
    accounts.router,
    jobs.router,
    comparisons.router,
    pacs.router,
    results.router,
    review.router,
    admin.router,
)


def create_app(workstation: Workstation, settings: WebSettings | None = None) -> FastAPI:
    """The web application on one workstation (manifest, repository, LLM settings)."""
    settings = settings or WebSettings()
    if not (NIIVUE / "niivue.umd.js").is_file():
        raise LiverHealthError(
            f"The web viewer (NiiVue) is missing from {NIIVUE}: run `bash scripts/setup.sh`, which takes it "
            "from the npm package @niivue/niivue."
        )
    remove_stale_work_dirs()
    work_dir = settings.work_dir or Path(tempfile.mkdtemp(prefix=WORK_PREFIX))
    (work_dir / "server.pid").write_text(str(os.getpid()))
    job_manager = JobManager(
        workstation,
        work_dir / "jobs",
        workers=settings.workers,
        max_waiting=settings.max_waiting,
        max_waiting_per_user=settings.max_waiting_per_user,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(job_manager.shutdown)

    app = FastAPI(title="LiverHealth", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.jobs, app.state.workstation = job_manager, workstation
    app.state.settings, app.state.recent_sessions = settings, RecentSessions()
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.middleware("http")(security_headers)
    app.add_exception_handler(LiverHealthError, user_error)
    app.add_exception_handler(UploadError, user_error)
    for router in ROUTERS:
        app.include_router(router)
    return app


def remove_stale_work_dirs() -> list[Path]:
    """The job folders of servers that are no longer running (killed, not stopped) go at start:
    the CT copies in them are not kept beyond the jobs, which the restart reports as interrupted."""
    removed = []
    for folder in Path(tempfile.gettempdir()).glob(f"{WORK_PREFIX}*"):
        try:
            pid = int((folder / "server.pid").read_text())
        except (OSError, ValueError):
            continue  # not ours to judge (no pid file)
        if not _running(pid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Every answer forbids framing, sniffing and foreign scripts; API answers are never cached."""
    response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    if request.url.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def user_error(request: Request, exc: Exception) -> JSONResponse:
    """A refusal the user can act on, on one line: 404 for what is not theirs, 503 (with Retry-After)
    when the queue is full or the database unreachable, else 400. Where the database is stays in
    the server's log: users read "the results database"."""
    status, headers = 400, {}
    message = " ".join(str(exc).split())
    if isinstance(exc, NotFound):
        status = 404
    elif isinstance(exc, Busy):
        status, headers = 503, {"Retry-After": str(exc.retry_after_s)}
    elif isinstance(exc, StorageError):
        status = 503
        workstation = request.app.state.workstation
        where = workstation.database_where_quietly()
        if where and where in message:
            LOG.warning("%s", message)
            message = message.replace(where, "the results database")
    return JSONResponse({"detail": message}, status_code=status, headers=headers)
