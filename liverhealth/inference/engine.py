"""ONNX Runtime segmentation engine: any model the manifest describes, CT in, labels out.

The engine does not care which network it runs: it reads the input spec, feeds batches of
(2.5D) slices, resizes the scores back to the slice grid, arg-maxes and cleans the result.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort

from liverhealth.domain import CtVolume, Segmentation
from liverhealth.errors import Cancelled, ModelError
from liverhealth.inference.lesion_filter import apply_lesion_filter
from liverhealth.inference.manifest import InputSpec, Manifest, ModelSpec, verify_model_file
from liverhealth.inference.postprocess import PostprocessOptions, largest_component, postprocess
from liverhealth.inference.preprocess import (
    prepare_volume,
    roi_box,
    roi_input_spec,
    scores_to_confidence,
    scores_to_labels,
)
from liverhealth.progress import CancelCheck, Progress, Step, report_step

_SESSIONS: dict[tuple[Path, str, int], ort.InferenceSession] = {}
_SESSIONS_LOCK = threading.Lock()


def _threads() -> int:
    configured = os.environ.get("LIVERHEALTH_THREADS")
    return int(configured) if configured else max(os.cpu_count() or 1, 1)


def get_session(spec: ModelSpec) -> ort.InferenceSession:
    """A cached ONNX Runtime session for a verified model file."""
    verify_model_file(spec)
    threads = _threads()
    key = (spec.path, spec.sha256, threads)
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(key)
        if session is None:
            options = ort.SessionOptions()
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            options.log_severity_level = 3
            try:
                session = ort.InferenceSession(str(spec.path), options, providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own untyped errors for bad graphs
                raise ModelError(
                    f"Model '{spec.model_id}': {spec.path.name} is not a loadable ONNX "
                    f"model ({str(exc).splitlines()[0][:200]})."
                ) from exc
            _check_session(spec, session)
            _SESSIONS[key] = session
    return session


def _check_session(spec: ModelSpec, session: ort.InferenceSession) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ModelError(
            f"Model '{spec.model_id}' must take one NCHW tensor; it takes {[(i.name, i.shape) for i in inputs]}."
        )
    _, channels, height, width = inputs[0].shape
    if isinstance(channels, int) and channels != spec.input.channels:
        raise ModelError(
            f"Model '{spec.model_id}' takes {channels} channels but the manifest's "
            f"context_slices={spec.input.context_slices} gives {spec.input.channels}."
        )
    for name, actual, wanted in (("height", height, spec.input.size[0]), ("width", width, spec.input.size[1])):
        if isinstance(actual, int) and actual != wanted:
            raise ModelError(f"Model '{spec.model_id}' takes {name} {actual}, the manifest says {wanted}.")


class Segmenter:
    """Runs manifest models on CtVolumes; with ``confidence`` (the default) every result also carries
    the model's per-voxel confidence (``scores_to_confidence``).

    Slices go to the model four at a time: on two cores a batch of 8 ran no faster, and ONNX
    Runtime's memory arena grows with the batch (peak 990 MiB at 8, 740 MiB at 4 on a 512² CT).
    """

    def __init__(
        self,
        manifest: Manifest,
        batch_size: int = 4,
        options: PostprocessOptions | None = None,
        confidence: bool = True,
    ) -> None:
        self.manifest = manifest
        self.batch_size = batch_size
        self.options = options or PostprocessOptions()
        self.confidence = confidence

    def _scores(self, session: ort.InferenceSession, batch: np.ndarray, spec: ModelSpec) -> np.ndarray:
        """The model's scores on ``batch`` (N, C, H, W), checked; with the manifest's ``flip_lr``
        test-time augmentation, the mean with the scores of the mirrored slices mirrored back."""
        scores = self._run(session, batch, spec)
        if "flip_lr" in spec.tta:
            mirrored = self._run(session, np.ascontiguousarray(batch[..., ::-1]), spec)[..., ::-1]
            scores = (scores + mirrored) / 2
        return scores

    def _run(self, session: ort.InferenceSession, batch: np.ndarray, spec: ModelSpec) -> np.ndarray:
        name = session.get_inputs()[0].name
        try:
            scores = session.run(None, {name: batch})[0]
        except Exception as exc:  # onnxruntime's errors are not typed
            raise ModelError(
                f"Model '{spec.model_id}' failed on input {batch.shape}: {str(exc).splitlines()[0][:200]}"
            ) from exc
        if scores.ndim != 4 or scores.shape[1] != len(spec.classes):
            raise ModelError(
                f"Model '{spec.model_id}' returned shape {scores.shape}; expected [N, {len(spec.classes)}, H, W]."
            )
        if spec.output == "probabilities" and (scores.min() < -1e-3 or scores.max() > 1 + 1e-3):
            raise ModelError(
                f"Model '{spec.model_id}' is listed as giving probabilities but returned scores from "
                f"{scores.min():.3g} to {scores.max():.3g}. Fix 'output' in its manifest entry (logits?)."
            )
        if not np.isfinite(scores).all():
            raise ModelError(
                f"Model '{spec.model_id}' returned NaN or infinite scores, so nothing it labels can "
                "be measured. The model file is broken; reinstall it or choose another model."
            )
        return scores

    def segment(
        self,
        volume: CtVolume,
        model_id: str | None = None,
        progress: Progress | None = None,
        cancel: CancelCheck | None = None,
        clean: bool = True,
    ) -> Segmentation:
        """Segment every slice of ``volume``; labels come back on the volume's own grid.

        A model whose input has a ``roi`` is a cascade: its first stage runs on the whole
        volume, and the model itself only on the box around what the first stage found.
        """
        spec = self.manifest.get(model_id)
        started = time.perf_counter()
        spacing = _effective_spacing(volume, self.manifest.stage(spec.input.roi.stage) if spec.input.roi else spec)
        timings: dict[str, float] = {}
        if spec.input.roi is None:
            labels, confidence = self._predict(
                volume.voxels,
                volume.is_hu,
                spacing,
                volume.spacing is not None,
                spec,
                lambda done, total: report_step(progress, Step.SEGMENTING, done, total),
                cancel,
                timings,
            )
        else:
            labels, confidence = self._cascade(volume, spacing, spec, progress, cancel, timings)
        tick = time.perf_counter()
        if clean:
            labels, rejected = self.clean(volume, labels, confidence, spec)
            if rejected is not None:
                timings["lesions_filtered"] = float(rejected)
        timings["postprocess_s"] = round(time.perf_counter() - tick, 4)
        timings["inference_s"] = round(time.perf_counter() - started, 4)
        return Segmentation(
            labels=labels, model_id=spec.model_id, model_sha256=spec.sha256, timings=timings, confidence=confidence
        )

    def clean(
        self, volume: CtVolume, labels: np.ndarray, confidence: np.ndarray | None, spec: ModelSpec
    ) -> tuple[np.ndarray, int | None]:
        """The clean-up of ``segment``: the rules of ``postprocess`` (with the model's own minimum
        lesion size, if its decoding sets one), then its lesion filter on HU volumes; returns the
        labels and how many lesions the filter rejected (None without a filter)."""
        options = self.options
        if spec.decoding.min_lesion_mm3 is not None:
            options = replace(options, min_lesion_mm3=spec.decoding.min_lesion_mm3)
        labels = postprocess(labels, volume.spacing, options)
        if spec.lesion_filter is None or not volume.is_hu:
            return labels, None
        return apply_lesion_filter(volume.voxels, labels, confidence, volume.spacing, spec.lesion_filter)

    def _cascade(
        self,
        volume: CtVolume,
        spacing: tuple[float, float, float],
        spec: ModelSpec,
        progress: Progress | None,
        cancel: CancelCheck | None,
        timings: dict[str, float],
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Stage 1 on the whole volume, then ``spec`` on the box of stage 1's (cleaned) foreground.
        The confidence is stage 2's inside the box and stage 1's outside it."""
        roi = spec.input.roi
        assert roi is not None
        stage = self.manifest.stage(roi.stage)
        depth, height, width = volume.voxels.shape

        def first_half(done: int, _: int) -> None:
            report_step(progress, Step.FINDING_LIVER, done, depth)

        tick = time.perf_counter()
        stage_timings: dict[str, float] = {}
        first, confidence = self._predict(
            volume.voxels, volume.is_hu, spacing, volume.spacing is not None, stage, first_half, cancel, stage_timings
        )
        first = largest_component(first > 0)
        timings["stage1_s"] = round(time.perf_counter() - tick, 4)
        timings.update({f"stage1_{key}": value for key, value in stage_timings.items()})
        labels = np.zeros((depth, height, width), dtype=np.uint8)
        box = roi_box(first, spacing, roi.margin_mm)
        if box is None:  # stage 1 found no liver: nothing for stage 2 to look at
            report_step(progress, Step.SEGMENTING, depth, depth)
            return labels, confidence
        fine = roi_input_spec(spec.input, box, (spacing[1], spacing[2]))
        crop = volume.voxels[box.z, box.y, box.x]

        def second_half(done: int, _: int) -> None:  # slice k of the CT's, not of the box's
            report_step(progress, Step.SEGMENTING, box.z.start + done, depth)

        crop_labels, crop_confidence = self._predict(
            crop, volume.is_hu, spacing, True, spec, second_half, cancel, timings, fine
        )
        labels[box.z, box.y, box.x] = crop_labels
        if confidence is not None and crop_confidence is not None:
            confidence[box.z, box.y, box.x] = crop_confidence
        report_step(progress, Step.SEGMENTING, depth, depth)
        timings["roi_voxels"] = float(crop.size)
        return labels, confidence

    def _predict(
        self,
        voxels: np.ndarray,
        is_hu: bool,
        spacing: tuple[float, float, float],
        has_pixel_size: bool,
        spec: ModelSpec,
        progress: Progress | None,
        cancel: CancelCheck | None,
        timings: dict[str, float],
        input_spec: InputSpec | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Arg-max labels of one model on every slice of ``voxels`` (no clean-up) and, when asked, its
        confidence; adds its timings."""
        input_spec = input_spec or spec.input
        started = time.perf_counter()
        session = get_session(spec)
        session_s = time.perf_counter() - started
        depth, height, width = voxels.shape
        prepared = prepare_volume(
            voxels, is_hu, (spacing[1], spacing[2]) if has_pixel_size else None, spacing[0], input_spec
        )
        preprocess_s = time.perf_counter() - started - session_s
        labels = np.empty((depth, height, width), dtype=np.uint8)
        confidence = np.empty((depth, height, width), dtype=np.uint8) if self.confidence else None
        logits = spec.output != "probabilities"
        run_s = 0.0
        spent = {"resize": 0.0, "confidence": 0.0}

        def store(rows: slice, scores: np.ndarray) -> None:
            tick = time.perf_counter()
            labels[rows] = scores_to_labels(scores, (height, width), prepared.where, spec.decoding.tumour_bias)
            spent["resize"] += time.perf_counter() - tick
            if confidence is not None:
                tick = time.perf_counter()
                confidence[rows] = scores_to_confidence(scores, (height, width), prepared.where, logits)
                spent["confidence"] += time.perf_counter() - tick

        # One batch's scores are resized back on a second thread while the model runs the next
        # (OpenCV and NumPy release the GIL), so the model's gaps are filled, not added to.
        pending = None
        with ThreadPoolExecutor(max_workers=1) as back:
            for start in range(0, depth, self.batch_size):
                if cancel is not None and cancel():
                    raise Cancelled("Segmentation cancelled; nothing was changed.")
                stop = min(start + self.batch_size, depth)
                batch = prepared.batch(np.arange(start, stop))
                tick = time.perf_counter()
                scores = self._scores(session, batch, spec)
                run_s += time.perf_counter() - tick
                if pending is not None:
                    pending.result()
                pending = back.submit(store, slice(start, stop), scores)
                if progress is not None:
                    progress(stop, depth)
            if pending is not None:
                pending.result()
        resize_s, confidence_s = spent["resize"], spent["confidence"]
        for key, value in (
            ("session_s", session_s),
            ("preprocess_s", preprocess_s),
            ("model_s", run_s),
            ("resize_back_s", resize_s),
            ("confidence_s", confidence_s),
        ):
            timings[key] = round(timings.get(key, 0.0) + value, 4)
        return labels, confidence


def _effective_spacing(volume: CtVolume, first: ModelSpec) -> tuple[float, float, float]:
    """The volume's spacing, or for a raster without a pixel size the one its placement assumes:
    the slice spans the (first) model's field of view, ``size * pixel_mm``."""
    if volume.spacing is not None:
        return volume.spacing
    fov = first.input.pixel_mm * max(first.input.size) if first.input.pixel_mm else None
    pixel = fov / max(volume.voxels.shape[1:]) if fov else 1.0
    return (pixel, pixel, pixel)
