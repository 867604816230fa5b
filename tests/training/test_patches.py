"""Lesion-centred tiles (training/patches.py) on real stage-2 samples of 3Dircadb1.1."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import AugmentConfig
from training.patches import PatchConfig, PatchSampler, cut_tile, lesion_table
from training.preprocess import load_case

NO_AUG = AugmentConfig(flip_lr=0, flip_ud=0, rotate_deg=0, scale=(1.0, 1.0), intensity=0, noise=0)


@pytest.fixture(scope="module")
def samples(data_root):
    """3Dircadb1.1's liver slices (every 3rd), cropped to a 224² window over the liver, as training holds them."""
    hu, labels, _ = load_case("ircadb", data_root / "3Dircadb1.1", None, "")
    zs = np.flatnonzero((labels > 0).any(axis=(1, 2)))[::3]
    ys, xs = np.nonzero((labels[zs] > 0).any(axis=0))
    y0, x0 = max(int(ys.mean()) - 112, 0), max(int(xs.mean()) - 112, 0)
    crop = labels[zs, y0 : y0 + 224, x0 : x0 + 224]
    image = np.clip((hu[zs, y0 : y0 + 224, x0 : x0 + 224] + 40) / 200 * 255, 0, 255).astype(np.uint8)
    assert crop.shape[1:] == (224, 224) and (crop == 2).any()
    return np.repeat(image[..., None], 3, axis=-1), crop


def test_lesion_table_finds_every_2d_tumour_component(samples):
    _, labels = samples
    table = lesion_table(labels)
    assert len(table) > 0
    assert set(table[:, 0].astype(int)) == set(np.flatnonzero((labels == 2).any(axis=(1, 2))))
    assert table[:, 3].sum() == np.count_nonzero(labels == 2)  # the components' areas add up to the tumour


def test_share_of_tiles_centred_on_a_lesion_and_small_lesions_oversampled(samples):
    _, labels = samples
    sampler = PatchSampler(labels, PatchConfig(size=96, lesion_fraction=0.4, edge_fraction=0.2, jitter=0.0))
    centres = sampler.centres(3000, np.random.default_rng(1))
    pools = [c[3] for c in centres]
    assert pools.count("lesion") / len(pools) == pytest.approx(0.4, abs=0.03)
    assert pools.count("edge") / len(pools) == pytest.approx(0.2, abs=0.03)
    on_tumour = [labels[i, round(y), round(x)] == 2 for i, y, x, p in centres if p == "lesion"]
    assert np.mean(on_tumour) > 0.8  # a lesion-centred tile is centred on tumour (centroids of odd shapes may miss)
    areas = sampler.lesions[:, 3]
    small = areas < np.median(areas)
    # Drawn per component with weight area^-0.5: the small half is drawn more often than its share of pixels.
    assert sampler.lesion_weights[small].sum() > areas[small].sum() / areas.sum()


def test_tile_keeps_the_box_pixel_size(samples):
    """Without rotation or scale a tile is an exact crop of the sample: same pixels, same labels."""
    images, labels = samples
    index = int(np.flatnonzero((labels == 2).any(axis=(1, 2)))[0])
    tile, tile_label = cut_tile(images[index], labels[index], (112.0, 100.0), 96, NO_AUG, np.random.default_rng(0))
    assert tile.shape == (96, 96, 3) and tile_label.shape == (96, 96)
    assert np.array_equal(tile, images[index, 64:160, 52:148])
    assert np.array_equal(tile_label, labels[index, 64:160, 52:148])


def test_the_sampler_resumes_from_its_generator_state(samples):
    """What a checkpoint keeps (the generator's state) gives the same next tiles as an uninterrupted run."""
    _, labels = samples
    sampler = PatchSampler(labels, PatchConfig(size=128))
    straight = np.random.default_rng(7)
    sampler.centres(20, straight)
    saved = straight.bit_generator.state
    expected = sampler.centres(20, straight)
    resumed = np.random.default_rng(0)
    resumed.bit_generator.state = saved
    assert sampler.centres(20, resumed) == expected


def test_patch_config_refuses_sizes_the_network_cannot_take():
    with pytest.raises(ValueError, match="multiple of 16"):
        PatchConfig(size=100)
    with pytest.raises(ValueError, match="lesion_fraction"):
        PatchConfig(lesion_fraction=0.8, edge_fraction=0.4)
