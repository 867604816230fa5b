"""The layering the architecture doc draws holds: no import circle, no import up the layers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_no_import_circle_and_no_import_up_the_layers():
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "import_graph.py")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "circles (between units, then between modules): 0" in done.stdout
    assert "imports up the layers: 0" in done.stdout
