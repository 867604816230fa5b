"""``liverhealth web``: the browser face (FastAPI). Every step is the workflow service's; the web
face only checks who asks (login, CSRF, ownership: ``deps.py``), validates uploads and hands work
to the job pool (``routes/``). Patient identifiers never appear in a URL or a log line: jobs and
results are named by ids, and searches go in request bodies."""

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from liverhealth.errors import LiverHealthError, StorageError
from liverhealth.web.auth import Sessions
from liverhealth.web.deps import WebSettings
from liverhealth.web.jobs import JobManager
from liverhealth.web.routes import accounts, comparisons, jobs, pacs, pages, results
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
ROUTERS = (pages.router, accounts.router, jobs.router, comparisons.router, pacs.router, results.router)


def create_app(workstation: Workstation, settings: WebSettings | None = None) -> FastAPI:
    """The web application on one workstation (manifest, repository, LLM settings)."""
    settings = settings or WebSettings()
    if not (NIIVUE / "niivue.umd.js").is_file():
        raise LiverHealthError(
            f"The web viewer (NiiVue) is missing from {NIIVUE}: run `bash scripts/setup.sh`, which takes it "
            "from the npm package @niivue/niivue."
        )
    work_dir = settings.work_dir or Path(tempfile.mkdtemp(prefix="liverhealth-web-"))
    job_manager = JobManager(workstation, work_dir / "jobs", workers=settings.workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(job_manager.shutdown)

    app = FastAPI(title="LiverHealth", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.jobs, app.state.sessions, app.state.workstation = job_manager, Sessions(), workstation
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.middleware("http")(security_headers)
    app.add_exception_handler(LiverHealthError, user_error)
    app.add_exception_handler(UploadError, user_error)
    for router in ROUTERS:
        app.include_router(router)
    return app


async def security_headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """Every answer forbids framing, sniffing and foreign scripts; API answers are never cached."""
    response = await call_next(request)
    response.headers.update(SECURITY_HEADERS)
    if request.url.path.startswith("/api/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


async def user_error(request: Request, exc: Exception) -> JSONResponse:
    """A refusal the user can act on, on one line: 503 when the database is unreachable, else 400."""
    status = 503 if isinstance(exc, StorageError) else 400
    return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=status)
