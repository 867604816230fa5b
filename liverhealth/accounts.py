"""Accounts of the web interface and their sessions, kept in the results database.

- Passwords are kept only as Argon2id hashes; never stored, logged or echoed.
- Guessing is slowed per account and per client address: from the 5th failed login in an hour an
  account waits 2, 4, 8 ... seconds before the next try is even checked, and from the 10th it is
  locked for 15 minutes (a client address: from the 10th and 20th). While it waits, even the right
  password is refused, with one line that says for how long. A success clears the account's count.
- A session is a random cookie key of which only the SHA-256 is stored, so sessions survive a
  restart and the table cannot log anyone in. Sessions end after 30 idle minutes (setting
  ``session_idle_minutes`` / LIVERHEALTH_SESSION_IDLE_MINUTES), 8 hours after login, at logout, when
  the password changes, or when an admin ends all sessions of an account.

The workflow service holds these (``Workstation``); the web face only asks it.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from liverhealth import config
from liverhealth.domain import Actor
from liverhealth.errors import InputError
from liverhealth.storage.repository import Repository

ROLES = ("user", "admin")
USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 10
FAILURE_WINDOW = timedelta(hours=1)
LOCK = timedelta(minutes=15)
ACCOUNT_LIMITS = (5, 10)  # failures before the back-off starts, and before the lock
CLIENT_LIMITS = (10, 20)  # a client address (several people may share one behind a proxy)
MAX_BACKOFF_S = 300
SESSION_HOURS = 8
DEFAULT_IDLE_MINUTES = 30
TOUCH_EVERY = timedelta(minutes=1)  # how often a session's last-seen time is written
_HASHER = PasswordHasher()  # Argon2id with the library's current defaults
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class LoginRefused(InputError):
    """Too many failed logins: the account or the client waits (the message says how long)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class WebSession:
    """A logged-in web user: the account, its role and the CSRF token of this session."""

    user: str
    role: str
    csrf: str
    client: str | None = None  # the address this request came from (set per request)

    @property
    def admin(self) -> bool:
        return self.role == "admin"

    @property
    def actor(self) -> Actor:
        """Who the audit trail names for this request."""
        return Actor(self.user, "web", self.client)


def check_user_name(name: str) -> str:
    if not USER_NAME.match(name):
        raise InputError("A user name is 1-64 letters, digits, '.', '_' or '-'.")
    return name


def _check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"Choose a password of at least {MIN_PASSWORD} characters.")
    return password


def add_user(repository: Repository, name: str, password: str, role: str = "user") -> None:
    """Create (or reset) an account; the password is kept only as its Argon2 hash."""
    check_user_name(name)
    if role not in ROLES:
        raise InputError(f"A role is one of {', '.join(ROLES)}.")
    repository.add_user(name, _HASHER.hash(_check_password(password)), role)


def set_password(repository: Repository, name: str, password: str) -> None:
    """Change an existing account's password, end its sessions and lift its lock."""
    check_user_name(name)
    if not repository.set_password(name, _HASHER.hash(_check_password(password))):
        raise InputError(f"There is no account {name}: create it with `liverhealth web adduser {name}`.")
    repository.end_sessions(name=name)
    clear_failures(repository, name)  # a reset by the administrator lifts the lock


def wait_s(failures: list[datetime], limits: tuple[int, int], now: datetime) -> int:
    """Seconds until the next try may be checked, after these failed logins (oldest first)."""
    backoff_from, lock_from = limits
    if len(failures) < backoff_from:
        return 0
    last = failures[-1]
    if len(failures) >= lock_from:
        delay = LOCK
    else:
        delay = timedelta(seconds=min(2 ** (len(failures) - backoff_from + 1), MAX_BACKOFF_S))
    return max(0, int((last + delay - now).total_seconds() + 0.999))


def _refusal(who: str, seconds: int) -> LoginRefused:
    minutes = (seconds + 59) // 60
    when = f"{seconds} seconds" if seconds < 120 else f"{minutes} minutes"
    return LoginRefused(
        f"Too many failed logins {who}: try again in {when}, or ask an administrator to reset the password.",
        seconds,
    )


def check_not_locked(repository: Repository, name: str, client: str, now: datetime) -> None:
    """Refuse, before any password is checked, an account or a client that must still wait."""
    since = now - FAILURE_WINDOW
    account = wait_s(repository.login_failures(since, name=name_hash(name)), ACCOUNT_LIMITS, now)
    if account:
        raise _refusal("for this account", account)
    from_client = wait_s(repository.login_failures(since, client=client), CLIENT_LIMITS, now)
    if from_client:
        raise _refusal("from this computer", from_client)


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


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def name_hash(name: str) -> str:
    """How a failed login's account name is kept: hashed, since people type passwords into it."""
    return hashlib.sha256(b"liverhealth-login:" + (name or "").encode()).hexdigest()


def record_failure(repository: Repository, name: str, client: str, now: datetime) -> None:
    repository.add_login_failure(name_hash(name), client, now)


def clear_failures(repository: Repository, name: str) -> None:
    repository.clear_login_failures(name_hash(name))


def idle_timeout() -> timedelta:
    value = config.setting("session_idle_minutes", "LIVERHEALTH_SESSION_IDLE_MINUTES", str(DEFAULT_IDLE_MINUTES))
    try:
        minutes = float(value or DEFAULT_IDLE_MINUTES)
    except ValueError:
        raise InputError(
            f"The session idle timeout must be a number of minutes, not {value!r} "
            "(LIVERHEALTH_SESSION_IDLE_MINUTES or session_idle_minutes in the config file)."
        ) from None
    if minutes <= 0:
        raise InputError("The session idle timeout must be more than 0 minutes.")
    return timedelta(minutes=minutes)


def start_session(repository: Repository, name: str, role: str, now: datetime) -> tuple[str, WebSession]:
    """A new session: (the cookie key, the session). Only the key's hash is stored."""
    key, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    repository.end_sessions(before=now - idle_timeout())  # the expired ones go
    repository.add_session(key_hash(key), name, role, csrf, now)
    return key, WebSession(name, role, csrf)


def find_session(repository: Repository, key: str | None, now: datetime) -> WebSession | None:
    """The live session named by a cookie key, else None (an idle or too old one is ended)."""
    if not key:
        return None
    hashed = key_hash(key)
    stored = repository.get_session(hashed)
    if stored is None:
        return None
    if now - stored.last_seen_at > idle_timeout() or now - stored.created_at > timedelta(hours=SESSION_HOURS):
        repository.end_sessions(key_sha256=hashed)
        return None
    if now - stored.last_seen_at > TOUCH_EVERY:
        repository.touch_session(hashed, now)
    return WebSession(stored.user, stored.role, stored.csrf)


def end_session(repository: Repository, key: str | None) -> None:
    if key:
        repository.end_sessions(key_sha256=key_hash(key))
