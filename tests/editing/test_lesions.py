"""remove_lesion and relabel_lesion change exactly the clicked lesion (or region), nothing else."""

from __future__ import annotations

import numpy as np

from liverhealth.domain import Label
from liverhealth.editing import EditKind, relabel_lesion, remove_lesion
from tests.editing.conftest import deepest_point, refused


def _lesion(lesions, index):
    components, _ = lesions
    return components == index


def test_remove_lesion_turns_exactly_that_lesion_into_liver(ircadb1, ircadb1_labels, ircadb1_lesions):
    _, count = ircadb1_lesions
    assert count == 7
    lesion = _lesion(ircadb1_lesions, 2)
    seed = deepest_point(lesion, ircadb1.spacing)
    result = remove_lesion(ircadb1_labels, seed, ircadb1.spacing)
    assert np.array_equal(result.changed_mask(), lesion)
    assert np.all(result.labels[lesion] == Label.LIVER)
    assert result.edit.kind == EditKind.REMOVE_LESION
    assert (result.edit.voxels_changed, result.edit.lesions_removed, result.edit.lesions_added) == (
        int(lesion.sum()),
        1,
        0,
    )
    assert np.array_equal(np.asarray(result.before), np.full(int(lesion.sum()), Label.TUMOUR))


def test_a_click_beside_a_lesion_takes_the_nearest_one_within_reach(ircadb1, ircadb1_labels, ircadb1_lesions):
    lesion = _lesion(ircadb1_lesions, 6)  # the smallest (766 voxels)
    z, ys, xs = np.nonzero(lesion)
    top = int(ys.min())
    column = int(xs[ys == top][0])
    slice_ = int(z[ys == top][0])
    beside = (slice_, top - 5, column)  # 5 pixels (2.9 mm) above its edge, on liver
    assert ircadb1_labels[beside] != Label.TUMOUR
    result = remove_lesion(ircadb1_labels, beside, ircadb1.spacing)
    assert np.array_equal(result.changed_mask(), lesion)
    far = (slice_, top - 30, column)  # 17 mm away
    assert "no lesion" in refused(remove_lesion, ircadb1_labels, far, ircadb1.spacing)
    refused(remove_lesion, ircadb1_labels, (129, 0, 0))


def test_relabel_to_liver_is_a_reclassification_of_the_lesion_under_the_click(ircadb1, ircadb1_labels, ircadb1_lesions):
    lesion = _lesion(ircadb1_lesions, 3)
    result = relabel_lesion(ircadb1_labels, deepest_point(lesion, ircadb1.spacing), Label.LIVER)
    assert np.array_equal(result.changed_mask(), lesion)
    assert result.edit.lesions_relabelled == 1 and result.edit.kind == EditKind.RELABEL_LESION
    assert "not on a lesion" in refused(relabel_lesion, ircadb1_labels, (77, 249, 145), Label.LIVER)


def test_relabel_a_hidden_lesion_back_to_tumour_grows_it_inside_the_liver_only(
    ircadb1, ircadb1_labels, ircadb1_lesions
):
    lesion = _lesion(ircadb1_lesions, 3)
    hidden = ircadb1_labels.copy()
    hidden[lesion] = Label.LIVER  # the model called it liver
    seed = deepest_point(lesion, ircadb1.spacing)
    result = relabel_lesion(hidden, seed, Label.TUMOUR, volume=ircadb1)
    changed = result.changed_mask()
    assert changed[seed] and np.all(hidden[changed] == Label.LIVER)  # never past the liver label
    assert np.all(result.labels[changed] == Label.TUMOUR)
    assert result.edit.lesions_added == 1 and result.edit.parameters["to"] == 2
    overlap = 2 * np.count_nonzero(changed & lesion) / (changed.sum() + lesion.sum())
    assert overlap > 0.5, overlap
    assert "needs the CT" in refused(relabel_lesion, hidden, seed, Label.TUMOUR)
    refused(relabel_lesion, hidden, (10, 10, 10), Label.TUMOUR, volume=ircadb1)  # background, not liver
    refused(relabel_lesion, hidden, seed, Label.BACKGROUND, volume=ircadb1)
