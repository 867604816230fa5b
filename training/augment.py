"""Training-time augmentation of (image, label) pairs: numpy in, numpy out.

Users import flipped, rotated, rescaled and already-windowed images, so the models see
flips, small rotations, scale changes and intensity changes (contrast, brightness, gamma,
noise) during training.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentConfig:
    flip_lr: float = 0.5
    flip_ud: float = 0.2
    rotate_deg: float = 15.0
    scale: tuple[float, float] = (0.85, 1.15)
    intensity: float = 0.8
    noise: float = 0.3


def geometric(
    image: np.ndarray, label: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Random flips, then one affine warp (rotation + scale) about the centre."""
    if rng.random() < cfg.flip_lr:
        image, label = image[:, ::-1], label[:, ::-1]
    if rng.random() < cfg.flip_ud:
        image, label = image[::-1], label[::-1]
    height, width = label.shape
    angle = rng.uniform(-cfg.rotate_deg, cfg.rotate_deg)
    scale = rng.uniform(*cfg.scale)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, scale)
    image = cv2.warpAffine(
        np.ascontiguousarray(image),
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    label = cv2.warpAffine(
        np.ascontiguousarray(label),
        matrix,
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
    return image, label


def photometric(unit: np.ndarray, cfg: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Contrast, brightness and gamma changes and noise on an image scaled to [0, 1]."""
    if rng.random() < cfg.intensity:
        unit = unit * rng.uniform(0.85, 1.15) + rng.uniform(-0.06, 0.06)
        unit = np.clip(unit, 0.0, 1.0) ** rng.uniform(0.8, 1.25)
    if rng.random() < cfg.noise:
        unit = unit + rng.normal(0.0, rng.uniform(0.005, 0.03), unit.shape)
    return np.clip(unit, 0.0, 1.0).astype(np.float32)
