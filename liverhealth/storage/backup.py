"""Back up the whole results database to one file, and restore it into an empty database.

The file is portable: a backup of SQLite restores into MySQL/MariaDB and back. It is a zip::

    manifest.json             {"format": "liverhealth-backup", "format_version": 1,
                               "liverhealth_version", "created_at" (UTC, ISO 8601),
                               "schema_revision" (Alembic), "source" ("sqlite" or "mysql"),
                               "tables": [{"name", "member", "rows", "sha256",
                                           "columns": [{"name", "kind"}, ...]}, ...]}
    tables/<table>.jsonl      one JSON object per row (column -> value), by primary key

Tables come in dependency order (``Base.metadata.sorted_tables``), so a table a later migration
adds is backed up without changing this module. Values by kind: ``binary`` as base64,
``datetime``/``date``/``time`` as ISO 8601, ``json`` as the JSON text the database holds,
``decimal`` as a string, the rest as JSON numbers, strings and booleans; SQL NULL is ``null``.
``sha256`` is that of the member's bytes. The database URL (and so its password) is never written.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import IO, Any

from alembic import command
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, Text, column, event, func, insert, inspect, select, table
from sqlalchemy.engine import URL, Connection, Inspector
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.types import JSON, TypeEngine

from liverhealth import __version__
from liverhealth.errors import InputError, OutputError, StorageError
from liverhealth.storage.database import database_url, describe, make_engine, parse_url, translate
from liverhealth.storage.migrations_runner import alembic_config
from liverhealth.storage.models import Base
from liverhealth.storage.repository import Repository

FORMAT = "liverhealth-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
BATCH_ROWS = 200  # rows per read and per INSERT
BATCH_BYTES = 32 * 1024 * 1024  # ... or fewer, when their lines hold this much
KINDS = {
    int: "integer",
    float: "float",
    bool: "boolean",
    str: "string",
    bytes: "binary",
    datetime: "datetime",
    date: "date",
    time: "time",
    Decimal: "decimal",
}
ALL_KINDS = frozenset(KINDS.values()) | {"json"}


@dataclass(frozen=True)
class BackupSummary:
    """A backup written or restored: the file, its schema revision and creation time, rows per table."""

    path: Path
    schema_revision: str
    created_at: str
    rows: dict[str, int]


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str
    type: TypeEngine


def backup(url: str | None, path: Path) -> BackupSummary:
    """Write the whole database at ``url`` (None: the configured one) to the file ``path``.

    Every table is read in one transaction (a consistent snapshot on MySQL/MariaDB, one read
    transaction on SQLite), so a backup taken while LiverHealth saves results is consistent; on
    SQLite a save waits while the backup reads. The file appears only when complete (a temporary
    file beside it, fsync, rename) and replaces an older one of that name only then. It holds
    every result with its patient identifiers and the accounts' password hashes, but never the
    database URL: keep it (created readable by its owner only) as protected as the database.
    """
    target = database_url(url)
    parsed = parse_url(target)
    path = Path(path).expanduser()
    _check_source(parsed, path)
    engine = make_engine(target)
    try:
        with _atomic_file(path) as stream, zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as archive:
            with _snapshot(engine, parsed) as connection:
                revision = MigrationContext.configure(connection).get_current_revision()
                if not revision:
                    raise StorageError(
                        f"The {describe(parsed)} holds no LiverHealth tables: nothing to back up. Check the "
                        "database URL."
                    )
                tables = _dump_tables(connection, archive)
            created_at = datetime.now(UTC).isoformat(timespec="seconds")
            manifest = {
                "format": FORMAT,
                "format_version": FORMAT_VERSION,
                "liverhealth_version": __version__,
                "created_at": created_at,
                "schema_revision": revision,
                "source": "sqlite" if parsed.get_backend_name() == "sqlite" else "mysql",
                "tables": tables,
            }
            archive.writestr(MANIFEST, json.dumps(manifest, indent=1))
    except (DBAPIError, SQLAlchemyError) as exc:
        raise translate(exc, parsed, "back up the database") from exc
    finally:
        engine.dispose()
    return BackupSummary(path, revision, created_at, {entry["name"]: entry["rows"] for entry in tables})


def restore(url: str | None, path: Path) -> BackupSummary:
    """Restore the backup ``path`` into the empty database at ``url`` (None: the configured one).

    The file is checked in full first (format, each member's sha256, a schema revision this
    LiverHealth knows); then the schema is created at the backup's revision, every row is written
    in one transaction with its original id (all or nothing), and the schema is upgraded to this
    version's. A database that already holds rows is refused and left as it is.
    """
    path = Path(path).expanduser()
    with _open_backup(path) as archive:
        manifest = _read_manifest(archive, path)
        for entry in manifest["tables"]:
            _verify_member(archive, entry, path)
        revision = manifest["schema_revision"]
        head = _known_revision(revision, path)
        repository = Repository(url)
        parsed = parse_url(repository.url)
        names = [entry["name"] for entry in manifest["tables"]]
        try:
            _refuse_unless_empty(repository.engine, parsed, names)
            repository.init()
            if revision != head:
                _downgrade(repository.engine, parsed, revision)
            rows = _load(repository.url, parsed, archive, manifest, path)
            if revision != head:
                repository.init()
        finally:
            repository.close()
    return BackupSummary(path, revision, manifest["created_at"], rows)


def _check_source(parsed: URL, path: Path) -> None:
    """Refuse a SQLite file that is not there (connecting would create it) or that is ``path`` itself."""
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return
    database = Path(parsed.database).expanduser()
    if not database.is_file():
        raise StorageError(f"There is no {describe(parsed)}: nothing to back up. Check the database URL.")
    if path.exists() and path.resolve() == database.resolve():
        raise OutputError(f"The backup would replace the database itself ({path}). Choose another file.")


@contextmanager
def _atomic_file(path: Path) -> Iterator[IO[bytes]]:
    """A file that appears at ``path`` only when complete (temporary file beside it, fsync, rename);
    on any failure the temporary file is removed and an older ``path`` is left as it was."""
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise OutputError(f"Cannot write the backup in {path.parent}: {exc.strerror or exc}.") from exc
    try:
        with os.fdopen(descriptor, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise OutputError(f"Cannot write the backup {path}: {exc.strerror or exc}. No backup was written.") from exc
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    try:  # make the rename itself durable
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError:
        pass  # some file systems cannot sync a folder; the file itself is synced


def _explicit_begin(engine: Engine, statement: str) -> None:
    """Make SQLite transactions begin with ``statement``: pysqlite otherwise begins one only before
    a write, so the reads before it would each see the file as it is at that moment."""

    def no_implicit_begin(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None

    def begin(connection: Connection) -> None:
        connection.exec_driver_sql(statement)

    event.listen(engine, "connect", no_implicit_begin)
    event.listen(engine, "begin", begin)


@contextmanager
def _snapshot(engine: Engine, parsed: URL) -> Iterator[Connection]:
    """A connection inside one read-only transaction that sees the database as it was when it began."""
    if parsed.get_backend_name() == "sqlite":
        _explicit_begin(engine, "BEGIN")
        with engine.begin() as connection:
            yield connection
        return
    with engine.connect() as connection:
        connection.execution_options(isolation_level="REPEATABLE READ")
        connection.exec_driver_sql("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        yield connection
        connection.rollback()


def _kind(type_: TypeEngine, where: str) -> str:
    if isinstance(type_, JSON):
        return "json"
    try:
        kind = KINDS.get(type_.python_type)
    except NotImplementedError:
        kind = None
    if kind is None:
        raise StorageError(
            f"Column {where} has a type ({type(type_).__name__}) a backup cannot hold; it was not made by "
            "LiverHealth. No backup was written."
        )
    return kind


def _columns(inspector: Inspector, name: str) -> list[_Column]:
    """The table's columns as the database has them, typed as the models type them where they know them."""
    model = Base.metadata.tables.get(name)
    columns = []
    for reflected in inspector.get_columns(name):
        known = model is not None and reflected["name"] in model.c
        type_ = model.c[reflected["name"]].type if known else reflected["type"]
        columns.append(_Column(reflected["name"], _kind(type_, f"{name}.{reflected['name']}"), type_))
    return columns


