"""Web sessions: held by the server (a random cookie that names one; logging out ends it), a CSRF
token per session. Accounts and passwords are the workflow's (``liverhealth.accounts``).

The session cookie is HttpOnly and SameSite=Strict (and Secure when the server is told it runs
behind TLS).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass

SESSION_HOURS = 8


@dataclass(frozen=True)
class WebSession:
    user: str
    role: str
    csrf: str
    expires_s: float

    @property
    def admin(self) -> bool:
        return self.role == "admin"


class Sessions:
    """Server-side sessions keyed by a random cookie value."""

    def __init__(self) -> None:
        self._sessions: dict[str, WebSession] = {}
        self._lock = threading.Lock()

    def start(self, user: str, role: str) -> tuple[str, WebSession]:
        key = secrets.token_urlsafe(32)
        session = WebSession(user, role, secrets.token_urlsafe(32), time.monotonic() + SESSION_HOURS * 3600)
        with self._lock:
            self._sessions = {k: s for k, s in self._sessions.items() if s.expires_s > time.monotonic()}
            self._sessions[key] = session
        return key, session

    def get(self, key: str | None) -> WebSession | None:
        if not key:
            return None
        with self._lock:
            session = self._sessions.get(key)
        if session is None or session.expires_s < time.monotonic():
            return None
        return session

    def end(self, key: str | None) -> None:
        with self._lock:
            self._sessions.pop(key or "", None)


def same_token(expected: str, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(expected.encode(), given.encode())
