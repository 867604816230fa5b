"""Follow-up comparison on a real CT (3Dircadb1.1 and its expert labels) with known truth: the
follow-up is the baseline with known lesion changes, moved by a known affine transform."""

from __future__ import annotations

import numpy as np
import pytest

from liverhealth.analysis.followup import compare_studies, lesion_map
from liverhealth.analysis.measure import measure
from liverhealth.imaging.ircadb import load_ircadb_case
from tests.helpers import followup as build

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def baseline(data_root):
    volume, labels = load_ircadb_case(data_root / "3Dircadb1.1")
    return volume, labels, measure(volume, labels)


@pytest.fixture(scope="module")
def changed(baseline):
    """Lesion 2 grown by 3 mm, lesion 3 shrunk by 2 mm, lesion 5 removed, one lesion added; moved."""
    volume, labels, _ = baseline
    hu, edited = volume.voxels.copy(), labels.copy()
    second = lesion_map(labels) == 2
    build.grow(hu, edited, volume.spacing, 2, 3.0)
    build.shrink(hu, edited, volume.spacing, 3, 2.0)
    build.remove(hu, edited, 5)
    added = build.add(hu, edited, volume.spacing, seed=3)
    matrix = build.known_transform(volume)
    follow, follow_labels = build.moved(volume, hu, edited, matrix)
    grown_voxels = int(np.count_nonzero(lesion_map(edited) == lesion_map(edited)[second].max()))
    return follow, follow_labels, matrix, added, grown_voxels * volume.voxel_mm3 / 1000.0


@pytest.fixture(scope="module")
def compared(baseline, changed):
    volume, labels, base_m = baseline
    follow, follow_labels, *_ = changed
    return compare_studies(volume, labels, base_m, follow, follow_labels, measure(follow, follow_labels))


def test_registration_error_at_the_liver_is_under_2_mm(baseline, changed, compared):
    volume, labels, _ = baseline
    matrix = changed[2]
    _, registration = compared
    z, y, x = np.nonzero(labels > 0)
    pick = np.random.default_rng(0).choice(len(z), 5000, replace=False)
    points = (np.c_[x[pick], y[pick], z[pick], np.ones(5000)] @ volume.affine.T)[:, :3]
    truth = points @ matrix[:3, :3].T + matrix[:3, 3]
    error = np.linalg.norm(registration.to_followup(points) - truth, axis=1)
    assert error.mean() < 2.0 and np.percentile(error, 95) < 2.0, (error.mean(), np.percentile(error, 95))
    assert registration.liver_dice > 0.95 > registration.liver_dice_before


def test_lesions_are_matched_with_their_known_changes(baseline, changed, compared):
    _, _, base_m = baseline
    follow, _, matrix, added, grown_ml = changed
    comparison, registration = compared
    by_id = {c.baseline_id: c for c in comparison.lesions if c.baseline_id is not None}
    assert by_id[5].status == "gone" and by_id[5].followup_diameter_mm == 0.0
    for lesion in (1, 4, 6, 7):
        assert by_id[lesion].status == "matched", lesion
        assert abs(by_id[lesion].volume_change_pct) < 10, (lesion, by_id[lesion])
        assert abs(by_id[lesion].diameter_change_mm) < 2.5, (lesion, by_id[lesion])
    grown, shrunk = by_id[2], by_id[3]
    assert grown.status == "matched" and grown.volume_change_pct > 40 and grown.diameter_change_mm > 4
    assert shrunk.status == "matched" and shrunk.volume_change_pct < -30 and shrunk.diameter_change_mm < -2
    scale = abs(np.linalg.det(matrix[:3, :3]))  # the move's scaling changes volumes too
    assert grown.followup_volume_ml == pytest.approx(grown_ml * scale, rel=0.05)
    new = [c for c in comparison.lesions if c.status == "new"]
    assert len(new) == 1
    painted_at = np.array((*added.centre_zyx[::-1], 1), dtype=float) @ follow.affine.T
    new_lesion = next(les for les in measure(follow, changed[1]).lesions if les.lesion_id == new[0].followup_ids[0])
    found_at = registration.to_baseline(np.array(new_lesion.centroid_mm))[0]
    assert np.linalg.norm(found_at - painted_at[:3]) < 8.0
    assert comparison.recist.response == "PD" and comparison.recist.new_lesions == 1
    assert comparison.recist.targets == (1, 2)
    assert comparison.recist.baseline_sum_mm == pytest.approx(
        round(base_m.lesions[0].longest_diameter_mm, 1) + round(base_m.lesions[1].longest_diameter_mm, 1)
    )


def _variant(baseline, registration, edit):
    """Another follow-up under the same move (the registration is reused: only lesions differ)."""
    volume, labels, base_m = baseline
    hu, edited = volume.voxels.copy(), labels.copy()
    edit(hu, edited)
    follow, follow_labels = build.moved(volume, hu, edited, build.known_transform(volume))
    comparison, _ = compare_studies(
        volume, labels, base_m, follow, follow_labels, measure(follow, follow_labels), registration=registration
    )
    return comparison


def test_recist_categories_through_matching(baseline, compared):
    registration = compared[1]

    def remove(*lesions):
        return lambda hu, labels: [build.remove(hu, labels, i) for i in sorted(lesions, reverse=True)]

    assert _variant(baseline, registration, lambda hu, labels: None).recist.response == "SD"
    targets_gone = _variant(baseline, registration, remove(1, 2))
    assert targets_gone.recist.response == "PR" and "non-target" in " ".join(targets_gone.recist.arithmetic)
    assert _variant(baseline, registration, remove(1, 2, 3, 4, 5, 6, 7)).recist.response == "CR"


def test_registration_time_is_reported(compared):
    assert 0 < compared[1].seconds < 600
    print(f"registration: {compared[1].seconds:.1f} s")
