"""The callbacks a long step takes from whichever face runs it: progress and cancellation."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[int, int], None]  # (done, total), called as work completes
CancelCheck = Callable[[], bool]  # True once the user asked to stop
