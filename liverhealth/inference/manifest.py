"""The model manifest (``models/manifest.json``): which ONNX models ship and how to feed them.

Schema in DESIGN.md. Every problem is a ``ModelError`` that names the model and says what
to do; the engine never guesses an input spec it does not support.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from liverhealth.errors import ModelError

SUPPORTED_SCHEMA = 1
EXPECTED_CLASSES = ("background", "liver", "tumour")
SUPPORTED_OUTPUTS = ("logits", "probabilities")


@dataclass(frozen=True)
class InputSpec:
    """How slices become the model's input tensor."""

    context_slices: int
    size: tuple[int, int]
    hu_window: tuple[float, float]
    mean: float
    std: float
    pixel_mm: float | None = None

    @property
    def channels(self) -> int:
        return 2 * self.context_slices + 1


@dataclass(frozen=True)
class ModelSpec:
    """One manifest entry."""

    model_id: str
    name: str
    architecture: str
    path: Path
    sha256: str
    input: InputSpec
    classes: tuple[str, ...]
    output: str
    metrics: dict[str, Any] = field(default_factory=dict)
    latency_ms_per_slice_cpu: float | None = None
    trained: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """All models and the default choice."""

    path: Path
    default: str
    models: tuple[ModelSpec, ...]

    def get(self, model_id: str | None = None) -> ModelSpec:
        """The model with this id (the default when None)."""
        if not self.models:
            raise ModelError(f"No segmentation models are installed ({self.path} lists none). Trained "
                             "models ship with LiverHealth releases; see models/MODEL_CARD.md.")
        wanted = model_id or self.default
        for spec in self.models:
            if spec.model_id == wanted:
                return spec
        known = ", ".join(m.model_id for m in self.models) or "none"
        raise ModelError(f"No model '{wanted}' in {self.path} (available: {known}). "
                         "Run `liverhealth models` to list them.")


def _input_spec(model_id: str, raw: dict[str, Any]) -> InputSpec:
    try:
        size = tuple(int(v) for v in raw["size"])
        window = tuple(float(v) for v in raw["hu_window"])
        spec = InputSpec(context_slices=int(raw.get("context_slices", 0)), size=size,  # type: ignore[arg-type]
                         hu_window=window, mean=float(raw.get("mean", 0.0)),  # type: ignore[arg-type]
                         std=float(raw.get("std", 1.0)),
                         pixel_mm=float(raw["pixel_mm"]) if raw.get("pixel_mm") is not None else None)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"Model '{model_id}': the manifest's input spec is incomplete ({exc}). "
                         "Re-export the model with training.export.") from exc
    if len(spec.size) != 2 or min(spec.size) < 8 or len(spec.hu_window) != 2:
        raise ModelError(f"Model '{model_id}': input size {spec.size} / window {spec.hu_window} "
                         "is not supported (need [height, width] ≥ 8 and [low, high] HU).")
    if spec.context_slices < 0 or spec.context_slices > 4:
        raise ModelError(f"Model '{model_id}': context_slices={spec.context_slices} is not "
                         "supported (0 to 4).")
    if spec.pixel_mm is not None and not 0.1 <= spec.pixel_mm <= 20:
        raise ModelError(f"Model '{model_id}': pixel_mm={spec.pixel_mm} is not supported (0.1 to 20 mm).")
    if spec.hu_window[1] <= spec.hu_window[0] or spec.std <= 0:
        raise ModelError(f"Model '{model_id}': HU window {spec.hu_window} or std {spec.std} is invalid.")
    return spec


def _model_spec(base: Path, raw: dict[str, Any]) -> ModelSpec:
    model_id = str(raw.get("id", "")).strip()
    if not model_id:
        raise ModelError(f"A model in {base / 'manifest.json'} has no id.")
    classes = tuple(str(c) for c in raw.get("classes", EXPECTED_CLASSES))
    if classes != EXPECTED_CLASSES:
        raise ModelError(f"Model '{model_id}': classes {list(classes)} are not supported "
                         f"(LiverHealth expects {list(EXPECTED_CLASSES)}).")
    output = str(raw.get("output", "logits"))
    if output not in SUPPORTED_OUTPUTS:
        raise ModelError(f"Model '{model_id}': output '{output}' is not supported "
                         f"({' or '.join(SUPPORTED_OUTPUTS)}).")
    if "file" not in raw or "sha256" not in raw:
        raise ModelError(f"Model '{model_id}': the manifest entry needs 'file' and 'sha256'.")
    latency = raw.get("latency_ms_per_slice_cpu")
    return ModelSpec(
        model_id=model_id, name=str(raw.get("name", model_id)),
        architecture=str(raw.get("architecture", "")), path=base / str(raw["file"]),
        sha256=str(raw["sha256"]).lower(), input=_input_spec(model_id, raw.get("input", {})),
        classes=classes, output=output, metrics=dict(raw.get("metrics", {})),
        latency_ms_per_slice_cpu=float(latency) if latency is not None else None,
        trained=dict(raw.get("trained", {})),
    )


def load_manifest(models_dir: Path) -> Manifest:
    """Read and validate ``models_dir/manifest.json`` (files are checked when a model is used)."""
    path = Path(models_dir) / "manifest.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(f"No model manifest at {path}. Set LIVERHEALTH_MODELS_DIR to the folder "
                         "with manifest.json, or reinstall LiverHealth.") from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"The model manifest {path} cannot be read ({exc}).") from exc
    if not isinstance(raw, dict) or raw.get("schema") != SUPPORTED_SCHEMA:
        raise ModelError(f"{path} is not a schema-{SUPPORTED_SCHEMA} LiverHealth manifest.")
    models = tuple(_model_spec(path.parent, entry) for entry in raw.get("models", []))
    ids = [m.model_id for m in models]
    if len(set(ids)) != len(ids):
        raise ModelError(f"{path} lists a model id twice: {ids}.")
    return Manifest(path=path, default=str(raw.get("default", ids[0] if ids else "")), models=models)


@lru_cache(maxsize=32)
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of a file, cached while its size and mtime stay the same."""
    stat = path.stat()
    return _file_sha256(path, stat.st_size, stat.st_mtime_ns)


def verify_model_file(spec: ModelSpec) -> None:
    """Refuse a missing model file or one whose sha256 differs from the manifest."""
    if not spec.path.is_file():
        raise ModelError(f"Model '{spec.model_id}': file {spec.path} is missing. Reinstall the "
                         "models or fix the manifest.")
    actual = file_sha256(spec.path)
    if actual != spec.sha256:
        raise ModelError(f"Model '{spec.model_id}': {spec.path.name} does not match the manifest "
                         f"(sha256 {actual[:12]}… ≠ {spec.sha256[:12]}…). The file is damaged or "
                         "was replaced; reinstall it.")
