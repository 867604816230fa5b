"""The model manifest (``models/manifest.json``): which ONNX models ship and how to feed them.

Schema in DESIGN.md. Every problem is a ``ModelError`` that names the model and says what
to do; the engine never guesses an input spec it does not support.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liverhealth.errors import ModelError

if TYPE_CHECKING:  # the parser itself needs only the standard library (training.export loads it alone)
    from liverhealth.inference.lesion_filter import LesionFilter

SUPPORTED_SCHEMA = 1
EXPECTED_CLASSES = ("background", "liver", "tumour")
SUPPORTED_OUTPUTS = ("logits", "probabilities")
SUPPORTED_TTA = ("flip_lr",)
DECODING_KEYS = ("tumour_threshold", "min_lesion_mm3", "chosen_on")
NOT_RECOMMENDED_FP_RATIO = 2.0  # a model marking over twice the default's false-positive lesions per case


@dataclass(frozen=True)
class RoiSpec:
    """A cascade's crop rule: run ``stage`` first, crop its foreground's 3D box plus ``margin_mm``.

    The crop (one box for the whole volume, so every slice has the same scale) is resized,
    aspect kept, to fit the model's input, but never finer than ``min_pixel_mm`` per pixel;
    slices outside the box's z range plus the margin are background.
    """

    stage: str
    margin_mm: float = 15.0
    min_pixel_mm: float = 0.5

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "margin_mm": self.margin_mm, "min_pixel_mm": self.min_pixel_mm}


@dataclass(frozen=True)
class InputSpec:
    """How slices become the model's input tensor (the preprocessing contract, written once
    by ``training.preprocess`` and copied into the manifest by ``training.export``).

    ``context_mm``, when given, is the distance of the neighbouring slices in mm: the
    neighbours are ``max(1, round(context_mm / slice spacing))`` slices away, so a 1 mm and a
    3 mm CT give the model neighbours at about the same distance. ``roi`` makes the model the
    second stage of a cascade.
    """

    context_slices: int
    size: tuple[int, int]
    hu_window: tuple[float, float]
    mean: float
    std: float
    pixel_mm: float | None = None
    context_mm: float | None = None
    roi: RoiSpec | None = None

    @property
    def channels(self) -> int:
        return 2 * self.context_slices + 1

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``input`` block (keys left out when unset, as older manifests have them)."""
        data: dict[str, Any] = {
            "context_slices": self.context_slices,
            "size": list(self.size),
            "hu_window": list(self.hu_window),
            "mean": self.mean,
            "std": self.std,
        }
        if self.pixel_mm is not None:
            data["pixel_mm"] = self.pixel_mm
        if self.context_mm is not None:
            data["context_mm"] = self.context_mm
        if self.roi is not None:
            data["roi"] = self.roi.to_dict()
        return data


@dataclass(frozen=True)
class Decoding:
    """How a model's scores become labels: tumour where its softmax probability against each other
    class in turn is at least ``tumour_threshold`` (0.5 = the arg-max), and tumour components smaller
    than ``min_lesion_mm3`` dropped (None = the engine's default). ``chosen_on`` says on what data
    the values were chosen (inner-validation patients, never the reported ones)."""

    tumour_threshold: float = 0.5
    min_lesion_mm3: float | None = None
    chosen_on: str = ""

    @property
    def tumour_bias(self) -> float:
        """What the threshold adds to the tumour logit before the arg-max (0 at 0.5)."""
        t = self.tumour_threshold
        return 0.0 if t == 0.5 else math.log((1.0 - t) / t)


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
    confidence: dict[str, Any] = field(default_factory=dict)  # its calibration on held-out patients, if any
    lesion_filter: LesionFilter | None = None  # its false-positive filter, fitted on held-out predictions
    tta: tuple[str, ...] = ()  # test-time augmentation: "flip_lr" averages the scores with the mirrored slice's
    decoding: Decoding = Decoding()  # tumour threshold and minimum lesion size


