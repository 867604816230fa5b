"""Run the Alembic migrations in ``storage/migrations`` on an open connection."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def upgrade_to_head(connection: Connection) -> str:
    """Upgrade the schema to the newest revision; returns it."""
    command.upgrade(alembic_config(connection), "head")
    return MigrationContext.configure(connection).get_current_revision() or ""
