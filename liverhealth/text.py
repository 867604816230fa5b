"""Text for one line of a message: what a library's error or a note becomes before a user sees it."""

from __future__ import annotations


def one_line(text: object, limit: int | None = None) -> str:
    """``text`` on one line, runs of whitespace (line breaks from libraries: libpng, OpenCV, drivers,
    SimpleITK) collapsed to one space; cut to its first ``limit`` characters when given."""
    return " ".join(str(text).split())[:limit]
