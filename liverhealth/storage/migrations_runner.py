"""Run the Alembic migrations in ``storage/migrations`` on an open connection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine

from liverhealth.errors import StorageError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


@contextmanager
def schema_lock(engine: Engine) -> Iterator[None]:
    """Hold the server's named schema lock on a connection of its own (MySQL/MariaDB; nothing elsewhere).

    Concurrent first-time saves (two workstations creating the tables at once) take turns. The
    upgrade must run and **commit** on another connection inside this block: MySQL commits DDL at
    once but the last ``alembic_version`` update only at the transaction's end, so a lock released
    before that commit lets the next workstation see the previous revision and run it again.
    """
    if engine.dialect.name not in ("mysql", "mariadb"):
        yield
        return
    with engine.connect() as connection:
        if connection.execute(text("SELECT GET_LOCK('liverhealth_schema', 60)")).scalar() != 1:
            raise StorageError(
                "Another workstation has been creating or upgrading the database tables for a minute. "
                "Try again when it has finished."
            )
        try:
            yield
        finally:
            connection.execute(text("SELECT RELEASE_LOCK('liverhealth_schema')"))


def upgrade_to_head(connection: Connection) -> str:
    """Upgrade the schema to the newest revision; returns it. Run it under ``schema_lock``."""
    try:
        command.upgrade(alembic_config(connection), "head")
        return MigrationContext.configure(connection).get_current_revision() or ""
    except CommandError as exc:
        current = MigrationContext.configure(connection).get_current_revision()
        raise StorageError(
            f"The database is at schema revision '{current}', which this LiverHealth does not know (a newer "
            "version wrote it, or it was changed by hand). Use the LiverHealth version that created it, or a new "
            "database."
        ) from exc


def missing_tables(connection: Connection) -> list[str]:
    """Tables of the ORM that the database lacks (a schema said to be current can still miss one)."""
    from liverhealth.storage.models import Base

    present = set(inspect(connection).get_table_names())
    return sorted(set(Base.metadata.tables) - present)
