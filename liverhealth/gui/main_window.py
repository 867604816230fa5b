"""The workstation window: the axial view (segmentation or processed view, edited in edit mode)
large, coronal and sagittal beside it (one crosshair: a click in one plane moves the others), the
lesion list (the picked lesion outlined, its RECIST caliper drawn), findings and the streamed draft
below; the original axial slice beside on request; menus for each step, and the reader's review
(edit mode, sign-off: ``review_controls.py``). Every long step runs in a worker thread; errors are
shown in a dialog and the window stays usable."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QAction,
    QActionGroup,
    QComboBox,
    QFileDialog,
    QHeaderView,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSlider,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from liverhealth import config
from liverhealth.domain import Actor, WorklistStudy
from liverhealth.errors import LiverHealthError
from liverhealth.gui.compare_window import ComparisonWindow
from liverhealth.gui.dialogs import DatabaseDialog, PacsDialog, PriorDialog, SettingsDialog
from liverhealth.gui.review_controls import ReviewControls
from liverhealth.gui.view_model import LESION_COLUMNS, PROCESSING, ComparisonView, ViewModel
from liverhealth.gui.widgets import SliceCanvas, SliceNavigation, Worker
from liverhealth.imaging.display import WINDOW_PRESETS
from liverhealth.imaging.writers import write_bytes_atomic
from liverhealth.inference import Manifest
from liverhealth.presentation import DISCLAIMER
from liverhealth.workflow import Session, Workstation

TITLE = "LiverHealth - liver CT workstation (not a medical device)"
CONFIDENCE_COLUMN = LESION_COLUMNS.index("Confidence")


class LesionTable(QTableWidget):
    """The lesion list: one row per lesion, columns sized to their content; every cell holds the
    lesion's slice (Qt.UserRole) and number (Qt.UserRole + 1)."""

    def __init__(self) -> None:
        super().__init__(0, len(LESION_COLUMNS))
        self.setHorizontalHeaderLabels(LESION_COLUMNS)
        self.horizontalHeaderItem(CONFIDENCE_COLUMN).setToolTip(
            "The model's confidence in the lesion and its rim; 'check first' where it is below the threshold "
            "calibrated on held-out patients (never shown for a model without that calibration)"
        )
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setWordWrap(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)

    def count(self) -> int:
        return self.rowCount()

    def item(self, row: int, column: int = 0) -> QTableWidgetItem | None:
        """The cell at (row, column); the lesion's number cell by default."""
        return super().item(row, column)

    def content_width(self) -> int:
        """The width that shows every column whole (with the frame and a vertical scroll bar)."""
        header = self.horizontalHeader()
        columns = sum(max(self.sizeHintForColumn(i), header.sectionSizeHint(i)) for i in range(self.columnCount()))
        return columns + 2 * self.frameWidth() + self.verticalScrollBar().sizeHint().width() + 4


