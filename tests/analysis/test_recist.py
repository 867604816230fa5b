"""RECIST 1.1 arithmetic: one constructed case per category, and each threshold at its edge."""

from __future__ import annotations

import numpy as np
import pytest

from liverhealth.analysis.recist import assess, choose_targets


def test_targets_are_the_two_largest_measurable_lesions():
    assert choose_targets({1: 80.0, 2: 9.9, 3: 12.0, 4: 30.0}) == (1, 4)
    assert choose_targets({1: 10.0, 2: 9.99, 3: None}) == (1,)  # 10 mm is measurable, just under is not
    assert choose_targets({1: 9.0}) == ()


def test_complete_response_and_table_1():
    assert assess([30.0, 20.0], [0.0, 0.0]).response == "CR"
    with_non_target = assess([30.0, 20.0], [0.0, 0.0], non_targets_remaining=1)
    assert with_non_target.response == "PR" and "table 1" in " ".join(with_non_target.arithmetic)


@pytest.mark.parametrize(
    ("now", "expected"),
    [([21.0, 14.0], "PR"), ([21.1, 14.0], "SD")],  # exactly −30 % is PR, −29.8 % is not
)
def test_partial_response_at_its_edge(now, expected):
    result = assess([30.0, 20.0], now)
    assert result.response == expected
    assert result.baseline_sum_mm == 50.0 and result.followup_sum_mm == pytest.approx(sum(now))


@pytest.mark.parametrize(
    ("baseline", "prior", "now", "expected"),
    [
        ([15.0, 10.0], [20.0], [15.0, 10.0], "PD"),  # nadir 20 -> 25: +5.0 mm and +25 %
        ([15.0, 10.0], [20.0], [15.0, 9.9], "SD"),  # +4.9 mm (+24.5 %): the 5 mm rule holds it back
        ([25.0, 20.0], [40.0], [28.0, 20.0], "PD"),  # nadir 40 -> 48: +20 % and +8 mm
        ([25.0, 20.0], [40.0], [27.9, 20.0], "SD"),  # +19.75 %
    ],
)
def test_progression_is_measured_from_the_nadir(baseline, prior, now, expected):
    result = assess(baseline, now, prior_sums_mm=prior)
    assert result.response == expected, result.arithmetic
    assert result.nadir_sum_mm == prior[0]
    assert any("Change from nadir" in line for line in result.arithmetic)


def test_a_new_lesion_is_progression_whatever_the_sums():
    result = assess([30.0, 20.0], [15.0, 10.0], new_lesions=1)
    assert result.response == "PD" and "unequivocal" in result.arithmetic[-1]


def test_no_measurable_lesion_at_baseline_is_not_evaluable():
    result = assess([], [])
    assert result.response == "NE" and result.baseline_sum_mm == 0.0


def test_stable_disease_shows_its_arithmetic():
    result = assess([30.0, 20.0], [31.0, 22.0])
    assert result.response == "SD" and result.change_from_baseline_pct == pytest.approx(6.0)
    assert "53.0 − 50.0 = +3.0 mm (+6.0 %)" in " ".join(result.arithmetic)


def test_a_target_reappearing_after_a_complete_response_is_progression():
    assert assess([20.0], [4.0], prior_sums_mm=[0.0]).response == "PD"
    assert assess([20.0], [0.0], prior_sums_mm=[0.0]).response == "CR"


def test_matching_never_trades_an_overlapping_pair_for_distance_pairs():
    from types import SimpleNamespace

    from liverhealth.analysis.followup import match

    two = SimpleNamespace(lesions=[1, 2])
    overlap = np.array([[90, 0], [0, 0]])  # A overlaps X; B is far from both
    found = match(two, two, overlap, np.array([100.0, 50]), np.array([100.0, 50]), np.array([[1.0, 5], [10, 50]]))
    assert found == {"pairs": [(0, 0)], "split": {}, "merged": [], "gone": [1], "new": [1]}
    near = match(two, two, np.zeros((2, 2)), np.ones(2), np.ones(2), np.array([[3.0, 30], [30, 4]]))
    assert near["pairs"] == [(0, 0), (1, 1)]  # no overlap: the centroids within 20 mm pair up
    none = SimpleNamespace(lesions=[])
    assert match(none, two, np.zeros((0, 2)), np.zeros(0), np.ones(2), np.zeros((0, 2)))["new"] == [0, 1]
