"""Qt building blocks: an image canvas and a worker thread with progress and cancel."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
from PyQt5.QtCore import QObject, QPoint, Qt, QThread, pyqtSignal
from PyQt5.QtGui import QImage, QPainter, QPixmap
from PyQt5.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from liverhealth.errors import Cancelled, LiverHealthError


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
    """Shows one slice. Wheel: scroll slices; Ctrl+wheel: zoom; left-drag: pan;
    right-drag: window/level; hovering reports the pixel under the cursor."""

    scrolled = pyqtSignal(int)
    window_dragged = pyqtSignal(float, float)
    hovered = pyqtSignal(int, int)

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

    def show_image(self, image: np.ndarray | None) -> None:
        self._item.setPixmap(QPixmap.fromImage(to_qimage(image)) if image is not None else QPixmap())
        if image is not None and not self._fitted:
            self.scene().setSceneRect(self._item.boundingRect())
            self.fitInView(self._item, Qt.KeepAspectRatio)
            self._fitted = True

    def reset_view(self) -> None:
        self._fitted = False

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
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event) -> None:
        if self._drag_origin is not None:
            delta = event.pos() - self._drag_origin
            self._drag_origin = event.pos()
            self.window_dragged.emit(float(-delta.y()), float(delta.x() * 2))
            return
        point = self.mapToScene(event.pos())
        self.hovered.emit(int(point.y()), int(point.x()))
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.RightButton:
            self._drag_origin = None
            return
        super().mouseReleaseEvent(event)


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
