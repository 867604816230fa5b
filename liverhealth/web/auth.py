"""Web accounts and sessions: Argon2id password hashes in the results database, sessions held
by the server (a random cookie that names one; logging out ends it), a CSRF token per session.

Passwords are never stored, logged or echoed; only their Argon2 hash is kept. The session cookie
is HttpOnly and SameSite=Strict (and Secure when the server is told it runs behind TLS).
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from liverhealth.errors import InputError
from liverhealth.storage import Repository

ROLES = ("user", "admin")
USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 10
SESSION_HOURS = 8
_HASHER = PasswordHasher()  # Argon2id with the library's current defaults
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise InputError("A user name is 1-64 letters, digits, '.', '_' or '-'.")
    return name


def add_user(repository: Repository, name: str, password: str, role: str = "user") -> None:
    """Create (or reset) an account; the password is kept only as its Argon2 hash."""
    check_user_name(name)
    if role not in ROLES:
        raise InputError(f"A role is one of {', '.join(ROLES)}.")
    if len(password) < MIN_PASSWORD:
        raise InputError(f"Choose a password of at least {MIN_PASSWORD} characters.")
    repository.add_user(name, _HASHER.hash(password), role)


def verify_user(repository: Repository, name: str, password: str) -> str | None:
    """The account's role when name and password match, else None (the same work either way, so
    timing does not tell which accounts exist)."""
    row = repository.get_user(name) if USER_NAME.match(name or "") else None
    stored = row[0] if row else _DUMMY_HASH
    try:
        _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return row[1] if row else None


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
