"""Paddle Inference vs ONNX Runtime on the same model and the same input, in one run.

Usage (training environment, from the repository root):
    .venv-train/bin/python -m bench.bench_paddle_vs_ort [RUN_DIR ...] [--repeats N]

For each trained run (default: every run under training/work/runs with weights), the model
is saved as a static Paddle program (``paddle.jit.save``) and exported to ONNX; both are
timed on one batch of 8 real-sized slices, alternating the two so background load hits both
alike. Prints ms/slice for each and the ratio Paddle / ONNX Runtime.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from training.paddle_env import ensure_system_zlib, set_threads

ensure_system_zlib()
set_threads()

import numpy as np  # noqa: E402
import paddle  # noqa: E402
from paddle import inference  # noqa: E402

from training.export import LogitsOnly, load_run, ort_session  # noqa: E402


def paddle_predictor(model: paddle.nn.Layer, shape: tuple[int, ...], folder: Path) -> inference.Predictor:
    spec = paddle.static.InputSpec([None, *shape[1:]], "float32", "x")
    paddle.jit.save(paddle.jit.to_static(LogitsOnly(model), input_spec=[spec]), str(folder / "model"))
    config = inference.Config(str(folder / "model.pdmodel"), str(folder / "model.pdiparams"))
    config.disable_gpu()
    config.set_cpu_math_library_num_threads(os.cpu_count() or 1)
    config.switch_ir_optim(True)
    config.enable_mkldnn()
    config.disable_glog_info()
    return inference.create_predictor(config)


def run_paddle(predictor: inference.Predictor, x: np.ndarray) -> np.ndarray:
    handle = predictor.get_input_handle(predictor.get_input_names()[0])
    handle.reshape(x.shape)
    handle.copy_from_cpu(x)
    predictor.run()
    return predictor.get_output_handle(predictor.get_output_names()[0]).copy_to_cpu()


def bench_run(run: Path, repeats: int) -> dict:
    state, model = load_run(run)
    size, channels = int(state["config"]["data"]["size"]), int(state["in_channels"])
    x = np.random.default_rng(0).normal(size=(8, channels, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        predictor = paddle_predictor(model, x.shape, folder)
        spec = paddle.static.InputSpec([None, channels, size, size], "float32", "x")
        paddle.onnx.export(LogitsOnly(model), str(folder / "model"), input_spec=[spec], opset_version=13)
        session = ort_session(folder / "model.onnx")
        name = session.get_inputs()[0].name
        paddle_out, ort_out = run_paddle(predictor, x), session.run(None, {name: x})[0]  # warm-up
        paddle_times, ort_times = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            run_paddle(predictor, x)
            paddle_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            session.run(None, {name: x})
            ort_times.append(time.perf_counter() - started)
    paddle_ms, ort_ms = 1000 * min(paddle_times) / 8, 1000 * min(ort_times) / 8
    return {
        "run": run.name,
        "paddle_ms": paddle_ms,
        "ort_ms": ort_ms,
        "ratio": paddle_ms / ort_ms,
        "max_abs_diff": float(np.abs(paddle_out - ort_out).max()),
        "input": f"8×{channels}×{size}×{size}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = args.runs or sorted(p.parent for p in Path("training/work/runs").glob("*/final.pdparams"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; paddle {paddle.__version__}; "
        f"best of {args.repeats}, batch 8"
    )
    print(
        f"{'run':<22} {'input':<16} {'Paddle ms/slice':>16} {'ORT ms/slice':>13} {'Paddle/ORT':>11} {'max |diff|':>11}"
    )
    for run in runs:
        r = bench_run(run, args.repeats)
        print(
            f"{r['run']:<22} {r['input']:<16} {r['paddle_ms']:>16.1f} {r['ort_ms']:>13.1f} {r['ratio']:>11.2f} "
            f"{r['max_abs_diff']:>11.2e}"
        )


if __name__ == "__main__":
    main()