@dataclass(frozen=True)
class Manifest:
    """All selectable models, the default choice, and the cascade stages they use.

    ``stages`` (optional, schema 1 compatible) are entries that are not offered to users but
    run first for a model whose input has a ``roi`` (e.g. a low-resolution liver locator).
    """

    path: Path
    default: str
    models: tuple[ModelSpec, ...]
    stages: tuple[ModelSpec, ...] = ()

    def stage(self, stage_id: str) -> ModelSpec:
        """The cascade stage (or selectable model) with this id."""
        for spec in (*self.stages, *self.models):
            if spec.model_id == stage_id:
                return spec
        raise ModelError(f"{self.path}: no cascade stage '{stage_id}'. Reinstall the models.")

    def caution(self, model_id: str) -> str:
        """Why a model is "not recommended" (its measured false-positive lesions per case exceed
        twice the default's, figures and protocol scope said), or "" when it is not."""
        spec, default = self.get(model_id), self.get()
        mine, theirs = spec.metrics.get("false_positives"), default.metrics.get("false_positives")
        if spec is default or not isinstance(mine, int | float) or not isinstance(theirs, int | float):
            return ""
        if mine <= NOT_RECOMMENDED_FP_RATIO * theirs:
            return ""

        def scope(metrics: dict[str, Any]) -> str:
            folds, patients = metrics.get("cv_folds"), metrics.get("cv_patients")
            plural = "s" if folds != 1 else ""
            return f" (cross-validation, {folds} fold{plural}, {patients} patients)" if folds and patients else ""

        return (
            f"not recommended: {mine:.1f} false-positive lesions per case{scope(spec.metrics)}, more than "
            f"{NOT_RECOMMENDED_FP_RATIO:g}× the default {default.model_id}'s {theirs:.1f}{scope(default.metrics)}"
        )

    def get(self, model_id: str | None = None) -> ModelSpec:
        """The model with this id (the default when None)."""
        if not self.models:
            raise ModelError(
                f"No segmentation models are installed ({self.path} lists none). Trained "
                "models ship with LiverHealth releases; see models/MODEL_CARD.md."
            )
        wanted = model_id or self.default
        for spec in self.models:
            if spec.model_id == wanted:
                return spec
        known = ", ".join(m.model_id for m in self.models) or "none"
        raise ModelError(
            f"No model '{wanted}' in {self.path} (available: {known}). Run `liverhealth models` to list them."
        )


