"""The callbacks a long step takes from whichever face runs it: progress and cancellation."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

Progress = Callable[[int, int], None]  # (done, total), called as work completes
CancelCheck = Callable[[], bool]  # True once the user asked to stop


class Step(StrEnum):
    """The named steps of a segmentation, counted in slices of the CT."""

    FINDING_LIVER = "finding the liver"  # a cascade's first stage, on the whole CT
    SEGMENTING = "segmenting"


class StepProgress(Protocol):
    """A Progress that also hears which step the counts belong to (the web page names it)."""

    def __call__(self, done: int, total: int) -> None: ...

    def step(self, step: Step, done: int, total: int) -> None: ...


def report_step(progress: Progress | None, step: Step, done: int, total: int) -> None:
    """``done`` of ``total`` slices of the CT through ``step``. A callback with a ``step`` method
    hears every step by name; a plain (done, total) one only the segmenting step, so its count runs
    once up to the CT's slice count whatever the model (a cascade's first stage is not counted twice)."""
    if progress is None:
        return
    named = getattr(progress, "step", None)
    if callable(named):
        named(step, done, total)
    elif step is Step.SEGMENTING:
        progress(done, total)
