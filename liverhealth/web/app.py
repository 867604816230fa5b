"""``liverhealth web``: the browser face (FastAPI). Every step is the workflow service's; this
module only checks who asks (login, CSRF, ownership), validates uploads and hands work to the
job pool. Patient identifiers never appear in a URL or a log line: jobs and results are named
by ids, and searches go in request bodies."""

import asyncio
import json
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Annotated, Any
from xml.sax.saxutils import escape

from fastapi import Depends, FastAPI, Form, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from liverhealth.domain import PatientInfo
from liverhealth.errors import InputError, LiverHealthError, StorageError
from liverhealth.imaging.limits import MAX_ZIP_ENTRIES
from liverhealth.pacs.client import is_uid
from liverhealth.presentation import DISCLAIMER
from liverhealth.web.auth import Sessions, WebSession, same_token, verify_user
from liverhealth.web.jobs import FILES, Job, JobManager, JobRequest, available_files
from liverhealth.web.uploads import UploadError, store_upload
from liverhealth.workflow import PACS_SCHEME, Workstation

STATIC = Path(__file__).resolve().parent / "static"
NIIVUE = STATIC / "vendor" / "niivue"
COOKIE = "liverhealth_session"
LOGIN_COOKIE = "liverhealth_login"
DEFAULT_MAX_UPLOAD_BYTES = 2 << 30
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