def _number(model_id: str, key: str, value: Any) -> float:
    """A finite JSON number (not a bool, a string or NaN) or a ModelError naming the key."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ModelError(
            f"Model '{model_id}': the manifest's input '{key}' is {value!r}, not a finite "
            "number. Re-export the model with training.export."
        )
    return float(value)


def _pair(model_id: str, key: str, value: Any) -> tuple[float, float]:
    if not isinstance(value, list) or len(value) != 2:
        raise ModelError(f"Model '{model_id}': the manifest's input '{key}' must be a list of two numbers.")
    return (_number(model_id, key, value[0]), _number(model_id, key, value[1]))


def _optional(model_id: str, raw: dict[str, Any], key: str) -> float | None:
    return None if raw.get(key) is None else _number(model_id, key, raw[key])


def _roi_spec(model_id: str, raw: Any) -> RoiSpec | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("stage"), str) or not raw["stage"].strip():
        raise ModelError(f"Model '{model_id}': the manifest's input 'roi' needs the id of its first stage ('stage').")
    roi = RoiSpec(
        stage=raw["stage"].strip(),
        margin_mm=_number(model_id, "roi.margin_mm", raw.get("margin_mm", 15.0)),
        min_pixel_mm=_number(model_id, "roi.min_pixel_mm", raw.get("min_pixel_mm", 0.5)),
    )
    if not 0 <= roi.margin_mm <= 200 or not 0.1 <= roi.min_pixel_mm <= 20:
        raise ModelError(
            f"Model '{model_id}': roi margin {roi.margin_mm} mm / min pixel {roi.min_pixel_mm} mm "
            "is not supported (0-200 mm, 0.1-20 mm)."
        )
    return roi


def parse_input_spec(model_id: str, raw: Any) -> InputSpec:
    """Validate a manifest ``input`` block (the same parser checks what training.export writes)."""
    if not isinstance(raw, dict) or "size" not in raw or "hu_window" not in raw:
        raise ModelError(
            f"Model '{model_id}': the manifest's input spec is incomplete (it needs 'size' and "
            "'hu_window'). Re-export the model with training.export."
        )
    height, width = _pair(model_id, "size", raw["size"])
    context = _number(model_id, "context_slices", raw.get("context_slices", 0))
    if height != int(height) or width != int(width) or context != int(context):
        raise ModelError(f"Model '{model_id}': input size and context_slices must be whole numbers.")
    spec = InputSpec(
        context_slices=int(context),
        size=(int(height), int(width)),
        hu_window=_pair(model_id, "hu_window", raw["hu_window"]),
        mean=_number(model_id, "mean", raw.get("mean", 0.0)),
        std=_number(model_id, "std", raw.get("std", 1.0)),
        pixel_mm=_optional(model_id, raw, "pixel_mm"),
        context_mm=_optional(model_id, raw, "context_mm"),
        roi=_roi_spec(model_id, raw.get("roi")),
    )
    if min(spec.size) < 8 or max(spec.size) > 2048:
        raise ModelError(f"Model '{model_id}': input size {spec.size} is not supported (8 to 2048 pixels).")
    if spec.context_slices < 0 or spec.context_slices > 4:
        raise ModelError(f"Model '{model_id}': context_slices={spec.context_slices} is not supported (0 to 4).")
    if spec.pixel_mm is not None and not 0.1 <= spec.pixel_mm <= 20:
        raise ModelError(f"Model '{model_id}': pixel_mm={spec.pixel_mm} is not supported (0.1 to 20 mm).")
    if spec.context_mm is not None and not 0.1 <= spec.context_mm <= 50:
        raise ModelError(f"Model '{model_id}': context_mm={spec.context_mm} is not supported (0.1 to 50 mm).")
    if spec.hu_window[1] <= spec.hu_window[0] or spec.std <= 0:
        raise ModelError(f"Model '{model_id}': HU window {spec.hu_window} or std {spec.std} is invalid.")
    return spec


def _model_spec(base: Path, raw: dict[str, Any]) -> ModelSpec:
    model_id = str(raw.get("id", "")).strip()
    if not model_id:
        raise ModelError(f"A model in {base / 'manifest.json'} has no id.")
    classes = tuple(str(c) for c in raw.get("classes", EXPECTED_CLASSES))
    if classes != EXPECTED_CLASSES:
        raise ModelError(
            f"Model '{model_id}': classes {list(classes)} are not supported "
            f"(LiverHealth expects {list(EXPECTED_CLASSES)})."
        )
    output = str(raw.get("output", "logits"))
    if output not in SUPPORTED_OUTPUTS:
        raise ModelError(f"Model '{model_id}': output '{output}' is not supported ({' or '.join(SUPPORTED_OUTPUTS)}).")
    if "file" not in raw or "sha256" not in raw:
        raise ModelError(f"Model '{model_id}': the manifest entry needs 'file' and 'sha256'.")
    latency = raw.get("latency_ms_per_slice_cpu")
    tta = raw.get("tta", [])
    if not isinstance(tta, list) or any(t not in SUPPORTED_TTA for t in tta):
        raise ModelError(f"Model '{model_id}': tta {tta!r} is not supported (a list of {', '.join(SUPPORTED_TTA)}).")
    return ModelSpec(
        model_id=model_id,
        name=str(raw.get("name", model_id)),
        architecture=str(raw.get("architecture", "")),
        path=base / str(raw["file"]),
        sha256=str(raw["sha256"]).lower(),
        input=parse_input_spec(model_id, raw.get("input")),
        classes=classes,
        output=output,
        metrics=dict(raw.get("metrics", {})),
        latency_ms_per_slice_cpu=float(latency) if latency is not None else None,
        trained=dict(raw.get("trained", {})),
        tta=tuple(dict.fromkeys(tta)),
        confidence=_confidence(model_id, raw.get("confidence", {})),
        lesion_filter=_lesion_filter(model_id, raw.get("lesion_filter")),
        decoding=_decoding(model_id, raw.get("decoding"), output),
    )


def _decoding(model_id: str, raw: Any, output: str) -> Decoding:
    """The optional ``decoding`` block: a tumour threshold in [0.05, 0.95] (a logit shift, so only
    for models that give logits) and a minimum lesion volume in [0, 100000] mm³."""
    if raw is None:
        return Decoding()
    if not isinstance(raw, dict) or set(raw) - set(DECODING_KEYS):
        raise ModelError(f"Model '{model_id}': decoding must be an object with {', '.join(DECODING_KEYS)}.")
    threshold, minimum = raw.get("tumour_threshold", 0.5), raw.get("min_lesion_mm3")
    if not _is_number(threshold) or not 0.05 <= threshold <= 0.95:
        raise ModelError(f"Model '{model_id}': decoding tumour_threshold must be a number in [0.05, 0.95].")
    if threshold != 0.5 and output != "logits":
        raise ModelError(f"Model '{model_id}': a decoding tumour_threshold needs a model whose output is logits.")
    if minimum is not None and (not _is_number(minimum) or not 0 <= minimum <= 100_000):
        raise ModelError(f"Model '{model_id}': decoding min_lesion_mm3 must be a number in [0, 100000].")
    return Decoding(
        tumour_threshold=float(threshold),
        min_lesion_mm3=float(minimum) if minimum is not None else None,
        chosen_on=str(raw.get("chosen_on", "")),
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _lesion_filter(model_id: str, raw: Any) -> LesionFilter | None:
    """The optional ``lesion_filter`` block (its parser needs numpy, so it is imported only for one)."""
    if raw is None:
        return None
    from liverhealth.inference.lesion_filter import parse_lesion_filter

    return parse_lesion_filter(model_id, raw)


def _confidence(model_id: str, raw: Any) -> dict[str, Any]:
    """The optional ``confidence`` block: thresholds (0..1) measured on held-out patients."""
    if not isinstance(raw, dict):
        raise ModelError(f"Model '{model_id}': 'confidence' must be an object.")
    for key in ("lesion_flag_below", "liver_flag_below"):
        value = raw.get(key, 0.0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ModelError(f"Model '{model_id}': confidence '{key}' is {value!r}; it must lie between 0 and 1.")
    return dict(raw)


def load_manifest(models_dir: Path) -> Manifest:
    """Read and validate ``models_dir/manifest.json`` (files are checked when a model is used)."""
    path = Path(models_dir) / "manifest.json"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ModelError(
            f"No model manifest at {path}. Set LIVERHEALTH_MODELS_DIR to the folder "
            "with manifest.json, or reinstall LiverHealth."
        ) from exc
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelError(f"The model manifest {path} cannot be read ({exc}).") from exc
    if not isinstance(raw, dict) or raw.get("schema") != SUPPORTED_SCHEMA:
        raise ModelError(f"{path} is not a schema-{SUPPORTED_SCHEMA} LiverHealth manifest.")
    entries, stage_entries = raw.get("models", []), raw.get("stages", [])
    if (
        not isinstance(entries, list)
        or not isinstance(stage_entries, list)
        or not all(isinstance(e, dict) for e in (*entries, *stage_entries))
    ):
        raise ModelError(f"{path}: 'models' and 'stages' must be lists of objects. Reinstall the models.")
    models = tuple(_model_spec(path.parent, entry) for entry in entries)
    stages = tuple(_model_spec(path.parent, entry) for entry in stage_entries)
    ids = [m.model_id for m in (*models, *stages)]
    if len(set(ids)) != len(ids):
        raise ModelError(f"{path} lists a model id twice: {ids}.")
    by_id = {m.model_id: m for m in (*models, *stages)}
    for spec in (*models, *stages):
        roi = spec.input.roi
        if roi is None:
            continue
        first = by_id.get(roi.stage)
        if first is None or first.input.roi is not None:
            raise ModelError(
                f"Model '{spec.model_id}': its first stage '{roi.stage}' is "
                f"{'missing from' if first is None else 'itself a cascade in'} {path}."
            )
    default = raw.get("default", ids[0] if models else "")
    if not isinstance(default, str):
        raise ModelError(f"{path}: 'default' must be a model id.")
    return Manifest(path=path, default=default, models=models, stages=stages)


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
        raise ModelError(
            f"Model '{spec.model_id}': file {spec.path} is missing. Reinstall the models or fix the manifest."
        )
    actual = file_sha256(spec.path)
    if actual != spec.sha256:
        raise ModelError(
            f"Model '{spec.model_id}': {spec.path.name} does not match the manifest "
            f"(sha256 {actual[:12]}… ≠ {spec.sha256[:12]}…). The file is damaged or "
            "was replaced; reinstall it."
        )
