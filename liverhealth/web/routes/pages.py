"""The two HTML pages: the workstation (logged in) and the login form, each with the one
disclaimer every face shows."""

import json
import secrets
from pathlib import Path
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from liverhealth.presentation import DISCLAIMER
from liverhealth.web.deps import COOKIE, LOGIN_COOKIE, SessionsDep, SettingsDep

STATIC = Path(__file__).resolve().parent.parent / "static"
NIIVUE = STATIC / "vendor" / "niivue"
LOGIN_MESSAGES = {"1": "Wrong user name or password.", "2": "The login form expired; try again."}

router = APIRouter(tags=["pages"])


def niivue_version() -> str:
    """The bundled viewer's version and licence, from its npm package.json ("" when unreadable)."""
    try:
        package = json.loads((NIIVUE / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    return f"{package.get('version', '?')} ({package.get('license', '?')})"


def page(name: str, **fields: str) -> str:
    """A page from static/ with its ``{{field}}``s and the disclaimer filled in."""
    text = (STATIC / name).read_text(encoding="utf-8")
    for field, value in fields.items():
        text = text.replace(f"{{{{{field}}}}}", value)
    return text.replace("{{disclaimer}}", escape(DISCLAIMER))


@router.get("/", response_class=HTMLResponse)
def index(request: Request, sessions: SessionsDep) -> Response:
    """The workstation page; without a session, the login form."""
    if sessions.get(request.cookies.get(COOKIE)) is None:
        return RedirectResponse("/login", status_code=303)
    return HTMLResponse(page("index.html"))


@router.get("/login", response_class=HTMLResponse)
def login_page(settings: SettingsDep, error: str = "") -> Response:
    """The login form, with a fresh form token set as a cookie too (the login's CSRF check)."""
    token = secrets.token_urlsafe(24)
    response = HTMLResponse(page("login.html", token=token, message=LOGIN_MESSAGES.get(error, "")))
    response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=settings.secure_cookies)
    return response
