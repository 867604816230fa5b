"""The follow-up comparison window: baseline and registered follow-up side by side with one
slider and wheel for both (linked scrolling in registered space), the lesion changes (click to go
to a lesion), the response with its arithmetic, and saving comparison.json/png."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSlider,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from liverhealth.errors import LiverHealthError
from liverhealth.gui.view_model import ComparisonView
from liverhealth.gui.widgets import SliceCanvas, SliceNavigation


class ComparisonWindow(SliceNavigation, QWidget):
    """Shows a ``ComparisonView``; ``save`` writes the comparison's files into a folder."""

    def __init__(self, view: ComparisonView, save: Callable[[Path], dict[str, Path]]) -> None:
        super().__init__()
        self.setWindowTitle("LiverHealth - comparison with prior (draft for radiologist review)")
        self.view, self._save = view, save
        self.baseline_canvas, self.followup_canvas = SliceCanvas("baseline"), SliceCanvas("follow-up")
        for canvas in (self.baseline_canvas, self.followup_canvas):
            canvas.scrolled.connect(self.scroll)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, view.slice_count - 1)
        self.slider.valueChanged.connect(self._slider_moved)
        self.lesions = QListWidget()
        for text, z in view.rows:
            item = QListWidgetItem(text)
            item.setData(Qt.UserRole, z)
            self.lesions.addItem(item)
        self.lesions.itemClicked.connect(self._jump_to_item)
        self.summary = QTextEdit()
        self.summary.setReadOnly(True)
        self.summary.setPlainText(view.summary)
        self.save_button = QPushButton("Save comparison files…")
        self.save_button.clicked.connect(self.choose_folder)
        self.saved_label = QLabel()
        images = QHBoxLayout()
        for title, canvas in (("Baseline", self.baseline_canvas), ("Follow-up (registered)", self.followup_canvas)):
            column = QVBoxLayout()
            column.addWidget(QLabel(title))
            column.addWidget(canvas, 1)
            images.addLayout(column, 1)
        side = QVBoxLayout()
        side.addWidget(QLabel("Lesions (click to go to one)"))
        side.addWidget(self.lesions, 1)
        side.addWidget(self.save_button)
        side.addWidget(self.saved_label)
        images.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addLayout(images, 3)
        layout.addWidget(self.slider)
        layout.addWidget(self.summary, 1)
        self.resize(1200, 800)
        if view.rows:
            view.slice_index = view.rows[0][1]
        self.refresh()

    def refresh(self) -> None:
        left, right = self.view.images()
        self.baseline_canvas.show_image(left)
        self.followup_canvas.show_image(right)
        self.slider.blockSignals(True)
        self.slider.setValue(self.view.slice_index)
        self.slider.blockSignals(False)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save the comparison into")
        if folder:
            self.save_into(Path(folder))

    def save_into(self, folder: Path) -> dict[str, Path]:
        """Write the files; a failure is said under the button (nothing else is lost)."""
        try:
            written = self._save(folder)
        except LiverHealthError as exc:
            self.saved_label.setText(str(exc))
            return {}
        self.saved_label.setText(f"Saved {', '.join(sorted(written))} in {folder}.")
        return written
