"""Prerequisites of a test (a server, a package, a tool): a clear failure in the full gate, where nothing
may be skipped (``scripts/test.sh`` sets LIVERHEALTH_FULL_GATE=1), a skip with its reason in the quick tier."""

from __future__ import annotations

import os

import pytest


def full_gate() -> bool:
    return os.environ.get("LIVERHEALTH_FULL_GATE") == "1"


def require(condition: bool, reason: str) -> None:
    """Fail (full gate) or skip (otherwise) with ``reason`` unless ``condition`` holds."""
    if condition:
        return
    if full_gate():
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)