@dataclass(frozen=True)
class WebSettings:
    """How the server runs (``liverhealth web`` flags)."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES
    workers: int = 1
    secure_cookies: bool = False  # True behind TLS: cookies only over HTTPS
    work_dir: Path | None = None  # job folders (default: a private temporary folder)


def pacs_configured() -> bool:
    """Whether a PACS is set up (the page then offers its panel)."""
    from liverhealth.pacs import PacsSettings

    try:
        PacsSettings.from_environment()
    except LiverHealthError:
        return False
    return True


def niivue_version() -> str:
    try:
        package = json.loads((NIIVUE / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return f"{package.get('version', '?')} ({package.get('license', '?')})"


def create_app(workstation: Workstation, settings: WebSettings | None = None) -> FastAPI:
    """The web application on one workstation (manifest, repository, LLM settings)."""
    settings = settings or WebSettings()
    if not (NIIVUE / "niivue.umd.js").is_file():
        raise LiverHealthError(
            f"The web viewer (NiiVue) is missing from {NIIVUE}: run `bash scripts/setup.sh`, which takes it "
            "from the npm package @niivue/niivue."
        )
    work_dir = settings.work_dir or Path(tempfile.mkdtemp(prefix="liverhealth-web-"))
    jobs = JobManager(workstation, work_dir / "jobs", workers=settings.workers)
    sessions = Sessions()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(jobs.shutdown)

    app = FastAPI(title="LiverHealth", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.jobs, app.state.sessions, app.state.workstation = jobs, sessions, workstation
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.exception_handler(LiverHealthError)
    async def user_error(request: Request, exc: LiverHealthError) -> JSONResponse:
        status = 503 if isinstance(exc, StorageError) else 400
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=status)

    # who asks -----------------------------------------------------------------------------------
    def current(request: Request) -> WebSession:
        session = sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise HTTPException(401, "Log in first (your session ended or you are not logged in).")
        return session

    def changing(request: Request, session: Annotated[WebSession, Depends(current)]) -> WebSession:
        if not same_token(session.csrf, request.headers.get("X-CSRF-Token")):
            raise HTTPException(403, "The request lacks this page's security token (CSRF); reload the page.")
        return session

    Current = Annotated[WebSession, Depends(current)]
    Changing = Annotated[WebSession, Depends(changing)]

    def own_job(job_id: str, session: WebSession) -> Job:
        job = jobs.get(job_id, session.user, session.admin)
        if job is None:
            raise HTTPException(404, "No such job for this account (it finished long ago or is another user's).")
        return job

    def own_result(result_id: int, session: WebSession) -> Any:
        stored = workstation.get(result_id)
        if not session.admin and stored.summary.owner != session.user:
            raise HTTPException(404, f"No saved result {result_id} for this account.")
        return stored

    # pages --------------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        if sessions.get(request.cookies.get(COOKIE)) is None:
            return RedirectResponse("/login", status_code=303)
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(page.replace("{{disclaimer}}", escape(DISCLAIMER)))

    @app.get("/login", response_class=HTMLResponse)
    def login_page(error: str = "") -> Response:
        token = secrets.token_urlsafe(24)
        message = {"1": "Wrong user name or password.", "2": "The login form expired; try again."}.get(error, "")
        page = (STATIC / "login.html").read_text(encoding="utf-8")
        page = page.replace("{{token}}", token).replace("{{message}}", message)
        page = page.replace("{{disclaimer}}", escape(DISCLAIMER))
        response = HTMLResponse(page)
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies)
        return response

    @app.post("/login")
    async def login(
        request: Request,
        name: Annotated[str, Form()] = "",
        password: Annotated[str, Form()] = "",
        token: Annotated[str, Form()] = "",
    ):
        if not same_token(request.cookies.get(LOGIN_COOKIE) or "", token):
            return RedirectResponse("/login?error=2", status_code=303)
        role = await run_in_threadpool(verify_user, workstation.repository, name, password)
        if role is None:
            await asyncio.sleep(0.5)  # slows password guessing
            return RedirectResponse("/login?error=1", status_code=303)
        key, _ = sessions.start(name, role)
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(
            COOKIE, key, httponly=True, samesite="strict", secure=settings.secure_cookies, max_age=8 * 3600
        )
        response.delete_cookie(LOGIN_COOKIE)
        return response

    @app.post("/api/logout")
    def logout(request: Request, session: Changing) -> Response:
        sessions.end(request.cookies.get(COOKIE))
        response = JSONResponse({"ok": True})
        response.delete_cookie(COOKIE)
        return response

    @app.get("/api/me")
    def me(session: Current) -> dict[str, Any]:
        manifest = workstation.manifest
        models = [
            {
                "id": spec.model_id,
                "name": spec.name,
                "validation": workstation.model_info(spec.model_id).validation_text(),
                "default": spec.model_id == manifest.default,
            }
            for spec in manifest.models
        ]
        return {
            "pacs": pacs_configured(),
            "user": session.user,
            "role": session.role,
            "csrf": session.csrf,
            "models": models,
            "max_upload_mb": settings.max_upload_bytes // 2**20,
            "niivue": niivue_version(),
        }

    # jobs ---------------------------------------------------------------------------------------
    @app.post("/api/jobs")
    async def upload(request: Request, session: Changing) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit():
            raise HTTPException(411, "Uploads must state their size (Content-Length).")
        if int(length) > settings.max_upload_bytes + (1 << 20):
            raise HTTPException(
                413, f"The upload is larger than the limit of {settings.max_upload_bytes / 2**20:,.0f} MB."
            )
        form = await request.form(max_files=MAX_ZIP_ENTRIES, max_fields=20)
        try:
            files = [item for item in form.getlist("files") if isinstance(item, UploadFile)]
            model_id = str(form.get("model") or "") or None
            if model_id is not None:
                workstation.manifest.get(model_id)
            patient = PatientInfo(
                name=str(form.get("patient_name") or "")[:128], patient_id=str(form.get("patient_id") or "")[:64]
            )
            request_ = JobRequest(
                model_id=model_id,
                patient=patient if not patient.is_empty() else None,
                include_patient=str(form.get("include_patient") or "") == "on",
            )
            job_id, folder = jobs.new_folder()
            pairs = [(item.filename or "", item.file) for item in files]
            try:
                stored = await run_in_threadpool(store_upload, pairs, folder / "upload", settings.max_upload_bytes)
            except BaseException:
                shutil.rmtree(folder, ignore_errors=True)  # nothing of a refused upload is kept
                raise
        finally:
            await form.close()
        job = jobs.submit_upload(job_id, session.user, stored.path, request_)
        return {"job_id": job.job_id, "kind": stored.kind, "size_bytes": stored.size_bytes}

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str, session: Current) -> dict[str, Any]:
        job = own_job(job_id, session)
        return {
            "job_id": job.job_id,
            "state": job.state,
            "message": job.message,
            "summary": job.summary,
            "files": available_files(job),
        }

    @app.get("/api/jobs/{job_id}/events")
    async def job_events(request: Request, job_id: str, session: Current, start: int = 0):
        job = own_job(job_id, session)
        start = max(start, int(request.headers.get("last-event-id", -1)) + 1)

        async def stream() -> AsyncIterator[str]:
            index = start
            while True:
                for event in job.events_from(index):
                    index = event["id"] + 1
                    yield f"id: {event['id']}\nevent: {event['kind']}\ndata: {json.dumps(event)}\n\n"
                if job.finished and index >= len(job.events):
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.1)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str, session: Changing) -> dict[str, Any]:
        job = own_job(job_id, session)
        jobs.cancel(job)
        return {"job_id": job.job_id, "state": job.state}

    @app.get("/api/jobs/{job_id}/files/{name}")
    def job_file(job_id: str, name: str, session: Current) -> Response:
        job = own_job(job_id, session)
        if name not in FILES and name != "saved-report.pdf":
            raise HTTPException(404, "No such download.")
        file, media = FILES.get(name, ("saved-report.pdf", "application/pdf"))
        path = job.out / file
        if not path.is_file():
            raise HTTPException(404, f"{name} is not ready (yet).")
        return FileResponse(path, media_type=media, filename=name)

    @app.post("/api/jobs/{job_id}/save")
    async def save(job_id: str, request: Request, session: Changing) -> dict[str, Any]:
        job = own_job(job_id, session)
        body = await _json_body(request)
        if job.state != "done" or job.session is None or job.session.result is None:
            raise InputError("Only a finished result can be saved; wait for the job to finish.")
        saved = await run_in_threadpool(job.session.save, bool(body.get("store_patient")), session.user)
        return {"result_id": saved.result_id, "where": saved.where}

    @app.post("/api/jobs/{job_id}/compare")
    async def compare(job_id: str, request: Request, session: Changing) -> dict[str, Any]:
        """Read the job's study against a prior one (a saved result of this account, or another
        finished job of it): comparison.json/png in the job's downloads, the lines on the page."""
        from liverhealth.comparison import comparison_lines

        job = own_job(job_id, session)
        body = await _json_body(request)
        if job.state != "done" or job.session is None or job.session.result is None:
            raise InputError("Only a finished result can be compared; wait for the job to finish.")
        if body.get("prior_job_id"):
            other = own_job(str(body["prior_job_id"]), session)
            if other is job or other.state != "done" or other.session is None or other.session.result is None:
                raise InputError("Choose another finished study as the prior one.")
            prior = other.session
        else:
            try:
                prior_id = int(body.get("prior_result_id"))
            except (TypeError, ValueError):
                raise InputError("Choose the prior study: a saved result or another finished study.") from None
            await run_in_threadpool(own_result, prior_id, session)
            prior = await run_in_threadpool(workstation.reopen, prior_id)
        result = await run_in_threadpool(job.session.compare_with, prior)
        await run_in_threadpool(job.session.export_comparison, job.out)
        recist = result.comparison.recist
        return {
            "lines": comparison_lines(result.comparison),
            "response": recist.response,
            "response_name": recist.response_name,
            "lesions": [asdict(change) for change in result.comparison.lesions],
            "files": ["comparison.png", "comparison.json"],
        }

    # the PACS -----------------------------------------------------------------------------------
    @app.post("/api/pacs/find")
    async def pacs_find(request: Request, session: Changing) -> dict[str, Any]:
        body = await _json_body(request)
        query = {key: str(body.get(key) or "")[:64] for key in ("patient_id", "accession", "study_date", "modality")}
        hits = await run_in_threadpool(lambda: workstation.find_studies(**query))
        return {"studies": [asdict(hit) for hit in hits]}

    @app.post("/api/pacs/open")
    async def pacs_open(request: Request, session: Changing) -> dict[str, Any]:
        body = await _json_body(request)
        study_uid = str(body.get("study_uid") or "")
        if not is_uid(study_uid):
            raise InputError("Choose a study from the PACS list (its study UID is missing or malformed).")
        model_id = str(body.get("model") or "") or None
        if model_id is not None:
            workstation.manifest.get(model_id)
        job_id, _ = jobs.new_folder()
        job = jobs.submit_upload(job_id, session.user, f"{PACS_SCHEME}{study_uid}", JobRequest(model_id=model_id))
        return {"job_id": job.job_id}

    @app.post("/api/jobs/{job_id}/send")
    async def pacs_send(job_id: str, session: Changing) -> dict[str, Any]:
        job = own_job(job_id, session)
        files = [job.out / "seg.dcm", job.out / "sr.dcm"]
        if job.state != "done" or not all(f.is_file() for f in files):
            raise InputError("Only a finished result of a DICOM CT has a SEG and SR to send.")
        sent, present = await run_in_threadpool(workstation.store_to_pacs, files)
        return {"sent": sent, "already_there": present}

    # saved results ------------------------------------------------------------------------------
    @app.post("/api/results/search")
    async def search(request: Request, session: Changing) -> dict[str, Any]:
        body = await _json_body(request)
        rows = await run_in_threadpool(
            workstation.list_results,
            str(body.get("patient") or "") or None,
            str(body.get("model") or "") or None,
            _date(body.get("since")),
            _date(body.get("until")),
            None if session.admin else session.user,
        )
        return {
            "results": [
                {
                    "result_id": r.result_id,
                    "saved": f"{r.created_at:%Y-%m-%d %H:%M}",
                    "model": r.model_id,
                    "description": r.description,
                    "liver_volume_ml": r.liver_volume_ml,
                    "tumour_volume_ml": r.tumour_volume_ml,
                    "lesions": r.lesion_count,
                    "reports": r.report_count,
                    "owner": r.owner,
                    "patient": " ".join(filter(None, (r.patient_name, r.patient_id))) or None,
                }
                for r in rows
            ]
        }

    @app.post("/api/results/{result_id}/open")
    async def reopen(result_id: int, session: Changing) -> dict[str, Any]:
        stored = await run_in_threadpool(own_result, result_id, session)
        pdf = stored.reports[-1].pdf if stored.reports else None
        job = jobs.submit_reopen(session.user, result_id, pdf)
        return {"job_id": job.job_id}

    @app.delete("/api/results/{result_id}")
    async def delete(result_id: int, session: Changing) -> dict[str, Any]:
        await run_in_threadpool(own_result, result_id, session)
        await run_in_threadpool(workstation.delete, result_id)
        return {"deleted": result_id}

    @app.exception_handler(UploadError)
    async def refused_upload(request: Request, exc: UploadError) -> JSONResponse:
        return JSONResponse({"detail": " ".join(str(exc).split())}, status_code=400)

    return app


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


def _date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{str(value)[:20]!r} is not a date; use YYYY-MM-DD.") from None
