"""Qt building blocks: an image canvas (one plane: crosshair, edge letters, scale bar, the picked
lesion's outline and caliper), the edit tool palette and a worker thread with progress and cancel."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt5.QtCore import QLineF, QObject, QPoint, QPointF, QRect, QRectF, Qt, QThread, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen, QPixmap, QTransform
from PyQt5.QtWidgets import (
    QAction,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGraphicsEllipseItem,
    QGraphicsLineItem,
    QGraphicsPathItem,
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
from liverhealth.imaging.display import PlaneGeometry, scale_bar_mm

CROSSHAIR_COLOUR = QColor(70, 150, 255)
CALIPER_COLOUR = QColor(255, 230, 0)  # the RECIST long and short axes
OUTLINE_COLOUR = QColor(0, 230, 230)  # the lesion picked in the list
ANNOTATION_COLOUR = QColor(255, 170, 60)  # edge letters, the scale bar and its length
SCALE_BAR_ROOM = 0.25  # the bar is at most this share of the view's width


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
    picked = pyqtSignal(int, int)  # (row, column) of a left click (not a drag) on the image, in view mode

    def __init__(self, title: str, minimum: int = 320) -> None:
        super().__init__()
        self.setObjectName(title)
        self.setScene(QGraphicsScene(self))
        self._item = QGraphicsPixmapItem()
        self.scene().addItem(self._item)
        self.setRenderHint(QPainter.SmoothPixmapTransform)
        self.setDragMode(QGraphicsView.ScrollHandDrag)
        self.setMouseTracking(True)
        self.setMinimumSize(minimum, minimum)
        self.setStyleSheet("background: #111;")
        self._drag_origin: QPoint | None = None
        self._press: QPoint | None = None
        self._fitted = False
        self._editing = False
        self._geometry: PlaneGeometry | None = None
        self.caption = ""
        self._brush = QGraphicsEllipseItem(self._item)  # children of the picture: drawn in its pixels
        self._brush.setPen(_pen(QColor("#ffd400"), 1))
        self._brush.setZValue(5)
        self._brush.hide()
        self._brush_radius: tuple[float, float] | None = None
        self._cross = [QGraphicsLineItem(self._item) for _ in range(2)]
        self._outline = QGraphicsPathItem(self._item)
        self._outline.setPen(_pen(OUTLINE_COLOUR, 2))
        self._axes = [QGraphicsLineItem(self._item) for _ in range(2)]
        for z, items, pen in ((3, self._cross, _pen(CROSSHAIR_COLOUR, 1)), (4, self._axes, _pen(CALIPER_COLOUR, 2))):
            for item in items:
                item.setPen(pen)
                item.setZValue(z)
        self._outline.setZValue(2)
        self.set_crosshair(None)
        self.set_marks(None)

    def show_image(self, image: np.ndarray | None) -> None:
        self._item.setPixmap(QPixmap.fromImage(to_qimage(image)) if image is not None else QPixmap())
        if image is not None and not self._fitted:
            self.scene().setSceneRect(self._item.sceneBoundingRect())
            self.fitInView(self._item, Qt.KeepAspectRatio)
            self._fitted = True

    def reset_view(self) -> None:
        self._fitted = False

    def set_geometry(self, geometry: PlaneGeometry | None, caption: str = "") -> None:
        """The plane's pixel aspect (rows drawn ``aspect`` times as tall as columns are wide), its edge
        letters and pixel size (the scale bar) and the caption at its top left."""
        self.caption = caption
        aspect = geometry.aspect if geometry is not None else 1.0
        if self._geometry is None or geometry is None or self._geometry.aspect != aspect:
            self._item.setTransform(QTransform.fromScale(1.0, aspect))
            self._fitted = False
        self._geometry = geometry
        self.viewport().update()

    def set_crosshair(self, point: tuple[int, int] | None) -> None:
        """The crosshair through the centre of pixel (row, column); None hides it."""
        pixmap = self._item.pixmap()
        for line in self._cross:
            line.setVisible(point is not None and not pixmap.isNull())
        if point is None or pixmap.isNull():
            return
        y, x = point[0] + 0.5, point[1] + 0.5
        self._cross[0].setLine(QLineF(0, y, pixmap.width(), y))
        self._cross[1].setLine(QLineF(x, 0, x, pixmap.height()))

    def set_marks(self, caliper: Any | None) -> None:
        """Outline a lesion and draw its RECIST long and short axes (a ``Caliper``, in this picture's
        pixels); None takes them away."""
        self._outline.setVisible(caliper is not None)
        for line in self._axes:
            line.setVisible(caliper is not None)
        if caliper is None:
            return
        path = QPainterPath()
        for contour in caliper.outline:
            points = [QPointF(column + 0.5, row + 0.5) for row, column in contour]
            path.moveTo(points[0])
            for point in points[1:]:
                path.lineTo(point)
            path.closeSubpath()
        self._outline.setPath(path)
        for line, (start, end) in zip(self._axes, (caliper.long_axis, caliper.short_axis), strict=True):
            line.setLine(QLineF(_point(start), _point(end)))

    def marks_shown(self) -> bool:
        return self._axes[0].isVisible()

    def viewport_point(self, row: float, column: float) -> QPoint:
        """The viewport pixel where the picture's point (row, column) is drawn (pixel centres at integers)."""
        return self.mapFromScene(self._item.mapToScene(_point((row, column))))

    def scale_bar(self) -> tuple[float, int] | None:
        """(length in mm, length in screen pixels) of the scale bar; None without a pixel size."""
        if self._geometry is None or not self._geometry.column_mm or self._item.pixmap().isNull():
            return None
        mm_per_pixel = self._geometry.column_mm / self.transform().m11()
        length_mm = scale_bar_mm(mm_per_pixel, SCALE_BAR_ROOM * self.viewport().width())
        return length_mm, round(length_mm / mm_per_pixel)

    def scale_bar_rect(self) -> QRect | None:
        """Where the scale bar is drawn in the viewport (bottom right)."""
        bar = self.scale_bar()
        if bar is None:
            return None
        size = self.viewport().size()
        return QRect(size.width() - 12 - bar[1], size.height() - 14, bar[1], 3)

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        """Edge letters, the caption and the scale bar, in viewport pixels over the picture."""
        super().drawForeground(painter, rect)
        if self._item.pixmap().isNull():
            return
        painter.save()
        painter.resetTransform()
        painter.setRenderHint(QPainter.Antialiasing, False)
        size = self.viewport().size()
        font = QFont(painter.font())
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(ANNOTATION_COLOUR)
        w, h = size.width(), size.height()
        caption = painter.fontMetrics().elidedText(self.caption, Qt.ElideRight, w - 12)
        painter.drawText(QRect(6, 4, w - 12, 20), Qt.AlignLeft | Qt.AlignTop, caption)
        crowded = painter.fontMetrics().horizontalAdvance(caption) + 6 > w // 2 - 10  # the top letter moves down
        geometry = self._geometry
        if geometry is not None:
            top = 24 if crowded else 4
            for text, box, align in (
                (geometry.top, QRect(0, top, w, 20), Qt.AlignHCenter | Qt.AlignTop),
                (geometry.bottom, QRect(0, h - 22, w, 20), Qt.AlignHCenter | Qt.AlignBottom),
                (geometry.left, QRect(4, 0, 20, h), Qt.AlignLeft | Qt.AlignVCenter),
                (geometry.right, QRect(w - 24, 0, 20, h), Qt.AlignRight | Qt.AlignVCenter),
            ):
                painter.drawText(box, align, text)
        bar, box = self.scale_bar(), self.scale_bar_rect()
        if bar is not None and box is not None:
            painter.fillRect(box, ANNOTATION_COLOUR)
            label = QRect(box.left() - 40, box.top() - 20, box.width() + 40, 18)
            painter.drawText(label, Qt.AlignRight | Qt.AlignBottom, f"{bar[0]:g} mm")
        painter.restore()

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
        (row, column), (radius_y, radius_x) = pixel, self._brush_radius  # in the picture's pixels
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
        if event.button() == Qt.LeftButton:
            self._press = event.pos()
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
        press, self._press = self._press, None
        if event.button() == Qt.LeftButton and press is not None and (event.pos() - press).manhattanLength() <= 3:
            pixel = self.pixel_at(event.pos())
            if pixel is not None:
                self.picked.emit(*pixel)


def _pen(colour: QColor, width: int) -> QPen:
    pen = QPen(colour, width)
    pen.setCosmetic(True)  # as wide on screen whatever the zoom
    pen.setCapStyle(Qt.SquareCap)
    return pen


def _point(point: tuple[float, float]) -> QPointF:
    """A (row, column) point with pixel centres at integers, in the picture item's coordinates."""
    return QPointF(point[1] + 0.5, point[0] + 0.5)


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
