"""Cost of one training step, per iteration and per sample, for several configs in one run.

``python -m training.bench_step CONFIG... --fold cv0 --steps 8`` builds each config's model and
batches from its sample folder (the cache under ``ROOT/cache`` is made on first use), times
batch making and forward + backward + AdamW separately after two warm-up steps, and prints a
JSON line per config. Measure before planning a run: the budget is this cost × iterations × folds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from training.paddle_env import ensure_system_zlib, set_threads

ensure_system_zlib()
set_threads()

import numpy as np  # noqa: E402
import paddle  # noqa: E402

from training import train as trainer  # noqa: E402
from training.augment import AugmentConfig  # noqa: E402
from training.models import build_model  # noqa: E402
from training.patches import PatchConfig, PatchSampler  # noqa: E402


def time_config(path: Path, fold: str, steps: int, data: Path | None = None) -> dict:
    """Seconds per step (batch making and network apart) of one config."""
    config = trainer.load_config(path)
    if data:
        config["data"]["root"] = str(data)
    data_cfg, train_cfg = config["data"], config["train"]
    root = Path(data_cfg["root"])
    norm = trainer.normalisation(root)
    cases = trainer.with_synthetic_copies(root, trainer.FOLDS[fold]["train"])
    loaded = time.perf_counter()
    images, labels = trainer.read_samples(root, cases)
    load_seconds = time.perf_counter() - loaded
    model = build_model(config["model"], num_classes=3, in_channels=images.shape[-1])
    optimizer = paddle.optimizer.AdamW(1e-3, parameters=model.parameters())
    aug = AugmentConfig(**config.get("augment", {}))
    rng = np.random.default_rng(0)
    patch = PatchConfig(**data_cfg["patch"]) if data_cfg.get("patch") else None
    sampler = PatchSampler(labels, patch) if patch else None
    tumour = np.flatnonzero((labels == 2).reshape(len(labels), -1).any(axis=1))
    batch = int(train_cfg["batch_size"])
    batch_s, net_s = [], []
    for step in range(steps + 2):
        t0 = time.perf_counter()
        if sampler:
            x, y, _ = trainer.make_patch_batch(images, labels, batch, sampler, aug, rng, norm)
        else:
            x, y = trainer.make_batch(
                images, labels, batch, aug, rng, tumour, float(train_cfg.get("tumour_fraction", 0)), norm
            )
        t1 = time.perf_counter()
        loss, _ = trainer.loss_fn(
            model(x)[0],
            y,
            train_cfg["class_weights"],
            float(train_cfg.get("dice_weight", 1.0)),
            float(train_cfg.get("tversky_weight", 0.0)),
        )
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        t2 = time.perf_counter()
        if step >= 2:
            batch_s.append(t1 - t0)
            net_s.append(t2 - t1)
    per_iter = float(np.median(batch_s) + np.median(net_s))
    side = int(patch.size if patch else data_cfg["size"])
    return {
        "config": path.stem,
        "input": f"{side}x{side}",
        "batch": batch,
        "samples_loaded": len(images),
        "load_seconds": round(load_seconds, 1),
        "batch_making_s": round(float(np.median(batch_s)), 3),
        "network_s": round(float(np.median(net_s)), 3),
        "s_per_iter": round(per_iter, 3),
        "s_per_sample": round(per_iter / batch, 4),
        "pixels_per_s": round(batch * side * side / per_iter),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path)
    parser.add_argument("--fold", default="cv0")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--data", type=Path, default=None, help="sample folder for every config")
    args = parser.parse_args(argv)
    paddle.set_device("cpu" if not paddle.is_compiled_with_cuda() else "gpu")
    for path in args.configs:
        print(json.dumps(time_config(path, args.fold, args.steps, args.data)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
