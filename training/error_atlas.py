"""Where a model goes wrong on its held-out case: the slices with most errors, drawn.

A Dice score says how much is wrong, not where. The atlas shows, along the volume, the liver
and tumour area per slice (reference against prediction) and the worst slices with both
outlines over the CT, so a researcher sees at a glance whether errors are a missed liver tip,
missed lesions or false positives.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from liverhealth.domain import Label
from liverhealth.imaging.display import apply_preset


def slice_errors(prediction: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Voxels per axial slice where prediction and reference disagree (any label)."""
    return (prediction != reference).reshape(prediction.shape[0], -1).sum(axis=1)


def worst_slices(errors: np.ndarray, count: int, min_gap: int = 5) -> list[int]:
    """Up to ``count`` slice indices with most errors, at least ``min_gap`` apart, in z order.

    The gap keeps the atlas from showing five neighbours of one failure.
    """
    chosen: list[int] = []
    for z in np.argsort(-errors, kind="stable"):
        if errors[z] == 0 or len(chosen) == count:
            break
        if all(abs(int(z) - c) >= min_gap for c in chosen):
            chosen.append(int(z))
    return sorted(chosen)


def _outline(ax, mask: np.ndarray, colour: str, style: str = "-") -> None:
    if mask.any():
        ax.contour(mask.astype(float), levels=[0.5], colors=colour, linewidths=0.8, linestyles=style)


def error_atlas(
    hu: np.ndarray, prediction: np.ndarray, reference: np.ndarray, path: Path, title: str, count: int = 4
) -> list[int]:
    """Write the atlas PNG for one case; returns the slices it shows."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    errors = slice_errors(prediction, reference)
    shown = worst_slices(errors, count)
    fig = plt.figure(figsize=(3 * max(count, 1), 6.2))
    grid = fig.add_gridspec(2, max(count, 1), height_ratios=[1, 1.6])
    curve = fig.add_subplot(grid[0, :])
    z = np.arange(prediction.shape[0])
    area = {
        name: (test(reference).reshape(len(z), -1).sum(axis=1), test(prediction).reshape(len(z), -1).sum(axis=1))
        for name, test in (("liver", lambda a: a > 0), ("tumour", lambda a: a == Label.TUMOUR))
    }
    for (name, (ref, pred)), colour in zip(area.items(), ("tab:green", "tab:orange"), strict=True):
        curve.plot(z, ref, color=colour, label=f"{name} reference")
        curve.plot(z, pred, color=colour, linestyle="--", label=f"{name} predicted")
    for s in shown:
        curve.axvline(s, color="grey", linewidth=0.6)
    curve.set_xlabel("slice")
    curve.set_ylabel("voxels")
    curve.set_title(title, fontsize=9)
    curve.legend(fontsize=7, ncol=4)
    for column, s in enumerate(shown):
        ax = fig.add_subplot(grid[1, column])
        ax.imshow(apply_preset(hu[s], "abdomen"), cmap="gray", vmin=0, vmax=255)
        _outline(ax, reference[s] > 0, "lime")
        _outline(ax, reference[s] == Label.TUMOUR, "yellow")
        _outline(ax, prediction[s] > 0, "red", "--")
        _outline(ax, prediction[s] == Label.TUMOUR, "magenta", "--")
        ax.set_title(f"slice {s}: {int(errors[s])} voxels wrong", fontsize=8)
        ax.axis("off")
    fig.text(
        0.01,
        0.01,
        "solid: reference (green liver, yellow tumour); dashed: model (red liver, magenta tumour)",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return shown
