"""Cohort throughput: `liverhealth batch` with 1 and 2 workers, on the local process pool and on a
local Ray, against the same cases run as separate `liverhealth segment` processes, in one run
(the ratios are the figures).

    python -m bench.bench_batch [--data ../shared/data] [--copies 2] [--models-dir DIR]

Cases: the real CTs in ../shared/data (3Dircadb1.1 zip, the TotalSegmentator DICOM series and
NIfTI, dcmqi's 3-slice CT), each listed ``--copies`` times under its own case id. Every run
writes into a fresh folder, so nothing is skipped. A Ray run includes starting the local Ray
instance (a few seconds), as a user's first batch pays it. The 10-node line is an estimate on paper from
the measured cost per case, not a measurement.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from liverhealth import config


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=config.data_dir())
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--no-ray", dest="ray", action="store_false", help="skip the Ray rows")
    args = parser.parse_args()
    cts = [
        args.data / "3Dircadb1.1" / "PATIENT_DICOM.zip",
        args.data / "totalsegmentator" / "example_ct_dicom",
        args.data / "totalsegmentator" / "example_ct_sm.nii.gz",
        args.data / "dcmqi" / "ct-3slice",
    ]
    cases = [(f"{ct.name.split('.')[0]}-{i}", ct) for i in range(args.copies) for ct in cts]
    base = [sys.executable, "-m", "liverhealth.cli"] + (
        ["--models-dir", str(args.models_dir)] if args.models_dir else []
    )
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp) / "cases.csv"
        listing.write_text("path,case_id\n" + "".join(f"{ct},{case_id}\n" for case_id, ct in cases))
        separate = sum(timed([*base, "segment", str(ct), "--out", f"{tmp}/single/{case_id}"]) for case_id, ct in cases)
        rows = [("separate `liverhealth segment` processes", separate)]
        engines = ("local", "ray") if args.ray else ("local",)
        for engine in engines:
            for workers in (1, 2):
                batch = [*base, "batch", str(listing), "--out", f"{tmp}/{engine}{workers}", "--workers", str(workers)]
                wall = timed([*batch, "--engine", engine])
                rows.append((f"`batch --engine {engine} --workers {workers}`", wall))
    n = len(cases)
    print(f"{n} cases ({args.copies} × {len(cts)} real CTs), development machine, CPU only")
    print(f"{'run':<44} {'wall s':>8} {'cases/min':>10} {'vs separate':>12}")
    for name, wall in rows:
        print(f"{name:<44} {wall:>8.1f} {n / wall * 60:>10.1f} {separate / wall:>11.2f}×")
    best = min(wall for _, wall in rows[1:])
    per_case_core_s = best * 2 / n  # the best batch used both cores of this machine
    print(
        f"estimate, not measured: 10 nodes of 16 cores at this per-core cost ({per_case_core_s:.1f} core-s per case) "
        f"would do about {10 * 16 * 60 / per_case_core_s:,.0f} cases/min, before I/O and scheduling overheads"
    )


if __name__ == "__main__":
    main()
