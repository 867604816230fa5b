"""The engine on real CT with models built here: resizing, 2.5D context, batching, progress."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from liverhealth.errors import Cancelled, ModelError
from liverhealth.imaging import load
from liverhealth.inference import Segmenter, load_manifest
from tests.helpers.onnx_models import make_conv_model, make_threshold_model, manifest_entry, threshold_reference


@pytest.fixture(scope="module")
def ts_volume(data_root):
    return load(data_root / "totalsegmentator" / "example_ct_dicom")


def _manifest(folder, entry):
    (folder / "manifest.json").write_text(json.dumps({"schema": 1, "default": entry["id"], "models": [entry]}))
    return load_manifest(folder)


def test_full_resolution_matches_reference(tmp_path, ts_volume):
    make_threshold_model(tmp_path / "t.onnx", size=None)
    manifest = _manifest(tmp_path, manifest_entry("t", tmp_path / "t.onnx", size=(512, 512)))
    seen = []
    result = Segmenter(manifest, batch_size=6).segment(
        ts_volume, progress=lambda d, t: seen.append((d, t)), clean=False
    )
    reference = threshold_reference(ts_volume.voxels)
    agreement = float((result.labels == reference).mean())
    assert agreement > 0.9999, agreement
    assert seen == [(6, 20), (12, 20), (18, 20), (20, 20)]
    assert result.labels.dtype == np.uint8 and result.labels.shape == ts_volume.shape
    assert {"inference_s", "model_s", "preprocess_s"} <= set(result.timings)


def test_resized_input_agrees_with_reference(tmp_path, ts_volume):
    make_threshold_model(tmp_path / "t.onnx", size=(128, 128))
    manifest = _manifest(tmp_path, manifest_entry("t", tmp_path / "t.onnx", size=(128, 128)))
    labels = Segmenter(manifest).segment(ts_volume, clean=False).labels
    assert float((labels == threshold_reference(ts_volume.voxels)).mean()) > 0.9  # edges blur


def test_context_slices_in_order_with_edges_repeated(tmp_path, ts_volume):
    rng = np.random.default_rng(3)
    weights = rng.normal(0, 1, (3, 5)).astype(np.float32)
    bias = rng.normal(0, 0.1, 3).astype(np.float32)
    make_conv_model(tmp_path / "c.onnx", weights, bias, size=None)
    manifest = _manifest(tmp_path, manifest_entry("c", tmp_path / "c.onnx", size=(512, 512), context=2))
    labels = Segmenter(manifest, batch_size=7).segment(ts_volume, clean=False).labels
    x = np.clip(ts_volume.voxels.astype(np.float64), -200, 200) / 200.0
    padded = np.concatenate([x[:1], x[:1], x, x[-1:], x[-1:]])  # edges repeated
    channels = np.stack([padded[k : k + x.shape[0]] for k in range(5)], axis=1)  # [z, 5, y, x]
    logits = np.einsum("kc,zcyx->zkyx", weights, channels) + bias[None, :, None, None]
    reference = np.argmax(logits, axis=1)
    assert float((labels == reference).mean()) > 0.9999


def test_raster_grey_maps_onto_the_window(tmp_path, models_dir):
    grey = np.zeros((1, 64, 64), np.uint8)
    grey[0, :, 32:] = 255  # white = top of the window = +200 HU -> liver
    grey[0, :, 16:32] = 150  # 150/255 of the window = +35 HU -> tumour
    volume = replace(load_raster_like(grey), voxels=grey)
    labels = Segmenter(load_manifest(models_dir)).segment(volume, clean=False).labels[0]
    assert (labels[:, 40:] == 1).all() and (labels[:, 20:28] == 2).all() and (labels[:, :10] == 0).all()


def load_raster_like(grey):
    from liverhealth.domain import CtVolume, SourceInfo
    from liverhealth.imaging.geometry import LPS_TO_RAS

    return CtVolume(
        voxels=grey, spacing=None, affine=LPS_TO_RAS, is_hu=False, source=SourceInfo("raster", "memory", "test", 1)
    )


def test_cancel_and_bad_output(tmp_path, ts_volume, models_dir):
    with pytest.raises(Cancelled):
        Segmenter(load_manifest(models_dir)).segment(ts_volume, cancel=lambda: True)
    make_conv_model(tmp_path / "two.onnx", np.ones((2, 1), np.float32), np.zeros(2, np.float32), size=(64, 64))
    manifest = _manifest(tmp_path, manifest_entry("two", tmp_path / "two.onnx", size=(64, 64)))
    with pytest.raises(ModelError, match=r"returned shape .* expected \[N, 3"):
        Segmenter(manifest).segment(ts_volume)


def test_cleaned_output_is_one_liver(models_dir, ts_volume):
    """One liver component; anything apart from it is tumour kept within the liver margin."""

    raw = Segmenter(load_manifest(models_dir)).segment(ts_volume, clean=False).labels
    labels = Segmenter(load_manifest(models_dir)).segment(ts_volume).labels
    components, count = ndimage.label(labels > 0)
    sizes = np.bincount(components.ravel())[1:]
    main = int(np.argmax(sizes)) + 1
    assert np.all(labels[(components != main) & (components > 0)] == 2)
    _, raw_count = ndimage.label(raw > 0)
    assert raw_count > 10 * count  # the threshold model's raw output is fragmented


def test_mirrored_test_time_augmentation_lands_back_in_place(tmp_path, ts_volume):
    """A per-pixel model gives the same scores on a mirrored slice mirrored back: with ``flip_lr``
    the labels and confidence must equal the plain run's (a missing flip back would mirror them)."""
    make_threshold_model(tmp_path / "t.onnx", size=None)
    plain_folder, tta_folder = tmp_path / "plain", tmp_path / "tta"
    plain_folder.mkdir()
    tta_folder.mkdir()
    entry = {**manifest_entry("t", tmp_path / "t.onnx", size=(256, 256)), "file": str(tmp_path / "t.onnx")}
    plain = Segmenter(_manifest(plain_folder, entry)).segment(ts_volume, clean=False)
    manifest = _manifest(tta_folder, {**entry, "tta": ["flip_lr"]})
    assert manifest.get().tta == ("flip_lr",)
    mirrored = Segmenter(manifest).segment(ts_volume, clean=False)
    assert not np.array_equal(plain.labels, plain.labels[..., ::-1])  # the CT is not symmetric
    assert np.array_equal(mirrored.labels, plain.labels)
    assert np.array_equal(mirrored.confidence, plain.confidence)