def _lightweight(name: str, columns: list[_Column]) -> Any:
    """The table for SELECT and INSERT; JSON travels as the text the database holds."""
    return table(name, *(column(c.name, Text() if c.kind == "json" else c.type) for c in columns))


def _encode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "binary":
        return base64.b64encode(value).decode("ascii")
    if kind in ("datetime", "date", "time"):
        return value.isoformat()
    if kind == "decimal":
        return str(value)
    if kind == "json" and isinstance(value, bytes):
        return value.decode("utf-8")
    return value


def _decode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "binary":
        return base64.b64decode(value, validate=True)
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "time":
        return time.fromisoformat(value)
    if kind == "decimal":
        return Decimal(value)
    return value


def _dump_tables(connection: Connection, archive: zipfile.ZipFile) -> list[dict[str, Any]]:
    """Write one JSON-lines member per table the database has; returns their manifest entries."""
    inspector = inspect(connection)
    present = set(inspector.get_table_names())
    entries = []
    for model in Base.metadata.sorted_tables:
        if model.name not in present:
            continue  # an older schema than this code's
        columns = _columns(inspector, model.name)
        source = _lightweight(model.name, columns)
        key = inspector.get_pk_constraint(model.name)["constrained_columns"]
        query = select(source).order_by(*(source.c[name] for name in key))
        member = f"tables/{model.name}.jsonl"
        digest, rows = hashlib.sha256(), 0
        with archive.open(member, "w", force_zip64=True) as out:
            for row in connection.execute(query.execution_options(yield_per=BATCH_ROWS)):
                values = {c.name: _encode(c.kind, value) for c, value in zip(columns, row, strict=True)}
                line = json.dumps(values, separators=(",", ":")).encode("ascii") + b"\n"
                digest.update(line)
                out.write(line)
                rows += 1
        entries.append(
            {
                "name": model.name,
                "member": member,
                "rows": rows,
                "sha256": digest.hexdigest(),
                "columns": [{"name": c.name, "kind": c.kind} for c in columns],
            }
        )
    return entries


