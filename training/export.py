"""Export a trained run to ONNX and list it in a model manifest.

    python -m training.export RUN_DIR --id unet --name "UNet (slim w16)" --models-dir models [--default]

Steps: paddle -> ONNX (paddle2onnx, opset 13); parity against paddle on the inputs the app's
own input path made (``parity_inputs.npy`` of the sample folder, written by training.preprocess
through ``liverhealth.inference.prepare_volume``; older folders: their uint8 samples) (max abs
logit difference, arg-max agreement; refused above ``--tolerance``); file size (≤ 40 MB) and
sha256; ONNX Runtime CPU latency; a manifest entry merged by id, whose input spec is the sample
folder's (``meta.json`` "input", the preprocessing contract) and which, with the whole manifest,
is validated by the app's own manifest parser. ``--stage`` lists the model as a cascade stage
(not offered to users). Metrics come from ``--metrics`` (the JSON written by
``training.evaluate``, or ``training.evaluate_cv metrics`` for a model trained on all patients);
``--confidence`` copies a confidence calibration (``bench/bench_confidence.py``) into the entry.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
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
from training.train import normalisation, read_samples, to_tensor  # noqa: E402

MAX_BYTES = 40 * 1024 * 1024
REPO = Path(__file__).resolve().parent.parent


def app_manifest_module():
    """The app's manifest parser (``liverhealth/inference/manifest.py``), loaded on its own: it needs
    only the standard library, while the rest of the app does not install beside Paddle."""
    spec = importlib.util.spec_from_file_location(
        "liverhealth_app_manifest", REPO / "liverhealth" / "inference" / "manifest.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def input_spec_block(data_root: Path, channels: int, size: int) -> dict:
    """The manifest ``input`` block: the sample folder's recorded spec, checked by the app's parser."""
    meta = json.loads((data_root / "meta.json").read_text())
    block = meta.get("input") or {
        "context_slices": (channels - 1) // 2,
        "size": [size, size],
        "hu_window": [-200, 200],
        "mean": 0.5,
        "std": 0.5,
        **({"pixel_mm": float(meta["pixel_mm"])} if meta.get("pixel_mm") else {}),
    }
    parsed = app_manifest_module().parse_input_spec("export", block)
    if parsed.channels != channels or parsed.size != (size, size):
        raise SystemExit(
            f"{data_root}/meta.json says {parsed.channels} channels of {parsed.size}; the run "
            f"was trained on {channels} of {size}²"
        )
    return block


class LogitsOnly(paddle.nn.Layer):
    """Return the logits tensor instead of paddleseg's one-element list."""

    def __init__(self, model: paddle.nn.Layer) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: paddle.Tensor) -> paddle.Tensor:
        return self.model(x)[0]


def load_run(run: Path) -> tuple[dict, paddle.nn.Layer]:
    """The run's final state and its model with the weights chosen on inner validation.

    ``best.pdparams`` (the inner-validation best, written by runs since 2026-12-06) when the run
    has one, else the final (else latest checkpoint) weights; ``state["exported_weights"]`` says which.
    """
    final = run / "final.json"
    state = json.loads((final if final.is_file() else run / "checkpoint" / "state.json").read_text())
    candidates = (run / "best.pdparams", run / "final.pdparams", run / "checkpoint" / "model.pdparams")
    weights = next((p for p in candidates if p.is_file()), candidates[-1])
    state["exported_weights"] = (
        f"inner-validation best at iteration {state['best']['iter']} "
        f"({state['config']['train'].get('select_on', 'val_mean_dice')})"
        if weights.name == "best.pdparams" and "best" in state
        else f"{'final' if weights.name == 'final.pdparams' else 'latest checkpoint'} at iteration {state['iter']}"
    )
    model = build_model(state["config"]["model"], num_classes=3, in_channels=state["in_channels"])
    model.set_state_dict(paddle.load(str(weights)))
    model.eval()
    return state, model


def ort_session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = os.cpu_count() or 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def parity(model: paddle.nn.Layer, session: ort.InferenceSession, inputs: np.ndarray, source: str) -> dict:
    """Max abs logit difference and arg-max agreement of paddle vs ONNX Runtime on NCHW float32 inputs."""
    with paddle.no_grad():
        reference = model(paddle.to_tensor(inputs))[0].numpy()
    onnx_out = session.run(None, {session.get_inputs()[0].name: inputs})[0]
    return {
        "max_abs_diff": float(np.abs(reference - onnx_out).max()),
        "argmax_agreement": float((reference.argmax(1) == onnx_out.argmax(1)).mean()),
        "samples": len(inputs),
        "inputs": source,
    }


