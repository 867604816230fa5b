"""Longest event-loop stall of the window while it loads and segments 3Dircadb1.1.

Usage: QT_QPA_PLATFORM=offscreen python -m bench.bench_gui_responsiveness [--model ID]

A 10 ms QTimer records when the event loop gets to run; the longest gap between ticks while
the worker thread segments is what a user would feel as a freeze (goal: under 100 ms).
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PyQt5.QtCore import QEventLoop, QTimer
from PyQt5.QtWidgets import QApplication

from liverhealth import config
from liverhealth.gui.main_window import MainWindow


def run_step(app: QApplication, window: MainWindow, start) -> tuple[str, list[float]]:
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop = QEventLoop()
    outcome: list[str] = []
    window.step_finished.connect(lambda step: (outcome.append(step), loop.quit()))
    timer.start(10)
    start()
    loop.exec_()
    timer.stop()
    window.step_finished.disconnect()
    return outcome[0], ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    args = parser.parse_args()
    app = QApplication.instance() or QApplication([])
    window = MainWindow()
    if args.model:
        window.model_id = args.model
    window.show()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; Qt platform {os.environ['QT_QPA_PLATFORM']}")
    case = str(config.data_dir() / "3Dircadb1.1" / "PATIENT_DICOM.zip")
    for name, start in (("load 3Dircadb1.1", lambda: window.open_path(case)), ("segment", window.segment)):
        step, ticks = run_step(app, window, start)
        gaps = [b - a for a, b in itertools.pairwise(ticks)]
        print(
            f"{name:<18} ({step}, model {window.model_id}): {ticks[-1] - ticks[0]:.1f} s, "
            f"longest event-loop gap {1000 * max(gaps):.0f} ms over {len(ticks)} ticks"
        )


if __name__ == "__main__":
    main()