class MainWindow(SliceNavigation, ReviewControls, QMainWindow):
    """The LiverHealth main window."""

    # "load", "segment", "report", "save", "compare", "edit", "undo", "redo", "sign" (tests, --screenshot)
    step_finished = pyqtSignal(str)

    def __init__(self, workstation: Workstation | None = None) -> None:
        super().__init__()
        self.setWindowTitle(TITLE)
        self.workstation = workstation or Workstation(actor=Actor.local("window"))
        self.session: Session = self.workstation.session()
        self.view = ViewModel()
        self.manifest: Manifest | None = None
        self.model_id: str | None = None
        self.worker: Worker | None = None
        self.last_error = ""
        self.error_box: QMessageBox | None = None
        self._build_views()
        self._build_menus()
        self.setAcceptDrops(True)
        self.resize(1280, 860)
        self._load_models()
        self.refresh()

    # layout -------------------------------------------------------------------------------
    def _build_views(self) -> None:
        self.axial = SliceCanvas("axial")
        self.right = self.axial  # the segmentation canvas, edited in edit mode
        self.coronal = SliceCanvas("coronal", minimum=160)
        self.sagittal = SliceCanvas("sagittal", minimum=160)
        self.left = SliceCanvas("original")  # the original axial slice, shown beside on request
        self.left.hide()
        self.planes = {"axial": self.axial, "coronal": self.coronal, "sagittal": self.sagittal}
        self._pictures: dict[str, tuple] = {}  # each canvas's picture_key, as last shown
        for plane, canvas in (*self.planes.items(), ("axial", self.left)):
            canvas.scrolled.connect(lambda steps, plane=plane: self.scroll_plane(plane, steps))
            canvas.picked.connect(lambda row, column, plane=plane: self.pick(plane, row, column))
            canvas.window_dragged.connect(self._drag_window)
        for canvas in (self.left, self.axial):
            canvas.hovered.connect(self._hover)
        self.slider = QSlider(Qt.Horizontal)
        self.slider.valueChanged.connect(self._slider_moved)
        self.lesions = LesionTable()
        self.lesions.itemActivated.connect(self._jump_to_item)
        self.lesions.itemClicked.connect(self._jump_to_item)
        self.legend = QLabel(
            "<span style='color:#28c83c'>■</span> liver  <span style='color:#e62828'>■</span> tumour  "
            "<span style='color:#00e6e6'>■</span> picked lesion  <span style='color:#ffe600'>■</span> RECIST axes"
        )
        self.legend.setWordWrap(True)
        self.opacity = QSlider(Qt.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(40)
        self.opacity.valueChanged.connect(self._opacity_changed)
        self.lesion_order = QComboBox()
        self.lesion_order.addItem("Largest first", "size")
        self.lesion_order.addItem("Check first (least confident)", "check")
        self.lesion_order.currentIndexChanged.connect(self._order_lesions)
        side = QVBoxLayout()
        side.setContentsMargins(0, 0, 0, 0)
        lesions_title = QLabel("Lesions (click: outlined, RECIST axes on the slice measured; right-click: edit)")
        lesions_title.setWordWrap(True)
        side.addWidget(lesions_title)
        side.addWidget(self.lesion_order)
        side.addWidget(self.lesions, 1)
        side.addWidget(self.legend)
        side.addWidget(QLabel("Overlay opacity"))
        side.addWidget(self.opacity)
        self.side_panel = QWidget()
        self.side_panel.setLayout(side)
        self._fit_side_panel()
        others = QSplitter(Qt.Vertical)
        others.addWidget(self.coronal)
        others.addWidget(self.sagittal)
        self.canvases = QSplitter(Qt.Horizontal)
        for widget in (self.left, self.axial, others, self.side_panel):
            self.canvases.addWidget(widget)
        self.canvases.setStretchFactor(1, 3)
        self.canvases.setStretchFactor(2, 2)
        self.canvases.setStretchFactor(3, 0)
        self.text = QTextEdit()
        self.text.setReadOnly(True)
        self.text.setPlaceholderText("Findings and the draft report appear here.")
        top = QWidget()
        top_layout = QVBoxLayout(top)
        self.review_menu = QMenu("Review", self)
        top_layout.addWidget(self._build_review(self.review_menu))
        top_layout.addWidget(self.canvases, 1)
        top_layout.addWidget(self.slider)
        vertical = QSplitter(Qt.Vertical)
        vertical.addWidget(top)
        vertical.addWidget(self.text)
        vertical.setSizes([640, 160])
        self.setCentralWidget(vertical)
        self.status = QLabel()
        self.cursor_label = QLabel()
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.hide()
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel)
        bar = self.statusBar()
        bar.addWidget(self.status, 1)
        bar.addWidget(self.cursor_label)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)

    def _action(self, menu: Any, text: str, slot: Callable[[], Any], shortcut: str | None = None) -> QAction:
        action = QAction(text, self)
        action.triggered.connect(lambda _checked=False: slot())
        if shortcut:
            action.setShortcut(shortcut)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        imports = bar.addMenu("Import Images")
        self._action(imports, "Open image or volume file…", self.choose_file, "Ctrl+O")
        self._action(imports, "Open DICOM folder…", self.choose_folder, "Ctrl+Shift+O")
        self._action(imports, "From PACS…", self.import_from_pacs)
        self.recent_menu = imports.addMenu("Recent files")
        processing = bar.addMenu("Image Processing")
        windows = processing.addMenu("Window")
        for key, window in WINDOW_PRESETS.items():
            self._action(
                windows,
                f"{window.name} ({window.width:g}/{window.center:g})",
                lambda key=key: self.set_window_preset(key),
            )
        view = bar.addMenu("View")
        self.crosshair_action = self._action(view, "Crosshair", self._toggle_crosshair, "Ctrl+H")
        self.crosshair_action.setCheckable(True)
        self.crosshair_action.setChecked(True)
        self.original_action = self._action(view, "Original slice beside the axial view", self._toggle_original)
        self.original_action.setCheckable(True)
        self._action(view, "Fit the views", self._fit_views, "Ctrl+0")
        for key, (text, _) in PROCESSING.items():
            self._action(processing, text, lambda key=key: self.show_processing(key))
        self._action(processing, "Show segmentation overlay", lambda: self.show_processing("segmentation"))
        self.uncertainty_action = self._action(processing, "Show model uncertainty", self._toggle_uncertainty, "Ctrl+U")
        self.uncertainty_action.setCheckable(True)
        segmentation = bar.addMenu("Image Segmentation")
        self.model_menu = segmentation.addMenu("Model")
        self.model_menu.setToolTipsVisible(True)
        self.segment_action = self._action(segmentation, "Segment", self.segment, "Ctrl+R")
        self.report_action = self._action(segmentation, "Generate Diagnostic Report", self.generate_report)
        self.compare_file_action = self._action(segmentation, "Compare with prior file…", self.choose_prior_file)
        self.compare_saved_action = self._action(segmentation, "Compare with a prior study…", self.choose_prior_result)
        bar.addMenu(self.review_menu)
        database = bar.addMenu("Database Operation")
        self.save_action = self._action(database, "Save to Database…", self.save_to_database, "Ctrl+S")
        self._action(database, "Read Database…", self.read_database)
        report = bar.addMenu("Report")
        self.pdf_action = self._action(report, "Export PDF…", self.export_pdf)
        self.dicom_action = self._action(report, "Export DICOM SEG and SR…", self.export_dicom)
        self.send_action = self._action(report, "Send results to PACS", self.send_to_pacs)
        settings = bar.addMenu("Settings")
        self._action(settings, "Database and LLM settings…", lambda: SettingsDialog(self).exec_())
        help_menu = bar.addMenu("Help")
        self._action(help_menu, "Model card", self.show_model_card)
        self._action(help_menu, "Disclaimer", lambda: self._inform("Disclaimer", DISCLAIMER))
        self._action(
            help_menu,
            "About",
            lambda: self._inform(
                "About LiverHealth",
                "LiverHealth: liver and liver-tumour CT workstation. Open source; not a medical "
                "device. Models and their validation: models/MODEL_CARD.md.",
            ),
        )

    def _load_models(self) -> None:
        self.model_menu.clear()
        try:
            self.manifest = self.workstation.manifest
        except LiverHealthError as exc:
            self.manifest = None
            self.model_menu.addAction(f"(no models: {exc})").setEnabled(False)
            return
        group = QActionGroup(self)
        for spec in self.manifest.models:
            metrics = spec.metrics
            dice = (
                f" - liver Dice {metrics['liver_dice']:.3f}, tumour Dice {metrics['tumour_dice']:.3f}"
                if isinstance(metrics.get("liver_dice"), float) and isinstance(metrics.get("tumour_dice"), float)
                else ""
            )
            caution = self.manifest.caution(spec.model_id)
            action = QAction(f"{spec.name}{dice}{' - not recommended' if caution else ''}", self, checkable=True)
            if caution:
                action.setToolTip(caution)
                action.setStatusTip(caution)
            action.setChecked(spec.model_id == self.manifest.default)
            action.triggered.connect(lambda _checked=False, model_id=spec.model_id: self._choose_model(model_id))
            group.addAction(action)
            self.model_menu.addAction(action)
        self.model_id = self.manifest.default or None

    def _choose_model(self, model_id: str) -> None:
        self.model_id = model_id

    # state -> screen ----------------------------------------------------------------------
    def refresh(self) -> None:
        logic = self.view
        self._show_planes()
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(logic.slice_count - 1, 0))
        self.slider.setValue(logic.slice_index)
        self.slider.setEnabled(logic.slice_count > 1)
        self.slider.blockSignals(False)
        where = f" · {logic.slice_label()}" if logic.volume is not None else ""
        self.status.setText(f"{logic.status_text()}{where} · window {logic.window.width:g}/{logic.window.center:g}")
        busy = self.worker is not None
        has_volume, has_result = logic.volume is not None, logic.result is not None
        self.segment_action.setEnabled(has_volume and not busy and self.manifest is not None)
        self.report_action.setEnabled(has_result and not busy)
        self.compare_file_action.setEnabled(has_result and not busy)
        self.compare_saved_action.setEnabled(has_result and not busy)
        self.save_action.setEnabled(has_result and not busy)
        self.uncertainty_action.setEnabled(logic.has_confidence)
        self.pdf_action.setEnabled(self.session.report is not None and not busy)
        self.dicom_action.setEnabled(has_result and not busy and logic.volume.dicom is not None)
        self.send_action.setEnabled(has_result and not busy and logic.volume.dicom is not None)
        self._refresh_review()
        note = self.revision_note()
        self.setWindowTitle(f"{TITLE} - {note}" if self.session.edited else TITLE)
        if note:
            self.status.setText(f"{self.status.text()} · {note}")

    def _show_planes(self) -> None:
        """Each plane's picture at the crosshair, with its geometry, the crosshair and, on the axial
        view, the picked lesion's outline and caliper on the slice it was measured on."""
        logic = self.view
        if logic.volume is None:
            self._pictures.clear()
            for canvas in (*self.planes.values(), self.left):
                canvas.set_geometry(None)
                canvas.show_image(None)
                canvas.set_crosshair(None)
                canvas.set_marks(None)
            return
        shown = [(plane, canvas, logic.plane_image) for plane, canvas in self.planes.items()]
        if self.left.isVisible():
            shown.append(("axial", self.left, lambda _plane: logic.left_image()))
        for plane, canvas, picture in shown:
            caption = logic.plane_caption(plane) if canvas is not self.left else "Original"
            canvas.set_geometry(logic.geometry(plane), caption)
            key = (logic.picture_key(plane), logic.volume, logic.result)  # the objects kept: their ids stay theirs
            last = self._pictures.get(canvas.objectName())
            if last is None or last[0] != key[0]:  # scrolling one plane leaves the others' pictures as they are
                canvas.show_image(picture(plane))
                self._pictures[canvas.objectName()] = key
            canvas.set_crosshair(logic.crosshair(plane))
        caliper = logic.shown_caliper()
        self.axial.set_marks(caliper)
        self.left.set_marks(caliper)
        for canvas in (self.coronal, self.sagittal):
            canvas.setVisible(logic.has_planes)

    def scroll_plane(self, plane: str, steps: int) -> None:
        """The wheel on a plane: its next or previous picture."""
        self.view.scroll_plane(plane, steps)
        self.refresh()

    def pick(self, plane: str, row: int, column: int) -> None:
        """A click on a plane: the crosshair goes there and the other two planes follow."""
        self.view.pick(plane, row, column)
        self.refresh()

    def select_lesion(self, lesion_id: int) -> None:
        """Outline a lesion and show its caliper on the slice its diameters were measured on."""
        if self.session.result is None:
            return
        self.view.select_lesion(lesion_id)
        for row in range(self.lesions.rowCount()):
            if int(self.lesions.item(row).data(Qt.UserRole + 1)) == lesion_id:
                self.lesions.selectRow(row)
        self.refresh()

    def _jump_to_item(self, item: Any) -> None:
        self.select_lesion(int(item.data(Qt.UserRole + 1)))

    def _toggle_crosshair(self) -> None:
        self.view.show_crosshair = self.crosshair_action.isChecked()
        self.refresh()

    def _toggle_original(self) -> None:
        self.left.setVisible(self.original_action.isChecked())
        self.left.reset_view()
        self.refresh()

    def _fit_views(self) -> None:
        for canvas in (*self.planes.values(), self.left):
            canvas.reset_view()
        self.refresh()

    def _drag_window(self, d_center: float, d_width: float) -> None:
        self.view.adjust_window(d_center, d_width)
        self.refresh()

    def _hover(self, row: int, column: int) -> None:
        self.cursor_label.setText(self.view.value_at(row, column))

    def _opacity_changed(self, value: int) -> None:
        self.view.opacity = value / 100.0
        self.refresh()

    def set_window_preset(self, key: str) -> None:
        self.view.window = WINDOW_PRESETS[key]
        self.refresh()

    def show_processing(self, key: str) -> None:
        self.view.right_view = key
        self.refresh()

    # long steps -----------------------------------------------------------------------------
    def _run(
        self,
        step: str,
        job: Callable[..., Any],
        done: Callable[[Any], None],
        failed: Callable[[str], None] | None = None,
        cancellable: bool = True,
    ) -> None:
        """Run ``job(progress, cancelled, text)`` in the worker, then ``done(value)`` or ``failed(message)``
        (default: the error dialog) here; one step at a time."""
        if self.worker is not None:
            return
        self.worker = Worker(job)
        self.worker.progressed.connect(self._progress)
        self.worker.text_arrived.connect(self._append_text)
        self.worker.succeeded.connect(lambda value: self._finish(step, done, value))
        self.worker.failed.connect(lambda message: self._finish(step, None, message, failed))
        self.progress.setRange(0, 0)
        self.progress.show()
        self.cancel_button.setVisible(cancellable)
        self.worker.start()
        self.refresh()

    def _finish(
        self,
        step: str,
        done: Callable[[Any], None] | None,
        value: Any,
        failed: Callable[[str], None] | None = None,
    ) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.thread.wait()
        self.progress.hide()
        self.cancel_button.hide()
        if done is None:
            (failed or self.show_error)(str(value))
        else:
            done(value)
        self.refresh()
        self.step_finished.emit(step if done is not None else f"{step}-failed")

    def _progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def _append_text(self, piece: str) -> None:
        self.text.moveCursor(self.text.textCursor().End)
        self.text.insertPlainText(piece)

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def show_error(self, message: str) -> None:
        """A dialog with the message; the window stays usable (non-blocking)."""
        self.last_error = message
        self.error_box = QMessageBox(QMessageBox.Warning, "LiverHealth", message, QMessageBox.Ok, self)
        self.error_box.setModal(False)
        self.error_box.show()

    def _inform(self, title: str, message: str) -> None:
        box = QMessageBox(QMessageBox.Information, title, message, QMessageBox.Ok, self)
        box.setModal(False)
        box.show()

    def show_model_card(self) -> None:
        """The model card (data, protocol, measured metrics, limits) in a dialog."""
        card = (self.manifest.path.parent if self.manifest else config.models_dir()) / "MODEL_CARD.md"
        try:
            text = card.read_text(encoding="utf-8")
        except OSError:
            text = f"No model card at {card}."
        self.model_card = QTextEdit()
        self.model_card.setWindowTitle("Model card")
        self.model_card.setReadOnly(True)
        self.model_card.setMarkdown(text)
        self.model_card.resize(820, 640)
        self.model_card.show()

    # follow-up comparison -----------------------------------------------------------------------
    def choose_prior_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "The prior (baseline) CT")
        if path:
            self.compare_with(path)

    def choose_prior_result(self) -> None:
        """This patient's earlier saved studies (read in a worker) in a chooser, the latest chosen;
        on Compare, the study is read against the chosen one. A line says so when there is none."""
        self.prior_dialog: PriorDialog | None = None
        session = self.session

        def chosen(priors: tuple[WorklistStudy, ...]) -> None:
            if not priors:
                self._inform(
                    "Compare with a prior study",
                    "No earlier study of this patient is saved: save the prior study first, or compare with a CT file.",
                )
                return
            model_id = session.result.model.model_id if session.result is not None else None
            self.prior_dialog = dialog = PriorDialog(self, priors, model_id)

            def compare() -> None:
                study = dialog.selected_study()
                if self.session is not session:  # another study was opened meanwhile: these are not its priors
                    self.show_error("Another study was opened since the priors were listed: choose the prior again.")
                elif study is not None:
                    self.compare_with(study)

            dialog.accepted.connect(compare)
            dialog.setModal(False)
            dialog.show()

        self._run("priors", lambda progress, cancelled, text: session.priors(), chosen)

    def compare_with(self, prior: str | int | WorklistStudy) -> None:
        """Read the current study against a prior one (a CT, segmented with the current model; a
        saved result id; or a saved study of this patient, its result reopened) in the background,
        then show the comparison window."""
        model_id, session = self.model_id, self.session

        def job(progress, cancelled, text):
            if isinstance(prior, WorklistStudy):
                baseline = session.open_prior(prior)
            else:
                baseline = self.workstation.study(prior, model_id, progress=progress, cancel=cancelled)
            result = session.compare_with(baseline)
            return (result, *session.comparison_views())

        self._run("compare", job, self._compared)

    def _compared(self, value: Any) -> None:
        result, followup_ct, followup_labels, rows = value
        summary = self.session.comparison_summary()
        view = ComparisonView(
            result.baseline.volume, result.baseline.segmentation.labels, followup_ct, followup_labels, rows, summary
        )
        self.comparison_window = ComparisonWindow(view, self.session.export_comparison)
        self.comparison_window.show()
        self.text.setPlainText(f"{self.session.findings()}\n\nCOMPARISON WITH PRIOR\n{summary}\n")

    def open_path(self, path: str) -> None:
        """Load a CT or image (or ``pacs://STUDY_UID``: retrieve it first) in the background."""
        if self.worker is not None or not self.confirm_discard_edits("open another study"):
            return
        self._remember(path)
        self._run(
            "load",
            lambda progress, cancelled, text: self.session.open(path, progress=progress, cancel=cancelled),
            self._loaded,
        )

    def import_from_pacs(self) -> None:
        """The PACS query dialog; the query and the retrieve run in workers."""
        self.pacs_dialog = PacsDialog(
            self, find=self._find_on_pacs, retrieve=lambda uid: self.open_path(f"pacs://{uid}")
        )
        self.pacs_dialog.setModal(False)
        self.pacs_dialog.show()

    def _find_on_pacs(self, query: dict[str, str]) -> None:
        self._run(
            "pacs-find",
            lambda progress, cancelled, text: self.workstation.find_studies(**query),
            lambda hits: self.pacs_dialog.set_hits(hits),
        )

    def send_to_pacs(self) -> None:
        """Write the SEG and SR (to a temporary folder) and send them to the PACS."""
        import tempfile

        if self.session.result is None:
            return
        folder = Path(tempfile.mkdtemp(prefix="liverhealth-send-"))

        def done(counts: tuple[int, int]) -> None:
            self.statusBar().showMessage(
                f"Sent to the PACS: {counts[0]} new object(s), {counts[1]} already there", 8000
            )

        self._run("send", lambda progress, cancelled, text: self.session.send_to_pacs(folder), done)

    def _loaded(self, volume: Any) -> None:
        self.view.set_volume(volume)
        self.set_edit_mode(False)
        self.lesions.setRowCount(0)
        self.text.clear()
        self._fit_views()

    def segment(self) -> None:
        if self.session.volume is None or self.manifest is None:
            return
        if self.worker is not None or not self.confirm_discard_edits("segment the study again"):
            return
        model_id, session = self.model_id, self.session

        def job(progress, cancelled, text):
            result = session.segment(model_id, progress=progress, cancel=cancelled)
            session.calipers()  # measured here, so the window only reads them
            return result

        self._run("segment", job, lambda result: self._show_result())

    def _toggle_uncertainty(self) -> None:
        self.view.show_uncertainty = self.uncertainty_action.isChecked()
        if self.view.show_uncertainty:
            self.view.right_view = "segmentation"
        self.refresh()

    def _order_lesions(self) -> None:
        self.view.lesion_order = self.lesion_order.currentData()
        if self.session.result is not None:
            self._fill_lesions()

    def _show_result(self) -> None:
        result = self.session.result
        self.view.set_result(result)
        self._fill_lesions()
        self.text.setPlainText(self.session.findings())

    def _fill_lesions(self) -> None:
        """The lesion list from the current result (the session's calipers give each one's slice)."""
        view = self.view
        if view.result is not None and not view.calipers:
            view.calipers = self.session.calipers()
        rows = view.lesion_rows()
        self.lesions.clearContents()
        self.lesions.setRowCount(len(rows))
        for index, row in enumerate(rows):
            for column, text in enumerate(row.cells):
                item = QTableWidgetItem(text)
                item.setToolTip(row.tooltip)
                item.setData(Qt.UserRole, row.slice_index)
                item.setData(Qt.UserRole + 1, row.lesion_id)
                if column:
                    item.setTextAlignment(
                        Qt.AlignRight | Qt.AlignVCenter
                        if column < CONFIDENCE_COLUMN
                        else Qt.AlignLeft | Qt.AlignVCenter
                    )
                self.lesions.setItem(index, column, item)
            if row.lesion_id == view.selected_lesion:
                self.lesions.selectRow(index)
        self.lesions.resizeColumnsToContents()
        self._fit_side_panel()

    def _fit_side_panel(self) -> None:
        """The side panel as wide as the lesion list's columns need, and no wider: the planes get the rest."""
        width = self.lesions.content_width()
        self.side_panel.setMinimumWidth(width)
        self.side_panel.setMaximumWidth(width + 24)

    def generate_report(self) -> None:
        if self.session.result is None:
            return
        self.text.setPlainText("")
        self._run(
            "report",
            lambda progress, cancelled, text: self.session.make_report(on_text=text, cancel=cancelled),
            lambda content: self.text.setPlainText(self.session.report_text()),
        )

    def save_to_database(self) -> None:
        if self.session.result is None:
            return
        answer = QMessageBox.question(
            self,
            "Save to database",
            "Save this result (and its report, if any) to the results database? The site's identity "
            "setting decides what of the patient and study is kept (clinical: as the CT states them; "
            "research: a pseudonym).",
        )
        if answer != QMessageBox.Yes:
            return
        self._run(
            "save",
            lambda progress, cancelled, text: self.session.save(),
            lambda saved: self.statusBar().showMessage(f"Saved as result {saved.result_id} in the {saved.where}", 8000),
        )

    def read_database(self) -> None:
        """The saved results as a worklist (read in a worker: patients, their studies newest first,
        each study's results), then shown in the database dialog."""
        self.database_dialog: DatabaseDialog | None = None
        self._run("list", lambda progress, cancelled, text: self.workstation.worklist(), self._show_database)

    def _show_database(self, patients: Any) -> None:
        def search(patient: str) -> None:
            self._run(
                "search",
                lambda progress, cancelled, text: self.workstation.worklist(patient=patient or None),
                dialog.set_patients,
            )

        self.database_dialog = dialog = DatabaseDialog(
            self, patients, load=self._open_saved, delete=self._delete_saved, preview=self._preview_saved, search=search
        )
        dialog.setModal(False)
        dialog.show()

    def _preview_saved(self, result_id: int, show: Callable[[Any], None]) -> None:
        self._run("preview", lambda progress, cancelled, text: self.workstation.get(result_id), show)

    def _open_saved(self, result_id: int) -> None:
        if self.worker is not None or not self.confirm_discard_edits(f"open saved result {result_id}"):
            return

        def job(progress, cancelled, text):
            session = self.workstation.reopen(result_id)
            session.calipers()
            return session

        self._run("open", job, self._reopened)

    def _reopened(self, session: Session) -> None:
        self.session = session
        self._fit_views()
        self._show_result()

    def _delete_saved(self, result_id: int) -> None:
        """Delete a saved result (in a worker), then the worklist again (the dialog's patient search kept)."""
        dialog = self.database_dialog
        patient = dialog.patient_filter if dialog is not None else ""

        def job(progress: Any, cancelled: Any, text: Any) -> Any:
            self.workstation.delete(result_id)
            return self.workstation.worklist(patient=patient or None)

        self._run("delete", job, lambda patients: dialog.set_patients(patients) if dialog is not None else None)

    def export_pdf(self) -> None:
        if self.session.report is None:
            return
        path, _ = QFileDialog.getSaveFileName(self, "Export PDF", "report.pdf", "PDF (*.pdf)")
        if path:
            self.write_pdf(Path(path))

    def export_dicom(self, folder: str | None = None) -> None:
        """Write seg.dcm and sr.dcm (DICOM SEG and TID 1500 SR on the source series) into a folder."""
        if self.session.result is None:
            return
        folder = folder or QFileDialog.getExistingDirectory(self, "Folder for the DICOM SEG and SR")
        if folder:
            self._run(
                "dicom",
                lambda progress, cancelled, text: self.session.export_dicom(Path(folder)),
                lambda paths: self.statusBar().showMessage(
                    f"Wrote {', '.join(p.name for p in paths.values())} to {folder}", 8000
                ),
            )

    def write_pdf(self, path: Path) -> None:
        try:
            write_bytes_atomic(path, self.session.report.pdf)
        except LiverHealthError as exc:
            self.show_error(str(exc))

    # files ----------------------------------------------------------------------------------
    def choose_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self,
            "Open CT or image",
            "",
            "CT and images (*.dcm *.nii *.nii.gz *.nrrd *.zip *.png *.jpg *.jpeg *.bmp *.tif *.tiff);;All files (*)",
        )
        if path:
            self.open_path(path)

    def choose_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open DICOM folder")
        if path:
            self.open_path(path)

    def _remember(self, path: str) -> None:
        for action in self.recent_menu.actions():
            if action.text() == path:
                self.recent_menu.removeAction(action)
        action = QAction(path, self)
        action.triggered.connect(lambda _checked=False, p=path: self.open_path(p))
        self.recent_menu.insertAction(self.recent_menu.actions()[0] if self.recent_menu.actions() else None, action)

    def closeEvent(self, event) -> None:
        if self.confirm_discard_edits("close the window"):
            super().closeEvent(event)
        else:
            event.ignore()

    def dragEnterEvent(self, event) -> None:
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:
        urls = event.mimeData().urls()
        if urls:
            self.open_path(urls[0].toLocalFile())
