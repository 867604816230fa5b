"""ONNX Runtime segmentation engine: any model the manifest describes, CT in, labels out.

The engine does not care which network it runs: it reads the input spec, feeds batches of
(2.5D) slices, resizes the scores back to the slice grid, arg-maxes and cleans the result.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort

from liverhealth.errors import Cancelled, ModelError
from liverhealth.inference.manifest import Manifest, ModelSpec, verify_model_file
from liverhealth.inference.postprocess import PostprocessOptions, postprocess
from liverhealth.inference.preprocess import gather_context, normalised_stack, placement, scores_to_labels
from liverhealth.types import CtVolume, Segmentation

Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]

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
                raise ModelError(f"Model '{spec.model_id}': {spec.path.name} is not a loadable ONNX "
                                 f"model ({str(exc).splitlines()[0][:200]}).") from exc
            _check_session(spec, session)
            _SESSIONS[key] = session
    return session


def _check_session(spec: ModelSpec, session: ort.InferenceSession) -> None:
    inputs = session.get_inputs()
    if len(inputs) != 1 or len(inputs[0].shape) != 4:
        raise ModelError(f"Model '{spec.model_id}' must take one NCHW tensor; it takes "
                         f"{[(i.name, i.shape) for i in inputs]}.")
    _, channels, height, width = inputs[0].shape
    if isinstance(channels, int) and channels != spec.input.channels:
        raise ModelError(f"Model '{spec.model_id}' takes {channels} channels but the manifest's "
                         f"context_slices={spec.input.context_slices} gives {spec.input.channels}.")
    for name, actual, wanted in (("height", height, spec.input.size[0]), ("width", width, spec.input.size[1])):
        if isinstance(actual, int) and actual != wanted:
            raise ModelError(f"Model '{spec.model_id}' takes {name} {actual}, the manifest says {wanted}.")


class Segmenter:
    """Runs manifest models on CtVolumes."""

    def __init__(self, manifest: Manifest, batch_size: int = 8,
                 options: PostprocessOptions | None = None) -> None:
        self.manifest = manifest
        self.batch_size = batch_size
        self.options = options or PostprocessOptions()

    def _scores(self, session: ort.InferenceSession, batch: np.ndarray, spec: ModelSpec) -> np.ndarray:
        name = session.get_inputs()[0].name
        try:
            scores = session.run(None, {name: batch})[0]
        except Exception as exc:  # onnxruntime's errors are not typed
            raise ModelError(f"Model '{spec.model_id}' failed on input {batch.shape}: "
                             f"{str(exc).splitlines()[0][:200]}") from exc
        if scores.ndim != 4 or scores.shape[1] != len(spec.classes):
            raise ModelError(f"Model '{spec.model_id}' returned shape {scores.shape}; expected "
                             f"[N, {len(spec.classes)}, H, W].")
        return scores

    def segment(self, volume: CtVolume, model_id: str | None = None,
                progress: Progress | None = None, cancel: CancelCheck | None = None,
                clean: bool = True) -> Segmentation:
        """Segment every slice of ``volume``; labels come back on the volume's own grid."""
        spec = self.manifest.get(model_id)
        started = time.perf_counter()
        session = get_session(spec)
        session_s = time.perf_counter() - started
        depth, height, width = volume.voxels.shape
        pixel_yx = None if volume.spacing is None else (volume.spacing[1], volume.spacing[2])
        where = placement((height, width), pixel_yx, spec.input)
        stack = normalised_stack(volume.voxels, volume.is_hu, spec.input, where)
        preprocess_s = time.perf_counter() - started - session_s
        labels = np.empty((depth, height, width), dtype=np.uint8)
        run_s = resize_s = 0.0
        for start in range(0, depth, self.batch_size):
            if cancel is not None and cancel():
                raise Cancelled("Segmentation cancelled; nothing was changed.")
            indices = np.arange(start, min(start + self.batch_size, depth))
            batch = gather_context(stack, indices, spec.input.context_slices)
            tick = time.perf_counter()
            scores = self._scores(session, batch, spec)
            run_s += time.perf_counter() - tick
            tick = time.perf_counter()
            labels[indices] = scores_to_labels(scores, (height, width), where)
            resize_s += time.perf_counter() - tick
            if progress is not None:
                progress(int(indices[-1]) + 1, depth)
        tick = time.perf_counter()
        if clean:
            labels = postprocess(labels, volume.spacing, self.options)
        timings = {
            "session_s": round(session_s, 4),
            "preprocess_s": round(preprocess_s, 4),
            "model_s": round(run_s, 4),
            "resize_back_s": round(resize_s, 4),
            "postprocess_s": round(time.perf_counter() - tick, 4),
            "inference_s": round(time.perf_counter() - started, 4),
        }
        return Segmentation(labels=labels, model_id=spec.model_id, model_sha256=spec.sha256, timings=timings)