def test_an_unknown_test_time_augmentation_is_refused(tmp_path):
    make_threshold_model(tmp_path / "t.onnx", size=None)
    with pytest.raises(ModelError, match=r"'t': tta \['rotate'\] is not supported"):
        _manifest(tmp_path, {**manifest_entry("t", tmp_path / "t.onnx"), "tta": ["rotate"]})


def test_a_decoding_threshold_shifts_the_tumour_logit(tmp_path, ts_volume):
    """``decoding.tumour_threshold`` 0.3 makes tumour win where its pairwise probability is at
    least 0.3: the labels must equal the model's arithmetic with log(0.7 / 0.3) added to the tumour
    logit, and hold more tumour than the plain arg-max."""
    make_threshold_model(tmp_path / "t.onnx", size=None)
    entry = {**manifest_entry("t", tmp_path / "t.onnx", size=(512, 512)), "file": str(tmp_path / "t.onnx")}
    plain_folder, low_folder = tmp_path / "plain", tmp_path / "low"
    plain_folder.mkdir()
    low_folder.mkdir()
    manifest = _manifest(low_folder, {**entry, "decoding": {"tumour_threshold": 0.3, "chosen_on": "a test"}})
    assert manifest.get().decoding.chosen_on == "a test"
    low = Segmenter(manifest).segment(ts_volume, clean=False).labels
    plain = Segmenter(_manifest(plain_folder, entry)).segment(ts_volume, clean=False).labels
    reference = threshold_reference(ts_volume.voxels, tumour_bias=float(np.log(0.7 / 0.3)))
    assert float((low == reference).mean()) > 0.9999
    assert (low == 2).sum() > 1.2 * (plain == 2).sum()


def test_a_decoding_minimum_lesion_size_drops_smaller_tumours(tmp_path, ts_volume):
    make_threshold_model(tmp_path / "t.onnx", size=None)
    entry = {**manifest_entry("t", tmp_path / "t.onnx", size=(512, 512)), "file": str(tmp_path / "t.onnx")}
    counts = {}
    for minimum in (20, 5000):
        folder = tmp_path / f"m{minimum}"
        folder.mkdir()
        labels = Segmenter(_manifest(folder, {**entry, "decoding": {"min_lesion_mm3": minimum}})).segment(ts_volume)
        _, counts[minimum] = ndimage.label(labels.labels == 2)
    assert 0 < counts[5000] < counts[20]


@pytest.mark.parametrize(
    ("decoding", "message"),
    [
        ({"tumour_threshold": 0.99}, "tumour_threshold must be a number in"),
        ({"tumour_threshold": True}, "tumour_threshold must be a number in"),
        ({"min_lesion_mm3": -1}, "min_lesion_mm3 must be a number in"),
        ({"threshold": 0.4}, "must be an object with"),
        ([0.4], "must be an object with"),
    ],
)
def test_a_bad_decoding_block_is_refused(tmp_path, decoding, message):
    make_threshold_model(tmp_path / "t.onnx", size=None)
    with pytest.raises(ModelError, match=f"'t': decoding {message}"):
        _manifest(tmp_path, {**manifest_entry("t", tmp_path / "t.onnx"), "decoding": decoding})


def test_a_decoding_threshold_needs_logits(tmp_path):
    make_threshold_model(tmp_path / "t.onnx", size=None)
    entry = {**manifest_entry("t", tmp_path / "t.onnx"), "output": "probabilities"}
    with pytest.raises(ModelError, match="needs a model whose output is logits"):
        _manifest(tmp_path, {**entry, "decoding": {"tumour_threshold": 0.4}})
