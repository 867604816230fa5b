"""The first command on a machine without a display: one line and the two ways out, not Qt's abort."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("PyQt5")


def _headless_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    return env


def test_gui_without_a_display_says_so_in_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "liverhealth.cli", "gui"],
        capture_output=True,
        text=True,
        env=_headless_env(),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "xvfb-run liverhealth gui" in lines[0] and "liverhealth web" in lines[0]
    assert "Traceback" not in done.stderr and "qt.qpa" not in done.stderr


def test_a_screenshot_needs_no_display(tmp_path):
    shot = tmp_path / "window.png"
    done = subprocess.run(
        [sys.executable, "-m", "liverhealth.cli", "gui", "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        env=_headless_env(),
        stdin=subprocess.DEVNULL,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
