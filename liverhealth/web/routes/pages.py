"""The two HTML pages: the workstation (logged in) and the login form, each with the one
disclaimer every face shows."""

import json
import secrets
from pathlib import Path
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from liverhealth.presentation import DISCLAIMER
from liverhealth.web.deps import COOKIE, LOGIN_COOKIE, SettingsDep, WorkstationDep

STATIC = Path(__file__).resolve().parent.parent / "static"
NIIVUE = STATIC / "vendor" / "niivue"
LOGIN_MESSAGES = {"1": "Wrong user name or password.", "2": "The login form expired; try again."}
LOCKED_MESSAGE = "Too many failed logins: try again in {wait}, or ask an administrator to reset the password."

router = APIRouter(tags=["pages"])


def niivue_version(with_version: bool = True) -> str:
    """The bundled viewer's version and licence, from its npm package.json ("" when unreadable);
    the version only for admins (users are told no library versions)."""
    try:
        package = json.loads((NIIVUE / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    licence = f"({package.get('license', '?')})"
    return f"{package.get('version', '?')} {licence}" if with_version else licence


def page(name: str, **fields: str) -> str:
    """A page from static/ with its ``{{field}}``s and the disclaimer filled in."""
    text = (STATIC / name).read_text(encoding="utf-8")
    for field, value in fields.items():
        text = text.replace(f"{{{{{field}}}}}", value)
    return text.replace("{{disclaimer}}", escape(DISCLAIMER))


@router.get("/", response_class=HTMLResponse)
def index(request: Request, workstation: WorkstationDep) -> Response:
    """The workstation page; without a session, the login form."""
    if workstation.web_session(request.cookies.get(COOKIE)) is None:
        return RedirectResponse("/login", status_code=303)
    return HTMLResponse(page("index.html"))


@router.get("/login", response_class=HTMLResponse)
def login_page(settings: SettingsDep, error: str = "", wait: int = 0) -> Response:
    """The login form, with a fresh form token set as a cookie too (the login's CSRF check)."""
    token = secrets.token_urlsafe(24)
    message = LOGIN_MESSAGES.get(error, "")
    if error == "3":  # backed off or locked: only a number comes from the URL
        seconds = max(1, min(wait, 24 * 3600))
        wait_text = f"{seconds} seconds" if seconds < 120 else f"{(seconds + 59) // 60} minutes"
        message = LOCKED_MESSAGE.format(wait=wait_text)
    response = HTMLResponse(page("login.html", token=token, message=escape(message)))
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies)
    return response
