"""Accounts of the web interface: names, roles and Argon2id password hashes kept in the results
database. Passwords are never stored, logged or echoed; only their Argon2 hash is kept. The
workflow service holds the accounts (``Workstation.add_user``/``verify_user``); the web face only
asks it.
"""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from liverhealth.errors import InputError
from liverhealth.storage.repository import Repository

ROLES = ("user", "admin")
USER_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 10
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
