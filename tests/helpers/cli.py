"""Run the ``liverhealth`` command in a subprocess, as a user would."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(
    *args: str, env_extra: dict[str, str] | None = None, input_text: str | None = None
) -> subprocess.CompletedProcess:
    """``liverhealth ARGS`` in a fresh process; standard input is closed unless ``input_text`` is given."""
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "liverhealth.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        input=input_text,
        stdin=subprocess.DEVNULL if input_text is None else None,
        timeout=300,
    )
