"""Undo and redo of a reader's edits, keeping only what each edit changed.

Each step holds the flat indices of its changed voxels and their values before and after, so twenty
brush strokes on a 512 × 512 × 150 CT cost kilobytes to a few megabytes, not twenty copies of a
39 MB label map. A new edit after an undo drops the steps that could have been redone (one line of
history, as in every editor).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from liverhealth.editing.edit import Edit, EditResult
from liverhealth.editing.grid import check_labels
from liverhealth.errors import InputError


@dataclass(frozen=True)
class _Step:
    indices: np.ndarray  # flat indices, int32 when the grid allows
    before: np.ndarray  # uint8
    after: np.ndarray  # uint8
    edit: Edit

    @property
    def nbytes(self) -> int:
        return int(self.indices.nbytes + self.before.nbytes + self.after.nbytes)


class EditHistory:
    """The current labels of one review and the edits that led to them.

    ``apply`` takes an operation's EditResult made on the current labels; ``undo`` and ``redo`` step
    back and forth and return the labels then current (a copy: the history keeps its own)."""

    def __init__(self, labels: np.ndarray) -> None:
        check_labels(labels)
        self._labels = labels.copy()
        self._steps: list[_Step] = []
        self._done = 0  # steps applied; those after it can be redone

    @property
    def labels(self) -> np.ndarray:
        """A copy of the current labels."""
        return self._labels.copy()

    @property
    def can_undo(self) -> bool:
        return self._done > 0

    @property
    def can_redo(self) -> bool:
        return self._done < len(self._steps)

    @property
    def edits(self) -> tuple[Edit, ...]:
        """The edits now applied, oldest first (what a revision records)."""
        return tuple(step.edit for step in self._steps[: self._done])

    @property
    def nbytes(self) -> int:
        """Memory the steps hold (the current labels not counted)."""
        return sum(step.nbytes for step in self._steps)

    def apply(self, result: EditResult) -> np.ndarray:
        """Record an edit made on the current labels and make its labels current."""
        if result.labels.shape != self._labels.shape:
            raise ValueError(f"edit on a grid {result.labels.shape}, history on {self._labels.shape}")
        indices = result.indices()
        flat = self._labels.reshape(-1)
        if not np.array_equal(flat[indices], result.before):
            raise InputError("This edit was made on other labels than the current ones; make it again.")
        dtype = np.int32 if flat.size < 2**31 else np.int64
        after = result.after()
        del self._steps[self._done :]
        self._steps.append(_Step(indices.astype(dtype), result.before.copy(), after.copy(), result.edit))
        self._done += 1
        flat[indices] = after
        return self.labels

    def undo(self) -> np.ndarray:
        """Step back one edit; the labels before it."""
        if not self.can_undo:
            raise InputError("Nothing to undo.")
        self._done -= 1
        step = self._steps[self._done]
        self._labels.reshape(-1)[step.indices] = step.before
        return self.labels

    def redo(self) -> np.ndarray:
        """Step forward one undone edit; the labels after it."""
        if not self.can_redo:
            raise InputError("Nothing to redo.")
        step = self._steps[self._done]
        self._labels.reshape(-1)[step.indices] = step.after
        self._done += 1
        return self.labels
