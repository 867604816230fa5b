"""Accounts: logging in (the form posts here), logging out, and who is logged in."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from liverhealth.accounts import LoginRefused
from liverhealth.errors import InputError, LiverHealthError
from liverhealth.imaging.display import WINDOW_PRESETS
from liverhealth.web.deps import (
    COOKIE,
    LOGIN_COOKIE,
    ChangingUser,
    CurrentUser,
    SettingsDep,
    WorkstationDep,
    client_address,
    same_token,
)
from liverhealth.web.routes.pages import niivue_version
from liverhealth.web.schemas import LoggedOut, Me, ModelChoice, WindowPreset

SESSION_COOKIE_S = 8 * 3600
WRONG_PASSWORD_DELAY_S = 0.5  # slows password guessing

router = APIRouter(tags=["accounts"])


def pacs_configured() -> bool:
    """Whether a PACS is set up (the page then offers its panel)."""
    from liverhealth.pacs import PacsSettings

    try:
        PacsSettings.from_environment()
    except LiverHealthError:
        return False
    return True


@router.post("/login")
async def login(
    request: Request,
    settings: SettingsDep,
    workstation: WorkstationDep,
    name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
) -> Response:
    """Check the form's token and the password; on success, a session cookie and the page."""
    if not same_token(request.cookies.get(LOGIN_COOKIE) or "", token):
        return RedirectResponse("/login?error=2", status_code=303)
    try:
        key, _ = await run_in_threadpool(workstation.login, name, password, client_address(request))
    except LoginRefused as exc:
        return RedirectResponse(f"/login?error=3&wait={exc.retry_after_s}", status_code=303)
    except InputError:
        await asyncio.sleep(WRONG_PASSWORD_DELAY_S)
        return RedirectResponse("/login?error=1", status_code=303)
    response = RedirectResponse("/", status_code=303)
    response.set_cookie(
        COOKIE, key, httponly=True, samesite="strict", secure=settings.secure_cookies, max_age=SESSION_COOKIE_S
    )
    response.delete_cookie(LOGIN_COOKIE)
    return response


@router.post("/api/logout")
def logout(request: Request, response: Response, session: ChangingUser, workstation: WorkstationDep) -> LoggedOut:
    """End the session and drop its cookie."""
    workstation.logout(request.cookies.get(COOKIE), session.actor)
    response.delete_cookie(COOKIE)
    return LoggedOut()


@router.get("/api/me")
def me(session: CurrentUser, settings: SettingsDep, workstation: WorkstationDep) -> Me:
    """The account, its CSRF token, the models on offer (with their validation) and the limits."""
    manifest = workstation.manifest
    models = [
        ModelChoice(
            id=spec.model_id,
            name=spec.name,
            validation=workstation.model_info(spec.model_id).validation_text(),
            default=spec.model_id == manifest.default,
            caution=manifest.caution(spec.model_id),
        )
        for spec in manifest.models
    ]
    return Me(
        pacs=pacs_configured(),
        user=session.user,
        role=session.role,
        csrf=session.csrf,
        models=models,
        max_upload_mb=settings.max_upload_bytes // 2**20,
        niivue=niivue_version(with_version=session.admin),
        window_presets=[
            WindowPreset(key=key, name=window.name, center=window.center, width=window.width)
            for key, window in WINDOW_PRESETS.items()
        ],
    )
