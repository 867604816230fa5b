"""Lesion-centred tiles for stage-2 training: numpy in, numpy out.

A stage-2 sample is the liver's box resized to the model's input (224²). Training on the whole
box spends most of each step on liver and background the model already knows; a tile of
96–128² cut from the box at the same pixel size costs a third to a fifth of it, and where the
tile is centred decides what a step teaches. Inference stays fully convolutional on the whole
box, so nothing changes in the app.

Centres are drawn from three pools: a lesion (each 2D tumour component picked with weight
``area ** -small_lesion_power``, so small lesions come up more often than their pixels would
say), the liver's edge (capsule and hilum, where the false positives of the earlier models
sit), and anywhere in the box.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.augment import AugmentConfig

TUMOUR = 2


@dataclass(frozen=True)
class PatchConfig:
    """How tiles are cut: size in pixels and the share of each pool of centres."""

    size: int = 128
    lesion_fraction: float = 0.4
    edge_fraction: float = 0.2
    small_lesion_power: float = 0.5
    jitter: float = 0.25  # centre moved by up to this fraction of the tile, so a lesion is not always central

    def __post_init__(self) -> None:
        if self.size % 16:
            raise ValueError(f"patch size {self.size} must be a multiple of 16 (four poolings)")
        if self.lesion_fraction + self.edge_fraction > 1 or min(self.lesion_fraction, self.edge_fraction) < 0:
            raise ValueError("lesion_fraction + edge_fraction must lie in [0, 1]")


def lesion_table(labels: np.ndarray) -> np.ndarray:
    """One row per 2D tumour component of every sample: (sample index, centre y, centre x, area)."""
    rows = []
    for index in np.flatnonzero((labels == TUMOUR).reshape(len(labels), -1).any(axis=1)):
        count, _, stats, centroids = cv2.connectedComponentsWithStats(
            (labels[index] == TUMOUR).astype(np.uint8), connectivity=8
        )
        for component in range(1, count):
            cx, cy = centroids[component]
            rows.append((index, cy, cx, stats[component, cv2.CC_STAT_AREA]))
    return np.array(rows, np.float64).reshape(-1, 4)


class PatchSampler:
    """Draws tile centres for a set of samples; all randomness comes from the caller's generator."""

    def __init__(self, labels: np.ndarray, config: PatchConfig) -> None:
        self.labels = labels
        self.config = config
        self.lesions = lesion_table(labels)
        weights = self.lesions[:, 3] ** -config.small_lesion_power if len(self.lesions) else np.zeros(0)
        self.lesion_weights = weights / weights.sum() if len(weights) else weights
        liver = ((labels == 1) | (labels == TUMOUR)).reshape(len(labels), -1).any(axis=1)
        self.liver_samples = np.flatnonzero(liver)

    def _edge_centre(self, index: int, rng: np.random.Generator) -> tuple[float, float]:
        organ = ((self.labels[index] == 1) | (self.labels[index] == TUMOUR)).astype(np.uint8)
        edge = cv2.morphologyEx(organ, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
        ys, xs = np.nonzero(edge)
        pick = rng.integers(len(ys))
        return float(ys[pick]), float(xs[pick])

    def centres(self, count: int, rng: np.random.Generator) -> list[tuple[int, float, float, str]]:
        """``count`` tile centres as (sample index, y, x, pool)."""
        cfg = self.config
        _, height, width = self.labels.shape
        out = []
        for _ in range(count):
            draw = rng.random()
            if draw < cfg.lesion_fraction and len(self.lesions):
                row = self.lesions[rng.choice(len(self.lesions), p=self.lesion_weights)]
                index, y, x, pool = int(row[0]), row[1], row[2], "lesion"
            elif draw < cfg.lesion_fraction + cfg.edge_fraction and len(self.liver_samples):
                index = int(rng.choice(self.liver_samples))
                (y, x), pool = self._edge_centre(index, rng), "edge"
            else:
                index = int(rng.integers(len(self.labels)))
                y, x, pool = rng.uniform(0, height), rng.uniform(0, width), "any"
            shift = cfg.jitter * cfg.size
            y, x = y + rng.uniform(-shift, shift), x + rng.uniform(-shift, shift)
            out.append((index, float(np.clip(y, 0, height - 1)), float(np.clip(x, 0, width - 1)), pool))
        return out


def cut_tile(
    image: np.ndarray,
    label: np.ndarray,
    centre_yx: tuple[float, float],
    size: int,
    aug: AugmentConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A ``size``² tile around ``centre_yx``, rotated and scaled about that centre in one warp.

    Only the tile's own pixels are computed, so the warp costs (size / box)² of a whole-box one.
    Outside the box the image is 0 (the window's floor, as the engine pads) and the label background.
    """
    if rng.random() < aug.flip_lr:
        image, label = image[:, ::-1], label[:, ::-1]
        centre_yx = (centre_yx[0], label.shape[1] - 1 - centre_yx[1])
    if rng.random() < aug.flip_ud:
        image, label = image[::-1], label[::-1]
        centre_yx = (label.shape[0] - 1 - centre_yx[0], centre_yx[1])
    cy, cx = centre_yx
    matrix = cv2.getRotationMatrix2D((cx, cy), rng.uniform(-aug.rotate_deg, aug.rotate_deg), rng.uniform(*aug.scale))
    matrix[:, 2] += (size / 2 - cx, size / 2 - cy)
    tile = cv2.warpAffine(
        np.ascontiguousarray(image), matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    tile_label = cv2.warpAffine(
        np.ascontiguousarray(label), matrix, (size, size), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT
    )
    return tile, tile_label
