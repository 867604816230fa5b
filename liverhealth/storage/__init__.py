"""Results database: SQLAlchemy models, the repository API and Alembic migrations.

The records (plain dataclasses) import at once; ``Repository`` loads SQLAlchemy and Alembic only
when it is first asked for, so commands that never touch the database do not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from liverhealth.storage.records import (
    ResultRecord,
    ResultSummary,
    StoredReport,
    StoredResult,
    content_hash,
)

if TYPE_CHECKING:
    from liverhealth.storage.repository import Repository

__all__ = [
    "Repository",
    "ResultRecord",
    "ResultSummary",
    "StoredReport",
    "StoredResult",
    "content_hash",
]


def __getattr__(name: str) -> Any:
    if name == "Repository":
        from liverhealth.storage.repository import Repository

        return Repository
    raise AttributeError(f"module 'liverhealth.storage' has no attribute {name!r}")
