"""Render examples of synthetic tumours: original slice, painted slice, and the label outline.

python -m training.preview_synthetic --case ../shared/data/3Dircadb1.7 --out docs/synthetic_tumours.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from liverhealth.imaging.display import WINDOW_PRESETS, apply_window, overlay_labels
from liverhealth.imaging.ircadb import load_ircadb_case
from training.synthetic import paint_lesions


def crop_around(image: np.ndarray, centre: tuple[int, int], half: int) -> np.ndarray:
    y, x = centre
    y0, x0 = max(y - half, 0), max(x - half, 0)
    return image[y0 : y0 + 2 * half, x0 : x0 + 2 * half]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--examples", type=int, default=6)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)
    volume, labels = load_ircadb_case(args.case)
    window = WINDOW_PRESETS["liver"]
    rows = []
    for k in range(args.examples):
        hu, painted, lesions = paint_lesions(volume.voxels, labels, volume.spacing, count=1, seed=args.seed + k)
        if not lesions:
            continue
        z, y, x = lesions[0].centre_zyx
        before = apply_window(volume.voxels[z], window.center, window.width)
        after = apply_window(hu[z], window.center, window.width)
        tiles = [
            cv2.cvtColor(before, cv2.COLOR_GRAY2RGB),
            cv2.cvtColor(after, cv2.COLOR_GRAY2RGB),
            overlay_labels(after, painted[z], alpha=0.0),
        ]
        tiles = [cv2.resize(crop_around(t, (y, x), 80), (240, 240), interpolation=cv2.INTER_NEAREST) for t in tiles]
        where = "edge" if lesions[0].peripheral else "deep"
        caption = f"{lesions[0].size_class}, {where}, r={lesions[0].radius_mm:.0f} mm, -{lesions[0].contrast_hu:.0f} HU"
        row = np.concatenate(tiles, axis=1)
        cv2.putText(row, caption, (6, 232), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 0), 1, cv2.LINE_AA)
        rows.append(row)
    header = np.zeros((24, rows[0].shape[1], 3), np.uint8)
    for i, text in enumerate(("original (liver window)", "with synthetic lesion", "label outline")):
        cv2.putText(header, text, (6 + 240 * i, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.out), cv2.cvtColor(np.concatenate([header, *rows]), cv2.COLOR_RGB2BGR))
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
