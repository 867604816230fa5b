"""Export a trained run to ONNX and list it in a model manifest.

    python -m training.export RUN_DIR --id unet --name "UNet (slim w16)" --models-dir models [--default]

Steps: paddle -> ONNX (paddle2onnx, opset 13); parity against paddle on real samples (max
abs logit difference, arg-max agreement; refused above ``--tolerance``); file size (≤ 40 MB)
and sha256; ONNX Runtime CPU latency; a manifest entry (schema in DESIGN.md) merged by id.
Metrics come from ``--metrics`` (the JSON written by ``training.evaluate``) or stay as they
were in the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
from pathlib import Path

from training.paddle_env import ensure_system_zlib, set_threads

ensure_system_zlib()
set_threads()

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import paddle  # noqa: E402
import paddleseg  # noqa: E402

from training.models import build_model  # noqa: E402
from training.protocol import FOLDS  # noqa: E402
from training.train import read_samples, to_tensor  # noqa: E402

MAX_BYTES = 40 * 1024 * 1024


class LogitsOnly(paddle.nn.Layer):
    """Return the logits tensor instead of paddleseg's one-element list."""

    def __init__(self, model: paddle.nn.Layer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.model(x)[0]


def load_run(run: Path) -> tuple[dict, paddle.nn.Layer]:
    """The run's final state and its model with the final (else latest checkpoint) weights."""
    final = run / "final.json"
    state = json.loads((final if final.is_file() else run / "checkpoint" / "state.json").read_text())
    weights = run / "final.pdparams"
    weights = weights if weights.is_file() else run / "checkpoint" / "model.pdparams"
    model = build_model(state["config"]["model"], num_classes=3, in_channels=state["in_channels"])
    model.set_state_dict(paddle.load(str(weights)))
    model.eval()
    return state, model


def ort_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def parity(model: paddle.nn.Layer, session: ort.InferenceSession, units: np.ndarray) -> dict:
    """Max abs logit difference and arg-max agreement of paddle vs ONNX Runtime."""
    x = to_tensor(units)
    with paddle.no_grad():
        reference = model(x)[0].numpy()
    onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    return {"max_abs_diff": float(np.abs(reference - onnx_out).max()),
            "argmax_agreement": float((reference.argmax(1) == onnx_out.argmax(1)).mean()),
            "samples": len(units)}


def latency_ms(session: ort.InferenceSession, shape: tuple[int, ...], repeats: int = 5) -> float:
    """Best-of-N ONNX Runtime time per slice at batch 8."""
    x = np.random.default_rng(0).normal(size=(8, *shape[1:])).astype(np.float32)
    name = session.get_inputs()[0].name
    session.run(None, {name: x})
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        session.run(None, {name: x})
        times.append(time.perf_counter() - started)
    return 1000 * min(times) / 8


def update_manifest(models_dir: Path, entry: dict, make_default: bool) -> None:
    path = models_dir / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {"schema": 1, "default": "", "models": []}
    old = next((m for m in manifest["models"] if m["id"] == entry["id"]), None)
    if old and not entry.get("metrics") and old.get("metrics"):
        entry["metrics"] = old["metrics"]
    manifest["models"] = [m for m in manifest["models"] if m["id"] != entry["id"]] + [entry]
    if make_default or not manifest.get("default"):
        manifest["default"] = entry["id"]
    path.write_text(json.dumps(manifest, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a trained run to ONNX and add it to a manifest.")
    parser.add_argument("run", type=Path)
    parser.add_argument("--id", required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--default", action="store_true", help="make it the manifest's default model")
    parser.add_argument("--metrics", type=Path, default=None, help="metrics JSON from training.evaluate")
    parser.add_argument("--tolerance", type=float, default=1e-3)
    args = parser.parse_args(argv)

    state, model = load_run(args.run)
    config = state["config"]
    size = int(config["data"]["size"])
    channels = int(state["in_channels"])
    args.models_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = args.models_dir / f"{args.id}.onnx"
    spec = paddle.static.InputSpec([None, channels, size, size], "float32", "x")
    paddle.onnx.export(LogitsOnly(model), str(onnx_path.with_suffix("")), input_spec=[spec], opset_version=13)
    shutil.rmtree(args.models_dir / "paddle_model_temp_dir", ignore_errors=True)  # paddle2onnx's leftovers
    size_bytes = onnx_path.stat().st_size
    if size_bytes > MAX_BYTES:
        raise SystemExit(f"{onnx_path} is {size_bytes / 2**20:.1f} MB, over the 40 MB limit")

    session = ort_session(onnx_path)
    val_cases = state.get("val_cases") or FOLDS[state["fold"]]["val"]
    images, _ = read_samples(Path(config["data"]["root"]), val_cases, limit=8)
    check = parity(model, session, images.astype(np.float32) / 255.0)
    (args.run / "parity.json").write_text(json.dumps(check, indent=2))
    print(f"parity: max abs diff {check['max_abs_diff']:.2e}, argmax agreement {check['argmax_agreement']:.5f}",
          file=sys.stderr)
    if check["max_abs_diff"] > args.tolerance:
        onnx_path.unlink()
        raise SystemExit(f"parity check failed: {check['max_abs_diff']:.2e} > {args.tolerance}")

    metrics = json.loads(args.metrics.read_text()) if args.metrics else {}
    data_meta = json.loads((Path(config["data"]["root"]) / "meta.json").read_text())
    input_spec = {"context_slices": (channels - 1) // 2, "size": [size, size], "hu_window": [-200, 200],
                  "mean": 0.5, "std": 0.5}
    if data_meta.get("pixel_mm"):
        input_spec["pixel_mm"] = float(data_meta["pixel_mm"])
    model_type = config["model"]["type"]
    module = "training.models" if model_type.startswith("Slim") else "paddleseg.models"
    entry = {
        "id": args.id,
        "name": args.name or config["name"],
        "architecture": f"{module}.{model_type}",
        "file": onnx_path.name,
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "input": input_spec,
        "classes": ["background", "liver", "tumour"],
        "output": "logits",
        "metrics": metrics,
        "latency_ms_per_slice_cpu": round(latency_ms(session, (8, channels, size, size)), 1),
        "trained": {"framework": f"paddleseg {paddleseg.__version__} / paddle {paddle.__version__}",
                    "data": state.get("protocol", ""), "fold": state["fold"], "iterations": state["iter"],
                    "config": config["name"], "train_minutes_cpu": round(state["train_seconds"] / 60, 1),
                    "parity": check, "onnx_bytes": size_bytes},
    }
    update_manifest(args.models_dir, entry, args.default)
    print(f"exported {onnx_path} ({size_bytes / 2**20:.1f} MB, {entry['latency_ms_per_slice_cpu']} ms/slice)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
