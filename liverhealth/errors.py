"""One exception family whose messages a radiologist can act on.

The CLI prints ``str(error)`` on one line and exits with status 2; the GUI shows it in a
dialog. Anything that is not a ``LiverHealthError`` is a bug and is logged with a traceback.
"""

from __future__ import annotations


class LiverHealthError(Exception):
    """Base class: an expected failure with a user-readable message."""


class InputError(LiverHealthError):
    """The input path or its contents cannot be read as a CT or image."""


class OutputError(LiverHealthError):
    """An output file or folder cannot be written (nothing half-written is left behind)."""


class ModelError(LiverHealthError):
    """The model manifest or a model file is missing, altered or unsupported."""


class StorageError(LiverHealthError):
    """The results database cannot be reached or written."""


class NotFound(LiverHealthError):
    """What was asked for does not exist for this user (the web answers 404)."""


class Cancelled(LiverHealthError):
    """The user cancelled a long-running step; nothing was written."""


class PacsError(LiverHealthError):
    """The PACS cannot be reached, refuses us, or has no such study (nothing half-retrieved is kept)."""
