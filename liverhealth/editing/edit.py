"""What an edit is: the record a result's revision keeps (``Edit``) and what an operation returns
(``EditResult``: the new labels and exactly which voxels changed, with their old values).

Every operation returns a new label map and never touches its input; the changed voxels (a box and
a boolean crop) are what the undo history keeps, so a history stays small whatever the CT's size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import ndimage

from liverhealth.analysis.measure import FULL_3D
from liverhealth.domain import Label
from liverhealth.errors import InputError

EDIT_SCHEMA = 1

Box = tuple[slice, slice, slice]


class EditKind(StrEnum):
    """The reader's tools."""

    PAINT = "paint"
    ERASE = "erase"
    REMOVE_LESION = "remove_lesion"
    RELABEL_LESION = "relabel_lesion"
    FILL_BETWEEN_SLICES = "fill_between_slices"
    ADD_LESION = "add_lesion"


def plain(value: Any) -> Any:
    """A value as JSON holds it: tuples become lists, numpy numbers Python numbers, enums their value."""
    if isinstance(value, StrEnum):
        return str(value)
    if isinstance(value, Label):
        return int(value)
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [plain(item) for item in value]
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


@dataclass(frozen=True)
class Edit:
    """One reader edit as plain data: what was done (``parameters`` in voxel index terms of the CT's
    grid: ``[z, y, x]``, slices, labels as numbers), how many voxels it changed, and how many lesions
    (26-connected tumour components, as ``measure`` counts them) it added, removed or relabelled.
    ``box`` is the changed voxels' bounding box as ``[[z0, z1], [y0, y1], [x0, x1]]`` (stop exclusive)."""

    kind: EditKind
    parameters: dict[str, Any]
    voxels_changed: int
    lesions_added: int = 0
    lesions_removed: int = 0
    lesions_relabelled: int = 0
    box: tuple[tuple[int, int], ...] | None = None

    def __post_init__(self) -> None:
        """Parameters are kept in their JSON form, so ``from_dict(to_dict())`` gives an equal Edit."""
        object.__setattr__(self, "kind", EditKind(self.kind))
        object.__setattr__(self, "parameters", plain(dict(self.parameters)))
        if self.box is not None:
            object.__setattr__(self, "box", tuple((int(a), int(b)) for a, b in self.box))

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": EDIT_SCHEMA,
            "kind": str(self.kind),
            "parameters": plain(self.parameters),
            "voxels_changed": self.voxels_changed,
            "lesions_added": self.lesions_added,
            "lesions_removed": self.lesions_removed,
            "lesions_relabelled": self.lesions_relabelled,
            "box": [list(pair) for pair in self.box] if self.box is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Edit:
        """Read back what ``to_dict`` wrote; a newer schema or an unknown kind is refused."""
        schema = data.get("schema")
        if schema != EDIT_SCHEMA:
            raise InputError(f"This edit record has schema {schema!r}; this LiverHealth reads schema {EDIT_SCHEMA}.")
        try:
            kind = EditKind(data["kind"])
        except (KeyError, ValueError) as exc:
            raise InputError(f"This edit record has an unknown kind {data.get('kind')!r}.") from exc
        box = data.get("box")
        return cls(
            kind=kind,
            parameters=dict(data.get("parameters") or {}),
            voxels_changed=int(data["voxels_changed"]),
            lesions_added=int(data.get("lesions_added", 0)),
            lesions_removed=int(data.get("lesions_removed", 0)),
            lesions_relabelled=int(data.get("lesions_relabelled", 0)),
            box=tuple((int(a), int(b)) for a, b in box) if box is not None else None,
        )


@dataclass(frozen=True)
class EditResult:
    """An operation's answer: the new ``labels`` (a new array), the changed voxels as a ``box`` and a
    boolean ``changed`` crop on it (None and an empty crop when nothing changed), their values
    ``before`` (uint8, in the crop's C order), and the ``edit`` record."""

    labels: np.ndarray
    box: Box | None
    changed: np.ndarray = field(repr=False)
    before: np.ndarray = field(repr=False)
    edit: Edit

    @property
    def voxels_changed(self) -> int:
        return self.edit.voxels_changed

    def changed_mask(self) -> np.ndarray:
        """Boolean [z, y, x] of the changed voxels on the whole grid."""
        mask = np.zeros(self.labels.shape, dtype=bool)
        if self.box is not None:
            mask[self.box] = self.changed
        return mask

    def indices(self) -> np.ndarray:
        """Flat (C order) indices of the changed voxels on the whole grid, ascending."""
        if self.box is None:
            return np.zeros(0, dtype=np.int64)
        local = np.nonzero(self.changed)
        full = tuple(axis + part.start for axis, part in zip(local, self.box, strict=True))
        return np.ravel_multi_index(full, self.labels.shape).astype(np.int64)

    def after(self) -> np.ndarray:
        """The new values of the changed voxels, in the order of ``indices``."""
        if self.box is None:
            return np.zeros(0, dtype=np.uint8)
        return self.labels[self.box][self.changed]


def _components_without(mask: np.ndarray, other: np.ndarray) -> int:
    """How many 26-connected components of ``mask`` hold no voxel of ``other``."""
    components, count = ndimage.label(mask, structure=FULL_3D)
    if count == 0:
        return 0
    touched = np.unique(components[mask & other])
    return count - int(np.count_nonzero(touched))


def lesion_changes(before: np.ndarray, after: np.ndarray, box: Box) -> tuple[int, int]:
    """(lesions added, lesions removed) by a change confined to ``box``.

    A lesion is new when none of its voxels was tumour before, so all of them changed and it lies in
    the box; a lesion is gone when none of its voxels is tumour after. Looking at the box padded by
    one voxel is therefore exact: a component reaching the padding has an unchanged tumour voxel
    there, so it is neither new nor gone."""
    padded = tuple(slice(max(s.start - 1, 0), min(s.stop + 1, n)) for s, n in zip(box, before.shape, strict=True))
    old = before[padded] == Label.TUMOUR
    new = after[padded] == Label.TUMOUR
    return _components_without(new, old), _components_without(old, new)


def make_result(
    before: np.ndarray,
    after: np.ndarray,
    kind: EditKind,
    parameters: dict[str, Any],
    touched: Box,
    relabelled: int = 0,
) -> EditResult:
    """The EditResult of an operation that wrote ``after`` (a new array) only inside ``touched``."""
    changed = before[touched] != after[touched]
    if not changed.any():
        edit = Edit(kind, parameters, 0, lesions_relabelled=0)
        return EditResult(after, None, np.zeros((0, 0, 0), bool), np.zeros(0, np.uint8), edit)
    local = tuple(np.flatnonzero(changed.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3))
    box: Box = tuple(  # type: ignore[assignment]
        slice(part.start + int(idx[0]), part.start + int(idx[-1]) + 1) for part, idx in zip(touched, local, strict=True)
    )
    crop = before[box] != after[box]
    added, removed = lesion_changes(before, after, box)
    edit = Edit(
        kind,
        parameters,
        voxels_changed=int(np.count_nonzero(crop)),
        lesions_added=added,
        lesions_removed=removed,
        lesions_relabelled=relabelled,
        box=tuple((s.start, s.stop) for s in box),
    )
    return EditResult(after, box, crop, before[box][crop], edit)
