"""Build small ONNX models for the tests (the engine must not care which model it runs)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_conv_model(
    path: Path,
    weights: np.ndarray,
    bias: np.ndarray,
    size: tuple[int, int] | None,
    out_channels_override: int | None = None,
) -> None:
    """A one-layer 1x1 convolution: logits[k] = sum_c weights[k, c] * x[c] + bias[k].

    ``size`` fixes H and W in the graph's input (None leaves them dynamic).
    """
    out_channels, in_channels = weights.shape
    height, width = size if size else ("H", "W")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", in_channels, height, width])
    y = helper.make_tensor_value_info(
        "logits", TensorProto.FLOAT, ["N", out_channels_override or out_channels, height, width]
    )
    w = numpy_helper.from_array(weights.reshape(out_channels, in_channels, 1, 1).astype(np.float32), "w")
    b = numpy_helper.from_array(bias.astype(np.float32), "b")
    node = helper.make_node("Conv", ["x", "w", "b"], ["logits"], kernel_shape=[1, 1])
    graph = helper.make_graph([node], "conv1x1", [x], [y], initializer=[w, b])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def manifest_entry(
    model_id: str, path: Path, size: tuple[int, int] = (128, 128), context: int = 0, **overrides: Any
) -> dict[str, Any]:
    """A manifest entry for a model file, with its real sha256."""
    entry = {
        "id": model_id,
        "name": model_id.title(),
        "architecture": "test 1x1 conv",
        "file": path.name,
        "sha256": sha256(path),
        "input": {"context_slices": context, "size": list(size), "hu_window": [-200, 200], "mean": 0.5, "std": 0.5},
        "classes": ["background", "liver", "tumour"],
        "output": "logits",
        "metrics": {"protocol": "test model: HU thresholds, not trained"},
        "latency_ms_per_slice_cpu": 1.0,
        "trained": {"framework": "none", "data": "none", "iterations": 0},
    }
    entry.update(overrides)
    return entry


def threshold_reference(hu: np.ndarray, tumour_bias: float = 0.0) -> np.ndarray:
    """What the threshold model of ``tests.conftest.make_threshold_model`` computes, written on HU
    (``tumour_bias`` added to its tumour logit, as a decoding threshold does)."""
    s = np.clip(hu.astype(np.float64), -200, 200) / 200.0
    logits = np.stack([np.zeros_like(s), 40 * s - 9, 20 * s - 2.05 + tumour_bias])
    return np.argmax(logits, axis=0).astype(np.uint8)


def make_threshold_model(path: Path, size: tuple[int, int] | None, context: int = 0) -> None:
    """A 1x1-conv model whose arg-max is background / tumour / liver by HU of the centre slice.

    With the window [-200, 200], mean 0.5 and std 0.5 the input is s = HU / 200. Logits are
    0 (background), 20 s - 2 (tumour: wins from HU 20), 40 s - 9 (liver: wins from HU 90).
    """
    channels = 2 * context + 1
    weights = np.zeros((3, channels), dtype=np.float32)
    weights[1, context] = 40.0
    weights[2, context] = 20.0
    bias = np.array([0.0, -9.0, -2.05], dtype=np.float32)
    make_conv_model(path, weights, bias, size)
