"""The cohort table (cohort.csv, cohort.parquet) and its plots (cohort.png), each written whole
or not at all."""

from __future__ import annotations

import csv
from dataclasses import asdict
from pathlib import Path
from typing import Any

from liverhealth.batch.work import COLUMNS, CaseStatus, Row


def write_cohort(rows: list[Row], out: Path) -> None:
    """cohort.csv, cohort.parquet and cohort.png (distributions), each written whole or not at all."""
    from liverhealth.imaging.writers import atomic_target

    with atomic_target(out / "cohort.csv") as temporary, open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(asdict(row) for row in rows)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        table = pa.Table.from_pylist([asdict(row) for row in rows], schema=_schema(pa))
        with atomic_target(out / "cohort.parquet") as temporary:
            pq.write_table(table, str(temporary))
    _plots(rows, out)


def _schema(pa: Any) -> Any:
    text, number = pa.string(), pa.float64()
    whole = {"lesions", "result_id", "lesions_check_first"}
    numbers = {"liver_ml", "tumour_ml", "burden_pct", "largest_lesion_mm", "liver_confidence", "seconds"}
    numbers |= {name for name in COLUMNS if name.endswith("_s")}
    types = {k: pa.int64() for k in whole} | {k: number for k in numbers}
    return pa.schema([(name, types.get(name, text)) for name in COLUMNS])


def _plots(rows: list[Row], out: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    from liverhealth.imaging.writers import atomic_target

    ok = [r for r in rows if r.status in (CaseStatus.DONE, CaseStatus.SKIPPED)]
    figure, axes = plt.subplots(2, 2, figsize=(10, 7))
    panels = (
        ("Liver volume (mL)", [r.liver_ml for r in ok if r.liver_ml is not None]),
        ("Tumour burden (% of liver)", [r.burden_pct for r in ok if r.burden_pct is not None]),
        ("Lesions per case", [r.lesions for r in ok if r.lesions is not None]),
        ("Seconds per case", [r.seconds for r in ok if r.seconds is not None]),
    )
    for axis, (title, values) in zip(axes.flat, panels, strict=True):
        axis.hist(values, bins=min(20, max(len(values), 1)), color="#4a7fb0")
        axis.set_title(f"{title}, n = {len(values)}")
    figure.suptitle(f"LiverHealth cohort: {len(ok)} cases, {len(rows) - len(ok)} failed (draft, not reviewed)")
    figure.tight_layout()
    with atomic_target(out / "cohort.png") as temporary:
        figure.savefig(str(temporary), format="png", dpi=100)
    plt.close(figure)
