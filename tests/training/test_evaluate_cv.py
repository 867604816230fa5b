"""Cross-validation scoring on the real 3Dircadb1.1 reference: lesions found, missed and invented."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from liverhealth.imaging.ircadb import load_ircadb_case
from training.evaluate_cv import FULL_3D, manifest_metrics, score_case, summarise

pytestmark = pytest.mark.slow  # builds sample folders or scores whole cases: the full gate runs it


@pytest.fixture(scope="module")
def case(data_root):
    return load_ircadb_case(data_root / "3Dircadb1.1")


def test_perfect_prediction(case):
    volume, reference = case
    scores = score_case(reference, reference, volume)
    assert scores["liver_dice"] == 1.0 and scores["tumour_dice"] == 1.0
    assert scores["reference_lesions"] == 7 and scores["lesion_recall"] == 1.0 and scores["false_positives"] == 0
    assert scores["reference_liver_ml"] == pytest.approx(1489.4, abs=0.2)
    # 7 lesions of 0.4 to 84 mL; the smallest measures 10.1 mm across, the largest 80 mm
    assert scores["reference_lesions_10mm"] == 7
    assert min(scores["reference_diameters_mm"]) == pytest.approx(10.1, abs=0.2)
    assert max(scores["reference_diameters_mm"]) == pytest.approx(80.1, abs=0.2)


def test_missed_and_invented_lesions(case):
    volume, reference = case
    components, _ = ndimage.label(reference == 2, structure=FULL_3D)
    sizes = np.bincount(components.ravel())[1:]
    largest = int(np.argmax(sizes)) + 1
    prediction = reference.copy()
    prediction[components == largest] = 1  # miss the 84 mL lesion
    prediction[60, 300:330, 150:180] = 2  # invent a 30-pixel (17 mm) square in the liver, away from every lesion
    assert not (reference[55:66, 290:340, 140:190] == 2).any()
    scores = score_case(prediction, reference, volume)
    assert scores["found"] == 6 and scores["lesion_recall"] == pytest.approx(6 / 7)
    assert scores["false_positives"] == 1 and scores["false_positives_10mm"] == 1
    assert scores["lesion_recall_10mm"] < 1.0 and scores["tumour_dice"] < 0.5
    assert scores["well_outlined"] == 6 and scores["well_outlined_share"] == pytest.approx(6 / 7)


def test_a_lesion_drawn_too_large_is_not_well_outlined(case):
    """Lesion Dice compares each true lesion with the predicted components touching it: the second
    largest lesion drawn three times its size (dilated) falls below 0.5, the others stay at 1."""
    volume, reference = case
    components, _ = ndimage.label(reference == 2, structure=FULL_3D)
    sizes = np.bincount(components.ravel())[1:]
    second = int(np.argsort(sizes)[-2]) + 1
    grown = ndimage.binary_dilation(components == second, iterations=6) & (reference > 0)
    prediction = reference.copy()
    prediction[grown] = 2
    scores = score_case(prediction, reference, volume)
    dices = sorted(scores["lesion_dice"])
    assert scores["found"] == 7 and dices[-1] == 1.0
    assert scores["well_outlined"] < 7
    summary = summarise([{"case": "a", "source": "3D-IRCADb", **scores}])
    assert summary["pooled_well_outlined_share"] == pytest.approx(scores["well_outlined"] / 7)


def test_summary_means_sd_and_global_dice(case):
    volume, reference = case
    perfect = {"case": "a", "source": "3D-IRCADb", **score_case(reference, reference, volume)}
    empty = {"case": "b", "source": "LiTS", **score_case(np.zeros_like(reference), reference, volume)}
    summary = summarise([perfect, empty])
    assert summary["liver_dice"]["mean"] == pytest.approx(0.5) and summary["liver_dice"]["n"] == 2
    assert summary["global_liver_dice"] == pytest.approx(2 / 3)
    assert summary["by_source"]["LiTS"]["liver_dice"]["mean"] == 0.0


def test_manifest_metrics_name_the_weights_they_measured(case):
    """Figures of a model trained on all patients are the recipe's CV means; a fold's own weights
    carry only that fold's scores, and the protocol says which."""
    volume, reference = case
    row = {"case": "3Dircadb1.1", "source": "3D-IRCADb", **score_case(reference, reference, volume)}
    summary = {"folds": ["cv0"], "all": summarise([row])}
    retrained = manifest_metrics(summary)
    assert "trained on all 28 patients" in retrained["protocol"] and "only fold(s) cv0" in retrained["protocol"]
    own = manifest_metrics(summary, weights_fold="cv0")
    assert "trained on fold cv0's training patients" in own["protocol"]
    assert "this fold's own" in own["protocol"] and own["liver_dice"] == 1.0 and own["cv_folds"] == 1
    with pytest.raises(SystemExit, match="only that fold's own scores"):
        manifest_metrics({"folds": ["cv0", "cv1"], "all": summary["all"]}, weights_fold="cv1")
