"""Qt building blocks: an image canvas, the edit tool palette and a worker thread with progress
and cancel."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt5.QtCore import QObject, QPoint, QPointF, QRectF, Qt, QThread, pyqtSignal
from PyQt5.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PyQt5.QtWidgets import (
    QAction,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGraphicsEllipseItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QToolButton,
    QVBoxLayout,
)

from liverhealth.domain import Label
from liverhealth.errors import Cancelled, LiverHealthError
from liverhealth.gui.view_model import BRUSH_MM


def to_qimage(image: np.ndarray) -> QImage:
    """A uint8 grey or RGB array as a QImage (copied, so the array may change afterwards)."""
    image = np.ascontiguousarray(image)
    height, width = image.shape[:2]
    if image.ndim == 2:
        return QImage(image.data, width, height, width, QImage.Format_Grayscale8).copy()
    return QImage(image.data, width, height, 3 * width, QImage.Format_RGB888).copy()


class SliceNavigation:
    """Wheel, slider and list navigation for a window whose ``view`` has ``slice_index`` and
    ``scroll`` and that repaints in ``refresh``; list items hold their slice as Qt.UserRole."""

    def scroll(self, steps: int) -> None:
        self.view.scroll(steps)
        self.refresh()

    def _slider_moved(self, value: int) -> None:
        self.view.slice_index = value
        self.refresh()

    def _jump_to_item(self, item: Any) -> None:
        self.view.slice_index = int(item.data(Qt.UserRole))
        self.refresh()


class SliceCanvas(QGraphicsView):
    """Shows one slice. Wheel: scroll slices; Ctrl+wheel: zoom; left-drag: pan (in edit mode a left
    click reports the pixel under it instead); right-drag: window/level; hovering reports the pixel
    under the cursor, and in edit mode outlines the brush around it."""

    scrolled = pyqtSignal(int)
    window_dragged = pyqtSignal(float, float)
    hovered = pyqtSignal(int, int)  # (row, column); (-1, -1) off the image
    clicked = pyqtSignal(int, int)  # (row, column) of a left click on the image, in edit mode

    def __init__(self, title: str) -> None:
        super().__init__()
        self.setObjectName(title)
        self.setScene(QGraphicsScene(self))
        self._item = QGraphicsPixmapItem()
        self.scene().addItem(self._item)
        self.setRenderHint(QPainter.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setMouseTracking(True)
        self.setMinimumSize(320, 320)
        self.setStyleSheet("background: #111;")
        self._drag_origin: QPoint | None = None
        self._fitted = False
        self._editing = False
        self._brush = QGraphicsEllipseItem()
        pen = QPen(QColor("#ffd400"))
        pen.setCosmetic(True)
        self._brush.setPen(pen)
        self._brush.setZValue(1)
        self._brush.hide()
        self.scene().addItem(self._brush)
        self._brush_radius: tuple[float, float] | None = None

    def show_image(self, image: np.ndarray | None) -> None:
        self._item.setPixmap(QPixmap.fromImage(to_qimage(image)) if image is not None else QPixmap())
        if image is not None and not self._fitted:
            self.scene().setSceneRect(self._item.boundingRect())
            self.fitInView(self._item, Qt.KeepAspectRatio)
            self._fitted = True

    def reset_view(self) -> None:
        self._fitted = False

    def set_editing(self, editing: bool, brush_radius: tuple[float, float] | None = None) -> None:
        """Edit mode (left click reports the pixel, a cross cursor) or view mode (left-drag pans);
        ``brush_radius`` (rows, columns in pixels) outlines the brush under the cursor."""
        self._brush_radius = brush_radius if editing else None
        if not self._brush_radius:
            self._brush.hide()
        if editing == self._editing:
            return
        self._editing = editing
        self.setDragMode(QGraphicsView.NoDrag if editing else QGraphicsView.ScrollHandDrag)
        if editing:
            self.viewport().setCursor(Qt.CrossCursor)

    def pixel_at(self, pos: QPoint) -> tuple[int, int] | None:
        """(row, column) of the slice pixel drawn under the viewport point ``pos`` (zoom, pan and the
        aspect-kept fit included), or None off the image."""
        pixmap = self._item.pixmap()
        if pixmap.isNull():
            return None
        centre = QPointF(pos.x() + 0.5, pos.y() + 0.5)  # the centre of the screen pixel at pos
        point = self._item.mapFromScene(self.viewportTransform().inverted()[0].map(centre))
        row, column = math.floor(point.y()), math.floor(point.x())
        if 0 <= row < pixmap.height() and 0 <= column < pixmap.width():
            return row, column
        return None

    def _show_brush(self, pixel: tuple[int, int] | None) -> None:
        if pixel is None or not self._brush_radius:
            self._brush.hide()
            return
        (row, column), (radius_y, radius_x) = pixel, self._brush_radius
        self._brush.setRect(QRectF(column + 0.5 - radius_x, row + 0.5 - radius_y, 2 * radius_x, 2 * radius_y))
        self._brush.show()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if not self._item.pixmap().isNull():
            self.fitInView(self._item, Qt.KeepAspectRatio)

    def wheelEvent(self, event) -> None:
        steps = 1 if event.angleDelta().y() > 0 else -1
        if event.modifiers() & Qt.ControlModifier:
            self.scale(1.15**steps, 1.15**steps)
        else:
            self.scrolled.emit(steps)

    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.RightButton:
            self._drag_origin = event.pos()
            return
        if self._editing and event.button() == Qt.LeftButton:
            pixel = self.pixel_at(event.pos())
            if pixel is not None:
                self.clicked.emit(*pixel)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._drag_origin is not None:
            delta = event.pos() - self._drag_origin
            self._drag_origin = event.pos()
            self.window_dragged.emit(float(-delta.y()), float(delta.x() * 2))
            return
        pixel = self.pixel_at(event.pos())
        self._show_brush(pixel)
        self.hovered.emit(*(pixel or (-1, -1)))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self._brush.hide()
        super().leaveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.RightButton:
            self._drag_origin = None
            return
        super().mouseReleaseEvent(event)


class EditPalette(QFrame):
    """The edit mode's tools in one row above the canvases: a button per tool action (they are
    exclusive), the brush radius, the label, undo and redo; below them one line saying what a click
    does now, or why the last edit was refused."""

    def __init__(self, tools: list[QAction], undo: QAction, redo: QAction) -> None:
        super().__init__()
        self.setFrameShape(QFrame.StyledPanel)
        self.radius = QDoubleSpinBox()
        self.radius.setRange(*BRUSH_MM)
        self.radius.setSingleStep(0.5)
        self.radius.setDecimals(1)
        self.radius.setSuffix(" mm")
        self.radius.setToolTip("The brush radius ([ smaller, ] bigger)")
        self.label = QComboBox()
        self.label.addItem("Tumour", int(Label.TUMOUR))
        self.label.addItem("Liver", int(Label.LIVER))
        self.label.setToolTip("What Paint, Erase and Fill between draw or take away")
        row = QHBoxLayout()
        for action in tools:
            row.addWidget(_button(action))
        for text, widget in (("Brush", self.radius), ("Label", self.label)):
            row.addSpacing(12)
            row.addWidget(QLabel(text))
            row.addWidget(widget)
        row.addSpacing(12)
        for action in (undo, redo):
            row.addWidget(_button(action))
        row.addStretch(1)
        self.hint = QLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.addLayout(row)
        layout.addWidget(self.hint)

    def set_radius_unit(self, unit: str) -> None:
        """' mm', or ' px' for a raster without a pixel size (the brush is then in pixels)."""
        self.radius.setSuffix(unit)

    def set_hint(self, text: str, refused: bool = False) -> None:
        self.hint.setStyleSheet("color: #e62828;" if refused else "")
        self.hint.setText(text)


def _button(action: QAction) -> QToolButton:
    button = QToolButton()
    button.setDefaultAction(action)
    button.setToolButtonStyle(Qt.ToolButtonTextOnly)
    return button


class Worker(QObject):
    """Runs ``job(progress, cancelled)`` in a thread; reports progress, a result or an error."""

    progressed = pyqtSignal(int, int)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    text_arrived = pyqtSignal(str)

    def __init__(self, job: Callable[..., Any]) -> None:
        super().__init__()
        self.job = job
        self.cancel_event = threading.Event()
        self.thread = QThread()
        self.moveToThread(self.thread)
        self.thread.started.connect(self.run)

    def run(self) -> None:
        try:
            result = self.job(self.progressed.emit, self.cancel_event.is_set, self.text_arrived.emit)
        except Cancelled as exc:
            self.failed.emit(str(exc))
        except LiverHealthError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug: keep the window alive and say so
            from liverhealth.config import log_exception

            path = log_exception("a window task")
            where = f"details are in {path}" if path else "the log file could not be written"
            self.failed.emit(f"Internal error ({exc.__class__.__name__}); {where}. Please report it.")
        else:
            self.succeeded.emit(result)
        finally:
            self.thread.quit()

    def start(self) -> None:
        self.thread.start()

    def cancel(self) -> None:
        self.cancel_event.set()
