"""Dialogs: the saved-results worklist, the prior-study chooser, the settings editor, the PACS query and
the report's sign-off."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QPixmap
from PyQt5.QtWidgets import (
    QAbstractItemView,
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
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
)

from liverhealth import config
from liverhealth.domain import WorklistPatient, WorklistResult, WorklistStudy
from liverhealth.errors import LiverHealthError
from liverhealth.storage import StoredResult

WORKLIST_COLUMNS = ("Result", "Model", "Saved", "State", "Liver (mL)", "Tumour (mL)", "Lesions")
NUMBER_COLUMNS = (4, 5, 6)
PATIENT, STUDY, RESULT = "patient", "study", "result"
KIND_ROLE = Qt.UserRole + 1  # an item's level; Qt.UserRole holds the result id Open reads
TEXT_COLUMN_MAX = 240  # px: a longer text (a model id, a reader, a description) is cut, whole in its tooltip


def study_when(study: WorklistStudy) -> str:
    """'2009-11-26 12:50', '2009-11-26 (shifted)' under a research pseudonym, or 'date not kept'."""
    if not study.date:
        return "date not kept"
    when = f"{study.date} {study.time[:2]}:{study.time[2:4]}" if len(study.time) >= 4 else study.date
    return f"{when} (shifted)" if study.dates_shifted else when


def patient_heading(patient: WorklistPatient) -> str:
    """'NAME (ID 123) · sex F, born 1960-01-01 · 2 studies'."""
    sex, born = patient.sex and f"sex {patient.sex}", patient.birth_date and f"born {patient.birth_date}"
    count = len(patient.studies)
    studies = f"{count} stud{'y' if count == 1 else 'ies'}"
    return " · ".join(filter(None, (patient.label, ", ".join(filter(None, (sex, born))), studies)))


def study_heading(study: WorklistStudy) -> str:
    """'2009-11-26 12:50 · CT ABDOMEN · accession 123 · CT series, 129 slices of 512×512'."""
    accession = study.accession and f"accession {study.accession}"
    return " · ".join(filter(None, (study_when(study), study.description, accession, study.source)))


def result_state(result: WorklistResult) -> str:
    """'signed by X', 'revision 2 by X' or 'model's result'."""
    if result.signed_by:
        return f"signed by {result.signed_by}"
    if result.revision:
        return f"revision {result.revision} by {result.author or 'a reader'}"
    return "model's result"


