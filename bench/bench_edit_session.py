"""Time from a reader's edit to updated measurements, through the workflow service (what every face
waits for before it redraws): paint, undo, redo, remove lesion 1, add a lesion by one click.

    python -m bench.bench_edit_session [--case 3Dircadb1.1] [--repeats 3]

The shipped default model segments the case once; then each edit runs ``--repeats`` times (undone
in between where it changes the labels) and the median wall time is printed with the lesion count
after it. The issue's targets: an edit within 1 s, the add-lesion click within 2 s (2 cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from liverhealth.domain import Label
from liverhealth.workflow import Workstation


def timed(action) -> tuple[float, object]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="3Dircadb1.1")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("LIVERHEALTH_DATA", "../shared/data")))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        station = Workstation(db_url=f"sqlite:///{folder}/bench.db")
        session = station.session()
        session.open(args.data / args.case / "PATIENT_DICOM.zip")
        model = session.segment()
        labels, z = model.segmentation.labels, model.key_slice
        inside = np.argwhere(labels[z] == Label.LIVER)
        y, x = (int(v) for v in inside[len(inside) // 2])
        seed = tuple(round(v) for v in model.measurements.lesions[0].centroid_index)
        steps = {
            "paint (5 mm disc)": (lambda: session.paint(z, (y, x), 5.0, Label.TUMOUR), True),
            "remove lesion 1": (lambda: session.remove_lesion(session.lesion_seed(1)), True),
            "add lesion (one click, default method)": (lambda: session.add_lesion(seed), True),
        }
        found = len(model.measurements.lesions)
        print(f"case {args.case} {model.volume.shape}, model {model.model.model_id}, {found} lesions")
        for name, (action, undo) in steps.items():
            times = []
            for _ in range(args.repeats):
                if name.startswith("add lesion"):
                    session.remove_lesion(session.lesion_seed(1))  # lesion 1 gone, then clicked back
                seconds, result = timed(action)
                times.append(seconds)
                count = len(result.measurements.lesions)
                while undo and session.can_undo:
                    session.undo()
            print(f"{name}: median {statistics.median(times):.2f} s (of {args.repeats}), lesions after {count}")
        session.paint(z, (y, x), 5.0, Label.TUMOUR)
        undo_s, _ = timed(session.undo)
        redo_s, _ = timed(session.redo)
        print(f"undo: {undo_s:.2f} s, redo: {redo_s:.2f} s")
        station.close()
    print(
        f"(command: python -m bench.bench_edit_session --case {args.case} --repeats {args.repeats}; "
        f"{datetime.now(UTC).isoformat(timespec='seconds')}; {platform.machine()}, {os.cpu_count()} cores, no GPU; "
        f"load average at the end {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
