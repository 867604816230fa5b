"""The command lines the benches run, written once."""

from __future__ import annotations

import sys
from pathlib import Path


def segment_command(models_dir: Path, source: Path, model_id: str, out: Path | str) -> list[str]:
    """``liverhealth segment`` in a new process with this interpreter, as a user runs it."""
    return [
        sys.executable,
        "-m",
        "liverhealth.cli",
        "--models-dir",
        str(models_dir),
        "segment",
        str(source),
        "--model",
        model_id,
        "--out",
        str(out),
    ]
