"""Run the Alembic migrations in ``storage/migrations`` on an open connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.util import CommandError
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from liverhealth.errors import StorageError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_to_head(connection: Connection) -> str:
    """Upgrade the schema to the newest revision; returns it.

    On MySQL/MariaDB a named server lock makes concurrent first-time saves (two workstations
    creating the tables at once) take turns: the second finds the schema in place.
    """
    mysql = connection.dialect.name in ("mysql", "mariadb")
    if mysql and connection.execute(text("SELECT GET_LOCK('liverhealth_schema', 60)")).scalar() != 1:
        raise TimeoutError("another workstation has been upgrading the schema for a minute")
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
    finally:
        if mysql:
            connection.execute(text("SELECT RELEASE_LOCK('liverhealth_schema')"))


def missing_tables(connection: Connection) -> list[str]:
    """Tables of the ORM that the database lacks (a schema said to be current can still miss one)."""
    from liverhealth.storage.models import Base

    present = set(inspect(connection).get_table_names())
    return sorted(set(Base.metadata.tables) - present)
