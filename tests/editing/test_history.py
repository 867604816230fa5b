"""Undo and redo round-trip exactly and keep only the changed voxels."""

from __future__ import annotations

import json

import numpy as np

from liverhealth.domain import Label
from liverhealth.editing import Edit, EditHistory, EditKind, erase, fill_between_slices, paint, remove_lesion
from tests.editing.conftest import deepest_point, refused


def _twenty_edits(history: EditHistory, volume, lesions) -> list[np.ndarray]:
    """Twenty edits of every kind but add_lesion (its own tests), each on the current labels; the
    labels after each."""
    spacing = volume.spacing
    components, _ = lesions
    states = []
    labels = history.labels
    for step in range(20):
        z = 40 + 4 * step
        if step == 5:
            result = remove_lesion(labels, deepest_point(components == 1, spacing), spacing)  # 162,337 voxels
        elif step == 9:
            result = fill_between_slices(labels, Label.TUMOUR, z - 8, z - 4, spacing)
        elif step % 3 == 0:
            result = erase(labels, spacing, z, (250, 150), 12.0, Label.LIVER)
        else:
            result = paint(labels, spacing, z, (250, 150 + step), 4.0 + step, Label.TUMOUR)
        labels = history.apply(result)
        states.append(labels)
    return states


def test_twenty_edits_undo_and_redo_exactly_and_stay_small(ircadb1, ircadb1_labels, ircadb1_lesions):
    history = EditHistory(ircadb1_labels)
    states = _twenty_edits(history, ircadb1, ircadb1_lesions)
    assert len(history.edits) == 20 and not history.can_redo
    assert history.nbytes < 0.05 * ircadb1_labels.nbytes  # measured 1.2 MB against a 33.8 MB label map
    for expected in reversed([ircadb1_labels, *states[:-1]]):
        assert np.array_equal(history.undo(), expected)
    assert not history.can_undo
    assert "Nothing to undo" in refused(history.undo)
    for expected in states:
        assert np.array_equal(history.redo(), expected)
    assert "Nothing to redo" in refused(history.redo)


def test_a_new_edit_after_undo_drops_the_redo_branch(ircadb1, ircadb1_labels):
    history = EditHistory(ircadb1_labels)
    first = history.apply(paint(ircadb1_labels, ircadb1.spacing, 60, (250, 150), 5.0, Label.TUMOUR))
    history.apply(paint(first, ircadb1.spacing, 61, (250, 150), 5.0, Label.TUMOUR))
    back = history.undo()
    assert history.can_redo
    history.apply(erase(back, ircadb1.spacing, 60, (250, 150), 5.0, Label.TUMOUR))
    assert not history.can_redo and len(history.edits) == 2
    assert [e.kind for e in history.edits] == [EditKind.PAINT, EditKind.ERASE]
    assert np.array_equal(history.labels, ircadb1_labels)  # the erase took the first paint back to liver


def test_an_edit_made_on_other_labels_is_refused(ircadb1, ircadb1_labels):
    history = EditHistory(ircadb1_labels)
    stale = paint(ircadb1_labels, ircadb1.spacing, 60, (250, 150), 5.0, Label.TUMOUR)
    history.apply(erase(ircadb1_labels, ircadb1.spacing, 60, (250, 150), 8.0, Label.LIVER))
    assert "other labels" in refused(history.apply, stale)
    assert len(history.edits) == 1


def test_the_labels_handed_out_are_copies(ircadb1_labels):
    history = EditHistory(ircadb1_labels)
    labels = history.labels
    labels[:] = 0
    assert np.array_equal(history.labels, ircadb1_labels)


def test_an_edit_record_round_trips_through_json(ircadb1, ircadb1_labels, ircadb1_lesions):
    components, _ = ircadb1_lesions
    result = remove_lesion(ircadb1_labels, deepest_point(components == 4, ircadb1.spacing), ircadb1.spacing)
    text = json.dumps(result.edit.to_dict())
    again = Edit.from_dict(json.loads(text))
    assert again == result.edit
    assert again.box == tuple((s.start, s.stop) for s in result.box)
    data = result.edit.to_dict()
    assert data["kind"] == "remove_lesion" and data["lesions_removed"] == 1 and data["schema"] == 1
    assert "schema" in refused(Edit.from_dict, {**data, "schema": 2})
    assert "unknown kind" in refused(Edit.from_dict, {**data, "kind": "smudge"})