def _ml(value: float | None, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None else "n/a"


class DatabaseDialog(QDialog):
    """The saved results as a worklist: patients, their studies newest first, each study's results
    (the latest revision per model), with a preview of the one selected; open (a study: its newest
    result), delete a result (with confirmation), find a patient. Patient and study rows are one
    heading line across the tree; the columns are the results'.

    It calls back into the window for every database access, which runs in worker threads."""

    def __init__(
        self,
        parent: Any,
        patients: Sequence[WorklistPatient],
        load: Callable[[int], None],
        delete: Callable[[int], None],
        preview: Callable[[int, Callable[[StoredResult], None]], None],
        search: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Saved results")
        self.resize(1240, 560)  # fits a 1366 px wide screen
        self._load, self._delete, self._preview, self._search = load, delete, preview, search
        self.patient_filter = ""  # the patient search the tree shows
        self.tree = QTreeWidget()
        self.tree.setColumnCount(len(WORKLIST_COLUMNS))
        self.tree.setHeaderLabels(WORKLIST_COLUMNS)
        self.tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.tree.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.tree.setUniformRowHeights(True)
        self.tree.itemSelectionChanged.connect(self._selected)
        self.tree.itemDoubleClicked.connect(self._double_clicked)
        self.search_field = QLineEdit()
        self.search_field.setPlaceholderText("Patient name, ID or pseudonym")
        self.search_field.returnPressed.connect(self.search)
        find_button = QPushButton("Find")
        find_button.clicked.connect(self.search)
        self.count_label = QLabel()
        self.preview_label = QLabel("Select a result to preview it.")
        self.preview_label.setMinimumWidth(280)
        self.preview_label.setAlignment(Qt.AlignCenter)
        self.preview_label.setWordWrap(True)
        self.open_button, self.delete_button = QPushButton("Open"), QPushButton("Delete…")
        self.open_button.clicked.connect(self.open_selected)
        self.delete_button.clicked.connect(lambda _checked=False: self.delete_selected())
        top = QHBoxLayout()
        if search is not None:
            for widget in (QLabel("Patient"), self.search_field, find_button):
                top.addWidget(widget)
        top.addWidget(self.count_label, 1)
        buttons = QHBoxLayout()
        for widget in (self.open_button, self.delete_button):
            buttons.addWidget(widget)
        buttons.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.tree, 1)
        body.addWidget(self.preview_label)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(body)
        layout.addLayout(buttons)
        self.set_patients(patients)

    def set_patients(self, patients: Sequence[WorklistPatient]) -> None:
        """Fill the tree from a worklist (patients and studies expanded); the selection is cleared."""
        self.tree.clear()
        for patient in patients:
            row = self._item(self.tree, PATIENT, None, (patient_heading(patient),))
            for study in patient.studies:
                newest = study.result_for().result_id if study.results else None
                child = self._item(row, STUDY, newest, (study_heading(study),))
                for result in study.results:
                    texts = (
                        f"Result {result.result_id}",
                        result.model_id,
                        result.saved_at,
                        result_state(result),
                        _ml(result.liver_volume_ml, 1),
                        _ml(result.tumour_volume_ml, 2),
                        str(result.lesion_count),
                    )
                    self._item(child, RESULT, result.result_id, texts)
        self.tree.expandAll()
        for column in range(1, len(WORKLIST_COLUMNS)):
            self.tree.resizeColumnToContents(column)
            self.tree.setColumnWidth(column, min(self.tree.columnWidth(column) + 12, TEXT_COLUMN_MAX))
        ids = [f"Result {r.result_id}" for p in patients for s in p.studies for r in s.results] or ["Result"]
        widest = max(self.tree.fontMetrics().horizontalAdvance(text) for text in ids)
        self.tree.setColumnWidth(0, widest + 3 * self.tree.indentation() + 16)  # results sit two levels in
        studies = sum(len(p.studies) for p in patients)
        found = f" for '{self.patient_filter}'" if self.patient_filter else ""
        self.count_label.setText(
            f"{len(patients)} patient(s), {studies} stud(ies){found}; newest first."
            if patients
            else f"No saved results{found}."
        )
        self.preview_label.setText("Select a result to preview it.")
        self._enable_buttons()

    @staticmethod
    def _item(parent: Any, kind: str, result_id: int | None, texts: Sequence[str]) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [str(text) for text in texts])
        item.setData(0, Qt.UserRole, result_id)
        item.setData(0, KIND_ROLE, kind)
        if kind != RESULT:
            item.setFirstColumnSpanned(True)
        for column, text in enumerate(texts):
            item.setToolTip(column, str(text))
            if column in NUMBER_COLUMNS:
                item.setTextAlignment(column, Qt.AlignRight | Qt.AlignVCenter)
        return item

    def selected_item(self) -> QTreeWidgetItem | None:
        items = self.tree.selectedItems()
        return items[0] if items else None

    def selected_kind(self) -> str | None:
        """'patient', 'study' or 'result' (None when nothing is selected)."""
        item = self.selected_item()
        return item.data(0, KIND_ROLE) if item is not None else None

    def selected_id(self) -> int | None:
        """The result Open reads: the selected result, or the selected study's newest result."""
        item = self.selected_item()
        value = item.data(0, Qt.UserRole) if item is not None else None
        return int(value) if value is not None else None

    def _enable_buttons(self) -> None:
        self.open_button.setEnabled(self.selected_id() is not None)
        self.delete_button.setEnabled(self.selected_kind() == RESULT)

    def _selected(self) -> None:
        self._enable_buttons()
        result_id = self.selected_id()
        if result_id is None:
            self.preview_label.setText("Select a result to preview it.")
        else:
            self._preview(result_id, self.show_preview)

    def _double_clicked(self, item: QTreeWidgetItem, _column: int) -> None:
        if item.data(0, KIND_ROLE) != PATIENT:
            self.open_selected()

    def show_preview(self, stored: StoredResult) -> None:
        if stored.overlay_png:
            pixmap = QPixmap()
            pixmap.loadFromData(stored.overlay_png)
            self.preview_label.setPixmap(pixmap.scaledToWidth(280, Qt.SmoothTransformation))
        else:
            self.preview_label.setText("No preview image.")

    def search(self) -> None:
        """List the patients matching the search line (all of them when it is empty)."""
        if self._search is not None:
            self.patient_filter = self.search_field.text().strip()
            self._search(self.patient_filter)

    def open_selected(self) -> None:
        result_id = self.selected_id()
        if result_id is not None:
            self._load(result_id)
            self.accept()

    def delete_selected(self, confirm: bool = True) -> None:
        """Delete the selected result (not a whole study or patient) after asking."""
        result_id = self.selected_id()
        if result_id is None or self.selected_kind() != RESULT:
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


class PriorDialog(QDialog):
    """Choose the prior to read the current study against: this patient's earlier saved studies,
    newest first (the latest chosen), each with its description and the result the comparison
    would read (``model_id``'s result of that study when it has one, else its newest)."""

    COLUMNS = ("Study date", "Description", "Result read", "Source")

    def __init__(self, parent: Any, priors: Sequence[WorklistStudy], model_id: str | None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Compare with a prior study")
        self.resize(900, 320)
        self.priors = tuple(priors)
        self.list = QTreeWidget()
        self.list.setColumnCount(len(self.COLUMNS))
        self.list.setHeaderLabels(self.COLUMNS)
        self.list.setRootIsDecorated(False)
        self.list.setSelectionMode(QAbstractItemView.SingleSelection)
        for index, study in enumerate(self.priors):
            result = study.result_for(model_id)
            read = f"result {result.result_id} ({result.model_id}, {result_state(result)})"
            texts = (study_when(study), study.description, read, study.source)
            item = QTreeWidgetItem(self.list, list(texts))
            item.setData(0, Qt.UserRole, index)
            for column, text in enumerate(texts):
                item.setToolTip(column, text)
        for column in range(len(self.COLUMNS) - 1):
            self.list.resizeColumnToContents(column)
            if column == 1:  # the description
                self.list.setColumnWidth(column, min(self.list.columnWidth(column), TEXT_COLUMN_MAX))
        if self.priors:
            self.list.setCurrentItem(self.list.topLevelItem(0))
        self.list.itemDoubleClicked.connect(lambda _item, _column: self.accept())
        buttons = QDialogButtonBox(QDialogButtonBox.Cancel)
        self.compare_button = buttons.addButton("Compare", QDialogButtonBox.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Earlier saved studies of this patient, newest first:"))
        layout.addWidget(self.list)
        layout.addWidget(buttons)

    def selected_study(self) -> WorklistStudy | None:
        item = self.list.currentItem()
        return self.priors[int(item.data(0, Qt.UserRole))] if item is not None else None


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
