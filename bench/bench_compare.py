"""Follow-up comparison against known truth: registration error and time, lesion statuses.

    python -m bench.bench_compare [--data ../shared/data]

The baseline is 3Dircadb1.1 with its expert labels; the follow-up is made from it with known
changes (lesion 2 grown by 3 mm, lesion 3 shrunk by 2 mm, lesion 5 removed, one synthetic lesion
added) and moved by a known affine (6° rotation, scale 1.03/0.98/1.00, shift 8/−12/6 mm), as in
tests/analysis/test_followup.py. The error is the distance, over 5,000 baseline liver voxels,
between where the registration maps them and where the known move put them.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from liverhealth import config
from liverhealth.analysis.followup import compare_studies
from liverhealth.analysis.measure import measure
from liverhealth.imaging.ircadb import load_ircadb_case
from tests.helpers import followup as build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=config.data_dir())
    args = parser.parse_args()
    volume, labels = load_ircadb_case(args.data / "3Dircadb1.1")
    hu, edited = volume.voxels.copy(), labels.copy()
    build.grow(hu, edited, volume.spacing, 2, 3.0)
    build.shrink(hu, edited, volume.spacing, 3, 2.0)
    build.remove(hu, edited, 5)
    build.add(hu, edited, volume.spacing, seed=3)
    matrix = build.known_transform(volume)
    follow, follow_labels = build.moved(volume, hu, edited, matrix)
    started = time.perf_counter()
    comparison, registration = compare_studies(
        volume, labels, measure(volume, labels), follow, follow_labels, measure(follow, follow_labels)
    )
    total = time.perf_counter() - started
    z, y, x = np.nonzero(labels > 0)
    pick = np.random.default_rng(0).choice(len(z), 5000, replace=False)
    points = (np.c_[x[pick], y[pick], z[pick], np.ones(5000)] @ volume.affine.T)[:, :3]
    error = np.linalg.norm(registration.to_followup(points) - (points @ matrix[:3, :3].T + matrix[:3, 3]), axis=1)
    print("3Dircadb1.1 (expert labels) against a follow-up made from it with known changes and a known move")
    print(
        f"registration: {registration.seconds:.1f} s; error over the liver: mean {error.mean():.2f} mm, "
        f"95th percentile {np.percentile(error, 95):.2f} mm, max {error.max():.2f} mm; liver Dice "
        f"{registration.liver_dice_before:.3f} before, {registration.liver_dice:.3f} after"
    )
    print(f"whole comparison (registration, resampling, matching, RECIST): {total:.1f} s")
    for change in comparison.lesions:
        name = f"L{change.baseline_id}" if change.baseline_id else f"new F{change.followup_ids[0]}"
        print(
            f"  {name:<7} {change.status:<8} volume {change.baseline_volume_ml or 0:7.2f} -> "
            f"{change.followup_volume_ml or 0:7.2f} mL, diameter {change.baseline_diameter_mm or 0:6.1f} -> "
            f"{change.followup_diameter_mm or 0:6.1f} mm"
        )
    print(f"RECIST 1.1: {comparison.recist.response}; " + " ".join(comparison.recist.arithmetic[1:]))
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    print(f"(command: python -m bench.bench_compare; {stamp}; development machine, 2 cores, no GPU)")


if __name__ == "__main__":
    main()
