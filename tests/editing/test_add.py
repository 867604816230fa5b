"""add_lesion outlines a real lesion from one click, changes nothing but what becomes tumour, and
refuses what it cannot do in one line."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from liverhealth import config
from liverhealth.analysis.measure import FULL_3D
from liverhealth.domain import CtVolume, Label, SourceInfo
from liverhealth.editing import DEFAULT_ADD_METHOD, AddMethod, EditKind, add_lesion, remove_lesion
from liverhealth.inference import load_manifest
from tests.editing.conftest import deepest_point, refused

# Measured with the default method (grow) on the seven lesions: 0.61, 0.41, 0.73, 0.05, 0.47, 0.68, 0.43
# (mean 0.49; the fourth is denser than the liver around it and hardly grows).
MEAN_DICE, BEST_DICE = 0.45, 0.7


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.count_nonzero(a & b) / (a.sum() + b.sum())


def _lesion_dice(labels: np.ndarray, lesion: np.ndarray) -> float:
    """A reference lesion against the tumour components overlapping it (as the bench scores it)."""
    components, _ = ndimage.label(labels == Label.TUMOUR, structure=FULL_3D)
    hit = np.unique(components[lesion])
    return _dice(np.isin(components, hit[hit > 0]), lesion)


def test_remove_then_add_gives_each_real_lesion_back(ircadb1, ircadb1_labels, ircadb1_lesions):
    """The reader removes each of 3Dircadb1.1's seven lesions and clicks it back (default method)."""
    components, count = ircadb1_lesions
    scores = []
    for index in range(1, count + 1):
        lesion = components == index
        seed = deepest_point(lesion, ircadb1.spacing)
        removed = remove_lesion(ircadb1_labels, seed, ircadb1.spacing).labels
        result = add_lesion(ircadb1, removed, seed)
        changed = result.changed_mask()
        assert np.all(result.labels[changed] == Label.TUMOUR)
        assert np.array_equal(result.labels[~changed], removed[~changed])
        assert (changed & lesion).any()  # the click's own region (the seed itself may be a noisy voxel)
        assert result.edit.kind == EditKind.ADD_LESION and result.edit.parameters["method"] == DEFAULT_ADD_METHOD
        scores.append(_lesion_dice(result.labels, lesion))
    assert np.mean(scores) >= MEAN_DICE, scores
    assert max(scores) >= BEST_DICE, scores


def test_the_model_method_outlines_with_the_shipped_model(ircadb1, ircadb1_labels, ircadb1_lesions):
    components, _ = ircadb1_lesions
    lesion = components == 1
    seed = deepest_point(lesion, ircadb1.spacing)
    removed = remove_lesion(ircadb1_labels, seed, ircadb1.spacing).labels
    manifest = load_manifest(config.REPO_ROOT / "models")
    result = add_lesion(ircadb1, removed, seed, AddMethod.MODEL, manifest=manifest)
    changed = result.changed_mask()
    assert changed[seed] and np.all(result.labels[changed] == Label.TUMOUR)
    assert _dice(changed, lesion) > 0.3
    record = result.edit.parameters["model"]
    assert record["model_id"] == manifest.default and record["model_sha256"] == manifest.get().sha256


def test_add_lesion_refusals_are_one_line(ircadb1, ircadb1_labels):
    assert "outside" in refused(add_lesion, ircadb1, ircadb1_labels, (64, 512, 10))
    assert "not in the liver" in refused(add_lesion, ircadb1, ircadb1_labels, (64, 20, 20))  # air
    assert "Unknown add-lesion method" in refused(add_lesion, ircadb1, ircadb1_labels, (77, 249, 145), "magic")
    raster = CtVolume(
        voxels=np.zeros((1, 32, 32), np.uint8),
        spacing=None,
        affine=np.eye(4),
        is_hu=False,
        source=SourceInfo("raster", "memory", "test", 1),
    )
    assert "3D CT" in refused(add_lesion, raster, np.zeros((1, 32, 32), np.uint8), (0, 5, 5))
    with pytest.raises(ValueError):  # labels off the CT's grid are a caller's bug, not a reader's mistake
        add_lesion(ircadb1, ircadb1_labels[:10], (5, 5, 5))
