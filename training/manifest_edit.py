"""Put one block (a lesion filter, a decoding) into a model's manifest entry, atomically, and check
the whole manifest with the app's parser afterwards. Application environment, no Paddle."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from liverhealth.inference import load_manifest
from liverhealth.inference.manifest import Manifest, ModelSpec


def set_entry_block(manifest_path: Path, model_id: str, key: str, block: Any) -> None:
    """Set ``key`` of ``model_id``'s entry in ``manifest_path`` to ``block``; the file is replaced
    whole (never half-written) and then parsed, so a bad block fails here, not in the app, and the
    previous manifest is put back."""
    before = manifest_path.read_text()
    raw = json.loads(before)
    entry = next((m for m in raw.get("models", []) if m.get("id") == model_id), None)
    if entry is None:
        raise SystemExit(f"{manifest_path} has no model {model_id}")
    entry[key] = block
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(raw, indent=2) + "\n")
    tmp.replace(manifest_path)
    try:
        load_manifest(manifest_path.parent)
    except Exception:
        tmp.write_text(before)
        tmp.replace(manifest_path)
        raise


def with_spec(manifest: Manifest, spec: ModelSpec) -> Manifest:
    """A copy of ``manifest`` whose model of ``spec``'s id is ``spec`` (an in-memory variant to measure)."""
    models = tuple(spec if m.model_id == spec.model_id else m for m in manifest.models)
    return replace(manifest, models=models)
