"""How bench outputs name paths: relative to the repository, never the machine's absolute path."""

from __future__ import annotations

import os
from pathlib import Path

from liverhealth import config


def shown(path: Path) -> str:
    """A path as the output may record it: relative to the repository (../shared/data for the data)."""
    try:
        return os.path.relpath(path.resolve(), config.REPO_ROOT)
    except ValueError:
        return path.name
