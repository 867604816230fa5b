"""Dialogs: the saved-results browser, the settings editor, the PACS query and the report's sign-off."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QPixmap
from PyQt5.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from liverhealth import config
from liverhealth.errors import LiverHealthError
from liverhealth.storage import ResultSummary, StoredResult

COLUMNS = ("ID", "Saved", "Model", "Liver (mL)", "Tumour (mL)", "Lesions", "Reports", "Study")


class NumberItem(QTableWidgetItem):
    """A table cell that sorts by its number, not its text."""

    def __init__(self, value: float | None, text: str) -> None:
        super().__init__(text)
        self.value = value if value is not None else float("-inf")

    def __lt__(self, other: QTableWidgetItem) -> bool:
        return self.value < getattr(other, "value", float("-inf"))


class DatabaseDialog(QDialog):
    """A sortable table of saved results with a preview; open and delete (with confirmation).

    It calls back into the window for every database access, which runs in worker threads.
    """

    def __init__(
        self,
        parent: Any,
        rows: list[ResultSummary],
        load: Callable[[int], None],
        delete: Callable[[int], None],
        preview: Callable[[int, Callable[[StoredResult], None]], None],
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Saved results")
        self.resize(980, 520)
        self._load, self._delete, self._preview = load, delete, preview
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.table.setSortingEnabled(True)
        self.table.itemSelectionChanged.connect(self._selected)
        self.preview_label = QLabel("Select a result to preview it.")
        self.preview_label.setMinimumWidth(300)
        self.preview_label.setAlignment(Qt.AlignCenter)
        open_button, delete_button = QPushButton("Open"), QPushButton("Delete…")
        open_button.clicked.connect(self.open_selected)
        delete_button.clicked.connect(self.delete_selected)
        buttons = QHBoxLayout()
        for widget in (open_button, delete_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.table, 3)
        body.addWidget(self.preview_label, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addLayout(buttons)
        self.set_rows(rows)

    def set_rows(self, rows: list[ResultSummary]) -> None:
        self.table.setSortingEnabled(False)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            cells = [
                NumberItem(row.result_id, str(row.result_id)),
                QTableWidgetItem(f"{row.created_at:%Y-%m-%d %H:%M}"),
                QTableWidgetItem(row.model_id),
                NumberItem(row.liver_volume_ml, f"{row.liver_volume_ml:.1f}" if row.liver_volume_ml else "n/a"),
                NumberItem(
                    row.tumour_volume_ml, f"{row.tumour_volume_ml:.2f}" if row.tumour_volume_ml is not None else "n/a"
                ),
                NumberItem(row.lesion_count, str(row.lesion_count)),
                NumberItem(row.report_count, str(row.report_count)),
                QTableWidgetItem(row.description),
            ]
            for c, cell in enumerate(cells):
                self.table.setItem(r, c, cell)
        self.table.setSortingEnabled(True)
        self.table.resizeColumnsToContents()

    def selected_id(self) -> int | None:
        rows = self.table.selectionModel().selectedRows()
        return int(self.table.item(rows[0].row(), 0).text()) if rows else None

    def _selected(self) -> None:
        result_id = self.selected_id()
        if result_id is not None:
            self._preview(result_id, self.show_preview)

    def show_preview(self, stored: StoredResult) -> None:
        if stored.overlay_png:
            pixmap = QPixmap()
            pixmap.loadFromData(stored.overlay_png)
            self.preview_label.setPixmap(pixmap.scaledToWidth(300, Qt.SmoothTransformation))
        else:
            self.preview_label.setText("No preview image.")

    def open_selected(self) -> None:
        result_id = self.selected_id()
        if result_id is not None:
            self._load(result_id)
            self.accept()

    def delete_selected(self, confirm: bool = True) -> None:
        result_id = self.selected_id()
        if result_id is None:
            return
        if (
            confirm
            and QMessageBox.question(
                self, "Delete result", f"Delete saved result {result_id} and its reports? This cannot be undone."
            )
            != QMessageBox.Yes
        ):
            return
        self._delete(result_id)


SETTINGS = (
    ("db_url", "Database URL", "LIVERHEALTH_DB_URL"),
    ("llm_base_url", "LLM endpoint", "LIVERHEALTH_LLM_BASE_URL"),
    ("llm_model", "LLM model", "LIVERHEALTH_LLM_MODEL"),
    ("llm_api_key", "LLM API key", "LIVERHEALTH_LLM_API_KEY"),
)


class SettingsDialog(QDialog):
    """Edit the config file (TOML in the user config folder; the API key never goes to the database).

    Environment variables still win over the file; the dialog says so next to each field."""

    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self.setWindowTitle("Settings")
        current = config.read_config_file()
        form = QFormLayout(self)
        self.fields: dict[str, QLineEdit] = {}
        for key, label, env in SETTINGS:
            field = QLineEdit(str(current.get(key, "")))
            if key == "llm_api_key":
                field.setEchoMode(QLineEdit.Password)
            if os.environ.get(env):
                field.setToolTip(f"{env} is set and overrides this value.")
            self.fields[key] = field
            form.addRow(label, field)
        form.addRow(QLabel(f"Saved in {config.config_path()} (readable by your user only)."))
        buttons = QDialogButtonBox(QDialogButtonBox.Save | QDialogButtonBox.Cancel)
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def save(self) -> None:
        """Write the four fields (an empty field removes its key); every other setting stays."""
        try:
            config.update_config_file({key: field.text().strip() for key, field in self.fields.items()})
        except LiverHealthError as exc:
            QMessageBox.warning(self, "Settings", str(exc))
            return
        self.accept()


class PacsDialog(QDialog):
    """Query the PACS (patient ID, accession, date, modality), list the studies, retrieve one.

    The window runs the query and the retrieve in worker threads (with progress and Cancel)."""

    FIELDS = (("patient_id", "Patient ID"), ("accession", "Accession"), ("study_date", "Date (YYYYMMDD[-YYYYMMDD])"),
              ("modality", "Modality"))  # fmt: skip

    def __init__(self, parent: Any, find: Callable[[dict[str, str]], None], retrieve: Callable[[str], None]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Import from PACS")
        self.resize(860, 420)
        self._find, self._retrieve = find, retrieve
        form = QFormLayout()
        self.fields: dict[str, QLineEdit] = {}
        for key, label in self.FIELDS:
            self.fields[key] = QLineEdit("CT" if key == "modality" else "")
            form.addRow(label, self.fields[key])
        self.table = QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(("Date", "Patient ID", "Accession", "Modalities", "Study UID"))
        self.table.setSelectionBehavior(QTableWidget.SelectRows)
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        find_button, open_button = QPushButton("Find"), QPushButton("Retrieve and open")
        find_button.clicked.connect(self.find)
        open_button.clicked.connect(self.retrieve_selected)
        buttons = QHBoxLayout()
        for widget in (find_button, open_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.table)

    def find(self) -> None:
        self._find({key: field.text().strip() for key, field in self.fields.items()})

    def set_hits(self, hits: list) -> None:
        self.table.setRowCount(len(hits))
        for r, hit in enumerate(hits):
            for c, value in enumerate((hit.study_date, hit.patient_id, hit.accession, hit.modalities, hit.study_uid)):
                self.table.setItem(r, c, QTableWidgetItem(value))
        self.table.resizeColumnsToContents()

    def retrieve_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            self._retrieve(self.table.item(rows[0].row(), 4).text())
            self.accept()


class SignDialog(QDialog):
    """Review the report and sign it: the measured findings (read-only), the reader's impression and
    the draft text (both editable, plain text). On Sign the window signs through the workflow
    session, which refuses a report already signed; Cancel changes nothing."""

    def __init__(self, parent: Any, reader: str, state: str, findings: str, impression: str, draft: str) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign report")
        self.resize(760, 680)
        self._draft = draft
        self.findings = QPlainTextEdit(findings)
        self.findings.setReadOnly(True)
        self.impression_edit = QPlainTextEdit(impression)
        self.impression_edit.setPlaceholderText("Your impression, in your own words.")
        self.draft_edit = QPlainTextEdit(draft)
        self.draft_edit.setPlaceholderText("No draft text: the report is signed on the findings and your impression.")
        buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        self.sign_button = buttons.addButton("Sign", QDialogButtonBox.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.note = QLabel(
            f"{state}\nSigning as {reader}: the signed report is locked; a later edit makes a new revision."
        )
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        for title, widget, stretch in (
            ("Measured findings", self.findings, 2),
            ("Impression", self.impression_edit, 2),
            ("Draft text", self.draft_edit, 3),
        ):
            layout.addWidget(QLabel(title))
            layout.addWidget(widget, stretch)
        layout.addWidget(buttons)

    def impression(self) -> str:
        return self.impression_edit.toPlainText()

    def draft(self) -> str | None:
        """The draft text as edited, or None when the reader left it as it was."""
        text = self.draft_edit.toPlainText()
        return None if text == self._draft else text