@contextmanager
def _open_backup(path: Path) -> Iterator[zipfile.ZipFile]:
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError as exc:
        raise InputError(f"There is no backup file {path}.") from exc
    except (zipfile.BadZipFile, OSError) as exc:
        raise InputError(f"{path} is not a LiverHealth backup (not a readable zip file).") from exc
    with archive:
        yield archive


def _not_a_backup(path: Path, why: str) -> InputError:
    return InputError(f"{path} is not a LiverHealth backup, or it is damaged: {why}. Nothing was restored.")


def _read_manifest(archive: zipfile.ZipFile, path: Path) -> dict[str, Any]:
    """The manifest, checked for everything restore relies on."""
    try:
        manifest = json.loads(archive.read(MANIFEST))
    except KeyError as exc:
        raise _not_a_backup(path, f"it has no {MANIFEST}") from exc
    except (ValueError, zipfile.BadZipFile, zlib.error, OSError) as exc:
        raise _not_a_backup(path, f"its {MANIFEST} cannot be read") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise _not_a_backup(path, f"its {MANIFEST} is not LiverHealth's")
    version = manifest.get("format_version")
    if isinstance(version, int) and version > FORMAT_VERSION:
        raise InputError(
            f"The backup {path} has format version {version}; this LiverHealth reads version {FORMAT_VERSION}. "
            "Restore it with the newer LiverHealth that wrote it."
        )
    tables = manifest.get("tables")
    valid = (
        version == FORMAT_VERSION
        and isinstance(manifest.get("schema_revision"), str)
        and manifest["schema_revision"]
        and isinstance(manifest.get("created_at"), str)
        and isinstance(tables, list)
        and all(_valid_entry(entry, archive) for entry in tables)
    )
    if not valid:
        raise _not_a_backup(path, f"its {MANIFEST} is incomplete or names members the file lacks")
    return manifest


def _valid_entry(entry: Any, archive: zipfile.ZipFile) -> bool:
    names = set(archive.namelist())
    return (
        isinstance(entry, dict)
        and isinstance(entry.get("name"), str)
        and entry.get("member") in names
        and isinstance(entry.get("rows"), int)
        and isinstance(entry.get("sha256"), str)
        and isinstance(entry.get("columns"), list)
        and all(
            isinstance(c, dict) and isinstance(c.get("name"), str) and c.get("kind") in ALL_KINDS
            for c in entry["columns"]
        )
    )


def _verify_member(archive: zipfile.ZipFile, entry: dict[str, Any], path: Path) -> None:
    digest = hashlib.sha256()
    try:
        with archive.open(entry["member"]) as member:
            while chunk := member.read(1 << 20):
                digest.update(chunk)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise _not_a_backup(path, f"{entry['member']} cannot be read") from exc
    if digest.hexdigest() != entry["sha256"]:
        raise InputError(
            f"The backup {path} is damaged or was changed: {entry['member']} does not match its checksum in "
            "the manifest. Nothing was restored."
        )


def _known_revision(revision: str, path: Path) -> str:
    """Refuse a schema revision this code has no migration for; returns this code's head revision."""
    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        scripts.get_revision(revision)
    except CommandError as exc:
        raise InputError(
            f"The backup {path} is at schema revision '{revision}', which this LiverHealth does not know: a "
            "newer version wrote it. Restore it with that version or a newer one."
        ) from exc
    return scripts.get_current_head() or ""


