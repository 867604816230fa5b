"""Start the window; optionally open, segment and report, then save a screenshot and exit."""

from __future__ import annotations

import sys
from pathlib import Path

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication

from liverhealth.gui.main_window import MainWindow
from liverhealth.workflow import Workstation

STEP_METHODS = {"segment": "segment", "report": "generate_report", "list": "read_database"}


def run(
    workstation: Workstation | None = None,
    open_path: str | None = None,
    segment: bool = False,
    report: bool = False,
    screenshot: Path | None = None,
    database: bool = False,
) -> int:
    """Run the workstation. With ``screenshot`` the requested steps run, the window (or, with
    ``database``, the Read Database dialog) is saved as an image and the program exits (status 2
    if a step failed); a segmented study is shown with its largest lesion picked (outlined, its
    RECIST caliper drawn)."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    window = MainWindow(workstation)
    window.show()
    steps = [name for name, wanted in (("segment", segment), ("report", report), ("list", database)) if wanted]
    outcome = {"status": 0}

    def finish() -> None:
        if screenshot is not None:
            if window.session.result is not None and window.session.result.measurements.lesions:
                window.select_lesion(window.session.result.measurements.lesions[0].lesion_id)
            app.processEvents()
            dialog = getattr(window, "database_dialog", None)
            (dialog if database and dialog is not None else window).grab().save(str(screenshot))
            if window.error_box is not None:
                window.error_box.close()
            app.quit()

    def next_step(done: str) -> None:
        if done.endswith("-failed"):
            print(f"liverhealth: error: {window.last_error}", file=sys.stderr)
            outcome["status"] = 2
            steps.clear()
        if steps:
            getattr(window, STEP_METHODS[steps.pop(0)])()
        else:
            QTimer.singleShot(300, finish)

    window.step_finished.connect(next_step)
    if open_path:
        QTimer.singleShot(0, lambda: window.open_path(open_path))
    elif steps:
        QTimer.singleShot(0, lambda: next_step("start"))
    elif screenshot is not None:
        QTimer.singleShot(300, finish)
    app.exec_()
    return outcome["status"]
