"""Results database: SQLAlchemy models, the repository API and Alembic migrations."""

from liverhealth.storage.repository import (
    ReportRecord,
    Repository,
    ResultRecord,
    ResultSummary,
    StoredReport,
    StoredResult,
    StoredStudy,
    content_hash,
)

__all__ = [
    "ReportRecord",
    "Repository",
    "ResultRecord",
    "ResultSummary",
    "StoredReport",
    "StoredResult",
    "StoredStudy",
    "content_hash",
]
