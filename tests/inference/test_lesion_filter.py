"""The lesion-level false-positive filter: its manifest block is checked whole, its features are
measured on real CT and labels, and the engine drops exactly the components it rejects."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from liverhealth import config
from liverhealth.domain import Label
from liverhealth.errors import ModelError
from liverhealth.imaging.ircadb import ircadb_labels
from liverhealth.inference import Segmenter, load_manifest
from liverhealth.inference.lesion_filter import (
    FEATURES,
    LesionFilter,
    apply_lesion_filter,
    lesion_features,
    parse_lesion_filter,
    tumour_components,
)


def _block(**change) -> dict:
    block = {
        "features": list(FEATURES),
        "mean": [0.0] * len(FEATURES),
        "scale": [1.0] * len(FEATURES),
        "coef": [0.0] * len(FEATURES),
        "intercept": 0.0,
        "threshold": 0.5,
        "provenance": {"fitted_on": "a test"},
    }
    block.update(change)
    return block


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"features": ["volume"]}, "features"),
        ({"mean": [0.0]}, "'mean' must be"),
        ({"scale": [0.0] * len(FEATURES)}, "scales must be positive"),
        ({"coef": [float("nan")] * len(FEATURES)}, "'coef' must be"),
        ({"threshold": 1.5}, "threshold"),
        ({"intercept": "high"}, "intercept"),
    ],
)
def test_a_broken_filter_block_is_refused_whole(change, message):
    with pytest.raises(ModelError, match=message):
        parse_lesion_filter("m", _block(**change))
    assert parse_lesion_filter("m", None) is None
    assert parse_lesion_filter("m", _block()).threshold == 0.5


@pytest.fixture(scope="module")
def expert(data_root, ircadb1):
    return ircadb_labels(data_root / "3Dircadb1.1", ircadb1.shape)


def test_features_of_real_lesions(ircadb1, expert):
    rows = lesion_features(ircadb1.voxels, expert, None, ircadb1.spacing)
    assert len(rows) == len(tumour_components(expert)) > 0
    voxel_ml = float(np.prod(ircadb1.spacing)) / 1000
    for crop, offset, values in rows:
        assert set(values) == set(FEATURES)
        assert values["log_volume_ml"] == pytest.approx(np.log(crop.sum() * voxel_ml))
        box = tuple(slice(o, o + n) for o, n in zip(offset, crop.shape, strict=True))
        assert values["mean_hu"] == pytest.approx(float(ircadb1.voxels[box][crop].mean()))
        assert values["depth_mm"] > 0 and 0 <= values["edge_fraction"] <= 1
        assert values["slices"] == float(crop.any(axis=(1, 2)).sum())


def test_apply_drops_only_the_rejected_components(ircadb1, expert):
    keep_all = parse_lesion_filter("m", _block(intercept=10.0))
    same, rejected = apply_lesion_filter(ircadb1.voxels, expert, None, ircadb1.spacing, keep_all)
    assert rejected == 0 and same is expert
    # reject components smaller than 1 mL: p = sigmoid(20 * (log_volume_ml - ln 1))
    by_size = LesionFilter(("log_volume_ml",), (0.0,), (1.0,), (20.0,), 0.0, 0.5, {})
    out, rejected = apply_lesion_filter(ircadb1.voxels, expert, None, ircadb1.spacing, by_size)
    voxel_ml = float(np.prod(ircadb1.spacing)) / 1000
    small = [c for c, _ in tumour_components(expert) if c.sum() * voxel_ml < 1.0]
    assert rejected == len(small) > 0
    assert len(tumour_components(out)) == len(tumour_components(expert)) - len(small)
    assert np.array_equal(out > 0, expert > 0)  # a rejected lesion becomes liver, never background
    assert (out == Label.TUMOUR).sum() < (expert == Label.TUMOUR).sum()


def test_the_engine_applies_a_manifest_filter(tmp_path, ircadb1):
    shipped = config.REPO_ROOT / "models"
    raw = json.loads((shipped / "manifest.json").read_text())
    for entry in (*raw["models"], *raw.get("stages", [])):
        entry["file"] = str(shipped / entry["file"])
    default = next(m for m in raw["models"] if m["id"] == raw["default"])
    default.pop("lesion_filter", None)  # the shipped model's own filter off: the plain output
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "manifest.json").write_text(json.dumps(raw))
    default["lesion_filter"] = _block(intercept=-10.0)  # rejects every lesion
    (tmp_path / "manifest.json").write_text(json.dumps(raw))
    manifest = load_manifest(tmp_path)
    assert manifest.get().lesion_filter is not None
    volume = replace(ircadb1, voxels=ircadb1.voxels[40:80])  # a 40-slice slab through the lesions
    volume = replace(volume, affine=ircadb1.affine)
    filtered = Segmenter(manifest).segment(volume)
    plain = Segmenter(load_manifest(tmp_path / "plain")).segment(volume)
    assert not (filtered.labels == Label.TUMOUR).any()
    assert filtered.timings["lesions_filtered"] == len(tumour_components(plain.labels)) > 0
    assert np.array_equal(filtered.labels > 0, plain.labels > 0)
