"""Engines, URLs and error messages for the results database (SQLite or MySQL/MariaDB).

Every database failure leaves here as one ``StorageError`` that names the server or file
and says what to do, and never carries the password: messages are built from the URL with
its password hidden and from the driver's error code, not from SQLAlchemy's text (which
can quote statements and parameters).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, unquote

import platformdirs
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

from liverhealth import config
from liverhealth.errors import StorageError

CONNECT_TIMEOUT_S = 5

# PyMySQL / MariaDB error codes -> what happened and what to do
MYSQL_ERRORS: dict[int, str] = {
    2003: "cannot reach the server (not running, wrong host or port, or a firewall). Start it or check "
    "the database URL",
    1045: "the server refused the user name or password. Check them in Settings or LIVERHEALTH_DB_URL",
    1698: "the server refused the user name or password. Check them in Settings or LIVERHEALTH_DB_URL",
    1044: "the user may not use this database. Ask the administrator for access",
    1049: "the database does not exist on the server. Create it (CREATE DATABASE ...) or run "
    "`liverhealth db init` with a user allowed to create it",
    2006: "the server closed the connection. Try again when it is back",
    2013: "the connection to the server was lost. Try again when it is back",
    1114: "the server's disk or table is full. Free space on the server",
    1021: "the server's disk is full. Free space on the server",
    1205: "the server timed out waiting for a lock. Try again",
    1213: "the server detected a deadlock and rolled back. Try again",
    1146: "the LiverHealth tables are missing. Run `liverhealth db init`",
}


def default_url() -> str:
    """An SQLite file in the user's data directory."""
    folder = Path(platformdirs.user_data_dir(config.APP_NAME))
    return f"sqlite:///{folder / 'liverhealth.db'}"


def database_url(override: str | None = None) -> str:
    """The URL to use: a flag, else LIVERHEALTH_DB_URL, else the config file, else SQLite."""
    return override or config.setting("db_url", "LIVERHEALTH_DB_URL") or default_url()


_USERINFO = re.compile(r"^(?P<scheme>[A-Za-z][\w+.-]*)://(?P<userinfo>.*)@(?P<rest>[^@]*)$")


def _encode_userinfo(url: str) -> str:
    """Percent-encode the user name and password of a URL, taking the last '@' before the host
    as the separator, so a password with '@', ':' or '/' in it neither breaks the URL nor shows
    up in a message as part of the host."""
    match = _USERINFO.match(url)
    if not match or match["scheme"].lower().startswith("sqlite"):
        return url
    user, sep, password = match["userinfo"].partition(":")
    user, password = unquote(user), unquote(password)
    encoded = quote(user, safe="") + (sep + quote(password, safe="") if sep else "")
    return f"{match['scheme']}://{encoded}@{match['rest']}"


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(_encode_userinfo(url))
    except ArgumentError as exc:
        raise StorageError(
            "The database URL is not valid. Use sqlite:///PATH or mysql+pymysql://USER:PASSWORD@HOST/DATABASE."
        ) from exc
    except ValueError as exc:
        raise StorageError(
            "The database URL's port is not a number. Use mysql+pymysql://USER:PASSWORD@HOST:PORT/DATABASE."
        ) from exc
    if parsed.get_backend_name() not in ("sqlite", "mysql", "mariadb"):
        raise StorageError(f"Database type '{parsed.get_backend_name()}' is not supported; use SQLite or MySQL.")
    return parsed


def describe(url: URL) -> str:
    """Where the data goes, for messages: never the password."""
    if url.get_backend_name() == "sqlite":
        return f"SQLite file {url.database or ':memory:'}"
    port = url.port or 3306
    return f"MySQL server {url.username or ''}@{url.host or 'localhost'}:{port}, database '{url.database or ''}'"


def _scrub(text: str, url: URL) -> str:
    return text.replace(url.password, "***") if url.password else text


def translate(exc: BaseException, url: URL, action: str, writing: bool = False) -> StorageError:
    """A database failure as one user-readable StorageError."""
    where = describe(url)
    original = getattr(exc, "orig", None)
    code = original.args[0] if original is not None and original.args and isinstance(original.args[0], int) else None
    if code in MYSQL_ERRORS:
        reason = MYSQL_ERRORS[code]
    elif url.get_backend_name() == "sqlite":
        text = str(original or exc).lower()
        if "disk is full" in text or "database or disk is full" in text:
            reason = "the disk is full. Free some space"
        elif "unable to open" in text:
            reason = "the file cannot be opened (missing folder or no permission). Check the path"
        elif "locked" in text:
            reason = "another program is writing to it. Try again"
        elif "no such table" in text:
            reason = "the LiverHealth tables are missing. Run `liverhealth db init`"
        else:
            reason = _scrub(str(original or exc).splitlines()[0][:200], url)
    else:
        detail = original.args[1] if original is not None and len(original.args) > 1 else str(original or exc)
        reason = _scrub(str(detail).splitlines()[0][:200], url)
    after = " Nothing was changed; the result is still open and can be saved again." if writing else ""
    error = StorageError(f"Could not {action} ({where}): {reason}.{after}")
    error.code = code  # type: ignore[attr-defined]
    return error


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the URL: foreign keys on for SQLite, short timeouts and pre-ping for MySQL."""
    parsed = parse_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                try:
                    Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StorageError(
                        f"Cannot create the folder for {describe(parsed)}: {exc.strerror or exc}."
                    ) from exc
            engine = create_engine(parsed, connect_args={"timeout": 10})
            event.listen(engine, "connect", _sqlite_pragmas)
            return engine
        query = dict(parsed.query)
        query.setdefault("charset", "utf8mb4")
        parsed = parsed.set(query=query)
        timeout = int(os.environ.get("LIVERHEALTH_DB_TIMEOUT", CONNECT_TIMEOUT_S))
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_recycle=3600,
            connect_args={"connect_timeout": timeout, "read_timeout": 30, "write_timeout": 30},
        )
    except NoSuchModuleError as exc:
        raise StorageError("MySQL support is not installed: pip install 'liverhealth[mysql]'.") from exc
    except (DBAPIError, SQLAlchemyError) as exc:
        raise translate(exc, parsed, "open the database") from exc