def _row_counts(connection: Connection, names: list[str]) -> dict[str, int]:
    """Rows in each of these tables (and the models' tables) that the database has."""
    present = set(inspect(connection).get_table_names())
    wanted = [name for name in dict.fromkeys([*Base.metadata.tables, *names]) if name in present]
    return {name: int(connection.scalar(select(func.count()).select_from(table(name))) or 0) for name in wanted}


def _not_empty(parsed: URL, counts: dict[str, int]) -> StorageError:
    held = ", ".join(f"{name}: {rows}" for name, rows in counts.items() if rows)
    return StorageError(
        f"The {describe(parsed)} is not empty (rows in {held}). Restore only into an empty database (a new "
        "SQLite file or a new MySQL database); nothing was changed."
    )


def _refuse_unless_empty(engine: Engine, parsed: URL, names: list[str]) -> None:
    try:
        with engine.connect() as connection:
            counts = _row_counts(connection, names)
    except (DBAPIError, SQLAlchemyError) as exc:
        error = translate(exc, parsed, "open the database")
        if getattr(error, "code", None) == 1049:
            return  # no such MySQL database yet: Repository.init creates it
        raise error from exc
    if any(counts.values()):
        raise _not_empty(parsed, counts)


def _downgrade(engine: Engine, parsed: URL, revision: str) -> None:
    """Take the (empty) schema back to the backup's revision, so its rows fit as they were written."""
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), revision)
    except CommandError as exc:
        raise StorageError(f"Could not prepare the {describe(parsed)} for revision {revision}: {exc}.") from exc
    except (DBAPIError, SQLAlchemyError) as exc:
        raise translate(exc, parsed, "prepare the tables") from exc


def _load(url: str, parsed: URL, archive: zipfile.ZipFile, manifest: dict[str, Any], path: Path) -> dict[str, int]:
    """Insert every row in one transaction (all or nothing), checking each member again as it is read."""
    engine = make_engine(url)
    if parsed.get_backend_name() == "sqlite":
        _explicit_begin(engine, "BEGIN IMMEDIATE")  # the emptiness check and the writes in one transaction
    names = [entry["name"] for entry in manifest["tables"]]
    try:
        with engine.begin() as connection:
            counts = _row_counts(connection, names)
            if any(counts.values()):
                raise _not_empty(parsed, counts)
            inspector = inspect(connection)
            present = set(inspector.get_table_names()) - {"alembic_version"}
            return {
                entry["name"]: _load_table(connection, inspector, present, archive, entry, path)
                for entry in manifest["tables"]
            }
    except (DBAPIError, SQLAlchemyError) as exc:
        error = translate(exc, parsed, "restore the backup")
        raise StorageError(f"{error} Nothing was restored.") from exc
    finally:
        engine.dispose()


def _load_table(
    connection: Connection,
    inspector: Inspector,
    present: set[str],
    archive: zipfile.ZipFile,
    entry: dict[str, Any],
    path: Path,
) -> int:
    name = entry["name"]
    if name not in present:
        raise _not_a_backup(path, f"it holds a table '{name}' that the database lacks")
    target = {c["name"]: c["type"] for c in inspector.get_columns(name)}
    model = Base.metadata.tables.get(name)
    columns = []
    for spec in entry["columns"]:
        if spec["name"] not in target:
            raise _not_a_backup(path, f"it holds a column {name}.{spec['name']} that the database lacks")
        known = model is not None and spec["name"] in model.c
        columns.append(
            _Column(spec["name"], spec["kind"], model.c[spec["name"]].type if known else target[spec["name"]])
        )
    statement = insert(_lightweight(name, columns))
    digest, rows, batch, size = hashlib.sha256(), 0, [], 0
    with archive.open(entry["member"]) as member:
        for line in member:
            digest.update(line)
            batch.append(_row(line, columns, entry["member"], path))
            rows, size = rows + 1, size + len(line)
            if len(batch) >= BATCH_ROWS or size >= BATCH_BYTES:
                connection.execute(statement, batch)
                batch, size = [], 0
    if batch:
        connection.execute(statement, batch)
    if digest.hexdigest() != entry["sha256"] or rows != entry["rows"]:
        raise InputError(f"The backup {path} changed while it was restored. Nothing was restored.")
    return rows


def _row(line: bytes, columns: list[_Column], member: str, path: Path) -> dict[str, Any]:
    try:
        values = json.loads(line)
        if not isinstance(values, dict):
            raise ValueError("not an object")
        return {c.name: _decode(c.kind, values.get(c.name)) for c in columns}
    except (ValueError, TypeError, InvalidOperation) as exc:
        raise _not_a_backup(path, f"a row of {member} cannot be read") from exc
