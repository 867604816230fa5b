"""The window's review of a result: edit mode on the segmentation canvas (a tool palette, the
brush, undo and redo), the lesion list's menu, the unsaved revision in the title, and the report's
sign-off. Every edit and the signature are the workflow session's, run in the window's worker
thread like every other step; nothing here changes a label itself."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QPoint, Qt
from PyQt5.QtGui import QKeySequence
from PyQt5.QtWidgets import QActionGroup, QMenu, QMessageBox, QTableWidgetItem

from liverhealth.domain import Label
from liverhealth.gui.dialogs import SignDialog
from liverhealth.gui.view_model import Tool
from liverhealth.gui.widgets import EditPalette
from liverhealth.presentation import signature_line, slice_number
from liverhealth.text import one_line

TOOLS: tuple[tuple[Tool, str, str | None, str], ...] = (  # (tool, button text, shortcut, what a click does)
    (Tool.PAINT, "Paint", "B", "Click to paint the label with the brush."),
    (Tool.ERASE, "Erase", "E", "Click to erase the label with the brush (tumour becomes liver, liver background)."),
    (Tool.ADD_LESION, "Add lesion", None, "Click on a lesion the model missed: it is outlined in 3D."),
    (Tool.REMOVE_LESION, "Remove lesion", None, "Click on a lesion (or within 10 mm of it): it becomes liver."),
    (Tool.RELABEL_AS_LIVER, "Relabel as liver", None, "Click on a lesion that is none (a cyst, a vessel)."),
    (Tool.FILL_BETWEEN, "Fill between", None, "Click on a slice with the label drawn, then on another one."),
)
HELP = {tool: f"{text} Esc leaves edit mode." for tool, _, _, text in TOOLS}
EditJob = Callable[[], Any]


class ReviewControls:
    """Mixed into the main window, which provides ``session``, ``view``, ``right`` (the axial
    segmentation canvas), ``lesions``, ``text``, ``worker``, ``_action``, ``_run``, ``_fill_lesions``,
    ``select_lesion``, ``refresh`` and ``show_error``."""

    # building ------------------------------------------------------------------------------------
    def _build_review(self, menu: QMenu) -> EditPalette:
        """The Review menu's actions (with their shortcuts) and the palette showing them."""
        self.edit_mode_action = self._action(menu, "Edit segmentation", self._toggle_edit_mode, "Ctrl+E")
        self.edit_mode_action.setCheckable(True)
        group = QActionGroup(self)
        self.tool_actions = {}
        for tool, text, shortcut, help_text in TOOLS:
            action = self._action(menu, text, lambda tool=tool: self.choose_tool(tool), shortcut)
            action.setCheckable(True)
            action.setToolTip(f"{help_text} ({shortcut})" if shortcut else help_text)
            group.addAction(action)
            self.tool_actions[tool] = action
        menu.addSeparator()
        self.undo_action = self._action(menu, "Undo", self.undo_edit, "Ctrl+Z")
        self.redo_action = self._action(menu, "Redo", self.redo_edit)
        self.redo_action.setShortcuts([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y")])
        self.bigger_action = self._action(menu, "Bigger brush", lambda: self.resize_brush(1), "]")
        self.smaller_action = self._action(menu, "Smaller brush", lambda: self.resize_brush(-1), "[")
        self.leave_action = self._action(menu, "Leave edit mode", lambda: self.set_edit_mode(False), "Esc")
        menu.addSeparator()
        self.sign_action = self._action(menu, "Sign report…", self.sign_report)
        palette = EditPalette(list(self.tool_actions.values()), self.undo_action, self.redo_action)
        palette.radius.setValue(self.view.tools.radius_mm)
        palette.radius.valueChanged.connect(self._radius_changed)
        palette.label.currentIndexChanged.connect(self._label_changed)
        palette.hide()
        self.palette = palette
        self.right.clicked.connect(self._canvas_clicked)
        self.lesions.setContextMenuPolicy(Qt.CustomContextMenu)
        self.lesions.customContextMenuRequested.connect(self._lesion_context_menu)
        return palette

    # state -> screen -----------------------------------------------------------------------------
    def _refresh_review(self) -> None:
        tools, session = self.view.tools, self.session
        has_result, busy = session.result is not None, self.worker is not None
        tools.active = tools.active and has_result
        self.edit_mode_action.setEnabled(has_result)
        self.edit_mode_action.setChecked(tools.active)
        for tool, action in self.tool_actions.items():
            action.setEnabled(has_result)
            action.setChecked(tool == tools.tool)
        self.undo_action.setEnabled(session.can_undo and not busy)
        self.redo_action.setEnabled(session.can_redo and not busy)
        for action in (self.bigger_action, self.smaller_action, self.leave_action):
            action.setEnabled(tools.active)
        self.sign_action.setEnabled(has_result and not busy)
        self.palette.setVisible(tools.active)
        spacing = self.view.volume.spacing if self.view.volume is not None else None
        self.palette.set_radius_unit(" mm" if spacing is not None else " px")
        self.right.set_editing(tools.active, tools.brush_pixels(spacing))

    def revision_note(self) -> str:
        """'revision 2 (unsaved)' while the result has edits not saved; 'revision 2, saved as result 7'
        for a saved revision; '' for the model's result."""
        result, session = self.session.result, self.session
        if result is None or result.revision is None:
            return ""
        if session.edited:
            return f"revision {result.revision.number} (unsaved)"
        saved = f", saved as result {session.saved.result_id}" if session.saved is not None else ""
        return f"revision {result.revision.number}{saved}"

    # edit mode -----------------------------------------------------------------------------------
    def _toggle_edit_mode(self) -> None:
        self.set_edit_mode(self.edit_mode_action.isChecked())

    def set_edit_mode(self, active: bool) -> None:
        """Enter (there must be a result) or leave edit mode on the segmentation canvas."""
        tools = self.view.tools
        tools.active, tools.fill_from = active and self.session.result is not None, None
        if tools.active:
            self.view.right_view = "segmentation"
            self.palette.set_hint(HELP[tools.tool])
        self.refresh()

    def choose_tool(self, tool: Tool) -> None:
        """Make ``tool`` what a click does (entering edit mode)."""
        self.view.tools.tool = tool
        self.set_edit_mode(True)

    def resize_brush(self, steps: int) -> None:
        self.palette.radius.setValue(self.view.tools.resize_brush(steps))

    def _radius_changed(self, value: float) -> None:
        self.view.tools.radius_mm = float(value)
        self.refresh()

    def _label_changed(self, _index: int) -> None:
        self.view.tools.label = Label(int(self.palette.label.currentData()))

    def _canvas_clicked(self, row: int, column: int) -> None:
        tools, z = self.view.tools, self.view.slice_index
        if not tools.active or self.worker is not None or self.session.result is None:
            return
        if tools.tool == Tool.FILL_BETWEEN and tools.fill_from is None:
            tools.fill_from = z
            self.palette.set_hint(
                f"Slice {slice_number(z)} chosen: go to the other slice and click on it (Esc cancels)."
            )
            return
        job, doing = self._edit_job(z, row, column)
        self._run_edit("edit", job, doing)

    def _edit_job(self, z: int, row: int, column: int) -> tuple[EditJob, str]:
        """The session call a click at (row, column) of slice ``z`` makes with the current tool, and
        what the palette says meanwhile (the values are taken now, not when the worker runs)."""
        session, tools = self.session, self.view.tools
        radius, label, seed, first = tools.radius_mm, tools.label, (z, row, column), tools.fill_from
        tools.fill_from = None
        jobs: dict[Tool, tuple[EditJob, str]] = {
            Tool.PAINT: (lambda: session.paint(z, (row, column), radius, label), "Painting…"),
            Tool.ERASE: (lambda: session.erase(z, (row, column), radius, label), "Erasing…"),
            Tool.ADD_LESION: (lambda: session.add_lesion(seed), "Outlining the lesion at the click…"),
            Tool.REMOVE_LESION: (lambda: session.remove_lesion(seed), "Removing the lesion…"),
            Tool.RELABEL_AS_LIVER: (lambda: session.relabel_lesion(seed, Label.LIVER), "Relabelling as liver…"),
            Tool.FILL_BETWEEN: (
                lambda: session.fill_between_slices(label, first, z),
                f"Filling between slices {slice_number(first or 0)} and {slice_number(z)}…",
            ),
        }
        return jobs[tools.tool]

    def undo_edit(self) -> None:
        """Step back one edit (Ctrl+Z)."""
        if self.session.can_undo:
            self._run_edit("undo", self.session.undo, "Undoing…")

    def redo_edit(self) -> None:
        """Step forward one undone edit (Ctrl+Shift+Z or Ctrl+Y)."""
        if self.session.can_redo:
            self._run_edit("redo", self.session.redo, "Redoing…")

    def _run_edit(self, step: str, job: EditJob, doing: str) -> None:
        self.palette.set_hint(doing)
        session = self.session

        def work(progress: Any, cancelled: Any, text: Any) -> Any:
            result = job()
            session.calipers()  # the lesions are measured again: their calipers too, off the window's thread
            return result

        self._run(step, work, self._edited, self._edit_refused, cancellable=False)

    def _edited(self, result: Any) -> None:
        """The session's new result on screen: overlay, lesions, volumes and findings."""
        self.view.update_result(result)
        self._fill_lesions()
        self.text.setPlainText(self.session.findings())
        self.palette.set_hint(HELP[self.view.tools.tool])

    def _edit_refused(self, message: str) -> None:
        """The session's one-line reason, beside the tools in edit mode, else in a dialog."""
        if self.view.tools.active:
            self.last_error = one_line(message)
            self.palette.set_hint(self.last_error, refused=True)
        else:
            self.show_error(one_line(message))

    # the lesion list -----------------------------------------------------------------------------
    def _lesion_context_menu(self, pos: QPoint) -> None:
        item = self.lesions.itemAt(pos)
        if item is not None:
            self.lesion_menu(item).exec_(self.lesions.viewport().mapToGlobal(pos))

    def lesion_menu(self, item: QTableWidgetItem) -> QMenu:
        """The right-click menu of a lesion in the list: remove it, relabel it as liver, go to it."""
        lesion_id, z = int(item.data(Qt.UserRole + 1)), int(item.data(Qt.UserRole))
        menu = QMenu(self)
        can_edit = self.worker is None and self.session.result is not None
        for text, slot in (
            (f"Remove lesion {lesion_id}", lambda: self.remove_lesion(lesion_id)),
            (f"Relabel lesion {lesion_id} as liver", lambda: self.relabel_lesion_as_liver(lesion_id)),
        ):
            menu.addAction(text, slot).setEnabled(can_edit)
        menu.addAction(f"Go to lesion {lesion_id}: {self.view.slice_label(z)}", lambda: self.select_lesion(lesion_id))
        return menu

    def remove_lesion(self, lesion_id: int) -> None:
        """Lesion ``lesion_id`` of the list becomes liver."""
        session = self.session
        self._run_edit("edit", lambda: session.remove_lesion(session.lesion_seed(lesion_id)), "Removing…")

    def relabel_lesion_as_liver(self, lesion_id: int) -> None:
        session = self.session
        self._run_edit(
            "edit", lambda: session.relabel_lesion(session.lesion_seed(lesion_id), Label.LIVER), "Relabelling…"
        )

    def go_to_slice(self, z: int) -> None:
        self.view.slice_index = z
        self.refresh()

    def confirm_discard_edits(self, doing: str) -> bool:
        """Whether to go on and ``doing`` ('open another study'): yes when nothing is unsaved, else
        what the reader answers."""
        if not self.session.edited:
            return True
        answer = QMessageBox.question(
            self,
            "Unsaved edits",
            f"The segmentation has edits not saved ({self.revision_note()}). Discard them and {doing}?",
            QMessageBox.Discard | QMessageBox.Cancel,
            QMessageBox.Cancel,
        )
        return answer == QMessageBox.Discard

    # sign-off ------------------------------------------------------------------------------------
    def sign_report(self) -> None:
        """The sign dialog on the current report (the session makes a findings-only one if none)."""
        session = self.session
        if session.result is None:
            return
        report = session.report.report if session.report is not None else None
        self.sign_dialog = SignDialog(
            self,
            reader=session.actor.user,
            state=self._report_state(),
            findings=session.findings(),
            impression=(report.impression or "") if report else "",
            draft=(report.draft or "") if report else "",
        )
        dialog = self.sign_dialog
        dialog.accepted.connect(lambda: self._sign(dialog.impression(), dialog.draft()))
        dialog.open()

    def _report_state(self) -> str:
        content, result = self.session.report, self.session.result
        if content is not None and content.report.is_signed:
            return signature_line(content.report)
        on = (
            f"result revision {result.revision.number} (reader-edited)"
            if result.revision is not None
            else "the model's segmentation, unedited"
        )
        made = "The report" if content is not None else "No report was made yet: a findings-only report"
        return f"{made} on {on} is not signed."

    def _sign(self, impression: str, draft: str | None) -> None:
        session = self.session
        self._run(
            "sign", lambda progress, cancelled, text: session.sign(impression, draft), self._signed, cancellable=False
        )

    def _signed(self, _content: Any) -> None:
        """Signed: the report panel says by whom; then it is saved the way the window saves."""
        self.text.setPlainText(self.session.report_text())
        self._run(
            "save",
            lambda progress, cancelled, text: self.session.save(),
            lambda saved: self.statusBar().showMessage(
                f"Signed and saved as result {saved.result_id} in the {saved.where}", 8000
            ),
            cancellable=False,
        )