def parity_inputs(data_root: Path, val_cases: list[str]) -> tuple[np.ndarray, str]:
    """The app-path inputs preprocess saved, else (older sample folders) 8 uint8 validation samples."""
    saved = data_root / "parity_inputs.npy"
    if saved.is_file():
        meta = json.loads((data_root / "meta.json").read_text())
        return np.load(saved).astype(np.float32), str(meta.get("parity_inputs", "parity_inputs.npy"))
    images, _ = read_samples(data_root, val_cases, limit=8)
    units = images.astype(np.float32) / 255.0
    return to_tensor(units, normalisation(data_root)).numpy(), "8 validation samples (uint8 PNG)"


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


def update_manifest(models_dir: Path, entry: dict, make_default: bool, stage: bool = False) -> None:
    """Merge ``entry`` by id into ``models`` (or ``stages``), then check the result with the app's parser."""
    path = models_dir / "manifest.json"
    manifest = json.loads(path.read_text()) if path.is_file() else {"schema": 1, "default": "", "models": []}
    key = "stages" if stage else "models"
    entries = manifest.setdefault(key, [])
    old = next((m for m in entries if m["id"] == entry["id"]), None)
    if old and not entry.get("metrics") and old.get("metrics"):
        entry["metrics"] = old["metrics"]
    manifest[key] = [m for m in entries if m["id"] != entry["id"]] + [entry]
    if not stage and (make_default or not manifest.get("default")):
        manifest["default"] = entry["id"]
    previous = path.read_text() if path.is_file() else None
    path.write_text(json.dumps(manifest, indent=2) + "\n")
    app = app_manifest_module()
    try:
        app.load_manifest(models_dir)
    except app.ModelError as exc:
        if previous is None:
            path.unlink()
        else:
            path.write_text(previous)
        raise SystemExit(f"the manifest entry does not pass the app's parser (manifest left as it was): {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Export a trained run to ONNX and add it to a manifest.")
    parser.add_argument("run", type=Path)
    parser.add_argument("--id", required=True)
    parser.add_argument("--name", default=None)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    parser.add_argument("--default", action="store_true", help="make it the manifest's default model")
    parser.add_argument("--stage", action="store_true", help="list it as a cascade stage, not a selectable model")
    parser.add_argument(
        "--roi-stage", default=None, help="for a cascade's second stage: the id its first stage has in this manifest"
    )
    parser.add_argument("--metrics", type=Path, default=None, help="metrics JSON from training.evaluate")
    parser.add_argument(
        "--confidence",
        type=Path,
        default=None,
        help="calibration.json of bench/bench_confidence.py: the recipe's confidence calibration on held-out patients",
    )
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
    data_root = Path(config["data"]["root"])
    input_spec = input_spec_block(data_root, channels, size)
    if args.roi_stage:
        if "roi" not in input_spec:
            raise SystemExit("--roi-stage is for a cascade's second stage; this run's samples have no roi")
        input_spec["roi"] = {**input_spec["roi"], "stage": args.roi_stage}
    inputs, source = parity_inputs(data_root, state.get("val_cases") or FOLDS[state["fold"]]["val"])
    check = parity(model, session, inputs, source)
    (args.run / "parity.json").write_text(json.dumps(check, indent=2))
    print(
        f"parity: max abs diff {check['max_abs_diff']:.2e}, argmax agreement {check['argmax_agreement']:.5f}",
        file=sys.stderr,
    )
    if check["max_abs_diff"] > args.tolerance:
        onnx_path.unlink()
        raise SystemExit(f"parity check failed: {check['max_abs_diff']:.2e} > {args.tolerance}")

    metrics = json.loads(args.metrics.read_text()) if args.metrics else {}
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
        "trained": {
            "framework": f"paddleseg {paddleseg.__version__} / paddle {paddle.__version__}",
            "data": state.get("protocol", ""),
            "fold": state["fold"],
            "iterations": state["iter"],
            "weights": state["exported_weights"],
            "config": config["name"],
            "train_minutes_cpu": round(state["train_seconds"] / 60, 1),
            "parity": check,
            "onnx_bytes": size_bytes,
        },
    }
    if args.confidence:
        entry["confidence"] = json.loads(args.confidence.read_text())
    update_manifest(args.models_dir, entry, args.default, args.stage)
    print(
        f"exported {onnx_path} ({size_bytes / 2**20:.1f} MB, {entry['latency_ms_per_slice_cpu']} ms/slice)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
