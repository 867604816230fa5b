"""Write a saved result back to files: labels, measurements, overlay and its reports."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np

from liverhealth.domain import Report
from liverhealth.errors import LiverHealthError, StorageError
from liverhealth.imaging.writers import save_label_map
from liverhealth.presentation import report_markdown
from liverhealth.storage.records import MEASUREMENTS_SCHEMA, StoredReport, StoredResult


def stored_report(report: StoredReport) -> Report:
    """A saved report as the domain's Report (to render it like a fresh one)."""
    return Report(
        findings=report.findings_text,
        draft=report.draft_text,
        draft_notice=report.draft_notice,
        draft_model=report.llm_model,
        draft_endpoint=report.llm_endpoint,
        created_at=f"{report.created_at:%Y-%m-%d %H:%M}",
    )


def export_result(stored: StoredResult, out: Path) -> list[Path]:
    """Write labels (NIfTI, or PNG for a single slice), measurements.json, overlay.png, reports."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        labels = stored.labels
        affine = stored.study.affine if stored.study.affine is not None else np.eye(4)
        if labels.shape[0] == 1:
            import cv2

            path = out / "labels.png"
            cv2.imwrite(str(path), labels[0])
        else:
            path = out / "labels.nii.gz"
            save_label_map(labels, affine, path)
        written.append(path)
        if stored.confidence is not None:
            path = out / "confidence.nii.gz"
            save_label_map(stored.confidence, affine, path)
            written.append(path)
        path = out / "measurements.json"
        study = asdict(stored.study)
        study["affine"] = np.asarray(stored.study.affine).tolist() if stored.study.affine is not None else None
        document = {
            "schema": MEASUREMENTS_SCHEMA,
            "result_id": stored.summary.result_id,
            "model": stored.model.to_dict(),
            "study": study,
            "measurements": stored.measurements,
            "timings": stored.timings,
        }
        path.write_text(json.dumps(document, indent=2, default=str), encoding="utf-8")
        written.append(path)
        if stored.overlay_png:
            path = out / "overlay.png"
            path.write_bytes(stored.overlay_png)
            written.append(path)
        for index, report in enumerate(stored.reports, start=1):
            suffix = "" if index == 1 else f"_{index}"
            if report.pdf:
                path = out / f"report{suffix}.pdf"
                path.write_bytes(report.pdf)
                written.append(path)
            path = out / f"report{suffix}.md"
            path.write_text(report_markdown(stored_report(report), stored.model), encoding="utf-8")
            written.append(path)
        return written
    except OSError as exc:
        raise StorageError(f"Could not write the export to {out}: {exc.strerror or exc}.") from exc
    except LiverHealthError as exc:
        raise StorageError(f"Could not write the export to {out}: {exc}") from exc
