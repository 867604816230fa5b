"""Write a saved result back to files: labels, measurements, overlay and its reports."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np

from liverhealth.errors import StorageError
from liverhealth.storage.repository import StoredResult


def export_result(stored: StoredResult, out: Path) -> list[Path]:
    """Write labels (NIfTI, or PNG for a single slice), measurements.json, overlay.png, reports."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        written = []
        labels = stored.labels
        affine = np.asarray(stored.study.get("affine") or np.eye(4), dtype=float)
        if labels.shape[0] == 1:
            import cv2

            path = out / "labels.png"
            cv2.imwrite(str(path), labels[0])
        else:
            path = out / "labels.nii.gz"
            nib.save(nib.Nifti1Image(np.ascontiguousarray(labels.transpose(2, 1, 0)), affine), str(path))
        written.append(path)
        path = out / "measurements.json"
        document = {
            "result_id": stored.summary.result_id,
            "model_id": stored.summary.model_id,
            "model_sha256": stored.model_sha256,
            "study": stored.study,
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
            if report["pdf"]:
                path = out / f"report{suffix}.pdf"
                path.write_bytes(report["pdf"])
                written.append(path)
            path = out / f"report{suffix}.md"
            draft = report["draft_text"] or f"(no draft: {report['draft_notice'] or 'not requested'})"
            path.write_text(
                f"{report['findings_text']}\n\n## Draft ({report['llm_model'] or 'no model'})\n\n{draft}\n",
                encoding="utf-8",
            )
            written.append(path)
        return written
    except OSError as exc:
        raise StorageError(f"Could not write the export to {out}: {exc.strerror or exc}.") from exc
