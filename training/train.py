"""Train one model of one fold: ``python -m training.train CONFIG --fold A|B|all``.

Our own loop (paddleseg 2.8's trainer, evaluator and losses do not work on every Paddle
version): CE with class weights + soft Dice (+ Tversky), AdamW with warm-up and cosine decay,
augmentation, whole samples or lesion-centred tiles (``data.patch``, training/patches.py),
optionally starting from another run's weights of the same fold (``train.init_from``) and drawing
more often the training samples where those weights marked false tumour (hard negatives),
checkpoints every ``save_every`` iterations and at the time limit (weights, optimiser and
schedule, the sampler's generator state, the log), resume from the latest checkpoint, the
inner-validation score every ``val_every`` iterations with the best weights kept as
``best.pdparams`` (chosen on ``select_on``, inner validation only), a JSON-lines log and a
loss/Dice curve PNG. A run is so a sequence of chunks: each ``--max-minutes`` sitting picks
up where the last one stopped.
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

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import paddle  # noqa: E402
import paddle.nn.functional as F  # noqa: E402
import yaml  # noqa: E402

from training.augment import AugmentConfig, geometric, photometric  # noqa: E402
from training.models import build_model  # noqa: E402
from training.patches import PatchConfig, PatchSampler, cut_tile  # noqa: E402
from training.protocol import FOLDS  # noqa: E402
from training.protocol import LABEL_IGNORE as IGNORE  # noqa: E402


def load_config(path: Path) -> dict:
    """A YAML config (see training/configs/)."""
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def run_dir(config: dict, fold: str, override: Path | None = None) -> Path:
    return override or Path(config.get("output", "training/work/runs")) / f"{config['name']}_fold{fold}"


def normalisation(root: Path) -> tuple[float, float]:
    """(mean, std) of the sample folder's input spec (``meta.json``, written by training.preprocess)."""
    meta_path = Path(root) / "meta.json"
    spec = json.loads(meta_path.read_text()).get("input", {}) if meta_path.is_file() else {}
    return float(spec.get("mean", 0.5)), float(spec.get("std", 0.5))


def with_synthetic_copies(root: Path, cases: list[str]) -> list[str]:
    """Patient names of a cross-validation fold plus the synthetic-tumour copies made of them."""
    listed = []
    for case in cases:
        listed.append(case)
        if "+" not in case:
            listed += sorted(p.stem for p in (Path(root) / "cases").glob(f"{case}+synth*.txt"))
    return listed


def _case_arrays(root: Path, case: str) -> tuple[np.ndarray, np.ndarray]:
    """One case's samples as arrays, from the cache under ``root/cache`` (made on first use).

    Decoding thousands of PNGs costs minutes per run start; the cache is rebuilt when the case
    list is newer than it, and written under a temporary name first so a killed run leaves none
    half-written.
    """
    listing = root / "cases" / f"{case}.txt"
    cache = root / "cache"
    paths = cache / f"{case}.images.npy", cache / f"{case}.labels.npy"
    if all(p.is_file() and p.stat().st_mtime >= listing.stat().st_mtime for p in paths):
        return np.load(paths[0]), np.load(paths[1])
    images, labels = [], []
    for line in filter(None, listing.read_text().split("\n")):
        image_path, label_path = line.split()
        image = cv2.imread(str(root / image_path), cv2.IMREAD_UNCHANGED)
        images.append(image[:, :, None] if image.ndim == 2 else image)
        labels.append(cv2.imread(str(root / label_path), cv2.IMREAD_UNCHANGED))
    arrays = np.stack(images), np.stack(labels)
    cache.mkdir(exist_ok=True)
    for array, path in zip(arrays, paths, strict=True):
        with open(path.with_suffix(".tmp"), "wb") as handle:
            np.save(handle, array)
        path.with_suffix(".tmp").replace(path)
    return arrays


def read_samples(root: Path, cases: list[str], limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """All samples of the given case lists as uint8 images [n, h, w, c] and labels [n, h, w]."""
    parts = [_case_arrays(Path(root), case) for case in cases]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if limit:
        pick = np.linspace(0, len(images) - 1, min(limit, len(images))).astype(int)
        images, labels = images[pick], labels[pick]
    return images, labels


def to_tensor(units: np.ndarray, norm: tuple[float, float] = (0.5, 0.5)) -> paddle.Tensor:
    """[n, h, w, c] in [0, 1] to normalised NCHW float32 with the spec's (mean, std), as the app feeds ONNX."""
    mean, std = norm
    return paddle.to_tensor(((units - mean) / std).transpose(0, 3, 1, 2).astype(np.float32))


def make_batch(
    images: np.ndarray,
    labels: np.ndarray,
    size: int,
    aug: AugmentConfig,
    rng: np.random.Generator,
    tumour_indices: np.ndarray | None = None,
    tumour_fraction: float = 0.0,
    norm: tuple[float, float] = (0.5, 0.5),
    hard_indices: np.ndarray | None = None,
    hard_fraction: float = 0.0,
) -> tuple[paddle.Tensor, paddle.Tensor]:
    """A random batch; ``tumour_fraction`` of it drawn from slices that contain tumour and
    ``hard_fraction`` from the hard negatives (slices where the starting weights marked false tumour)."""
    picks = rng.integers(0, len(images), size)
    if tumour_indices is not None and len(tumour_indices) and tumour_fraction > 0:
        chosen = rng.random(size) < tumour_fraction
        picks[chosen] = rng.choice(tumour_indices, int(chosen.sum()))
    if hard_indices is not None and len(hard_indices) and hard_fraction > 0:
        chosen = rng.random(size) < hard_fraction
        picks[chosen] = rng.choice(hard_indices, int(chosen.sum()))
    batch_images, batch_labels = [], []
    for i in picks:
        image, label = geometric(images[i], labels[i], aug, rng)
        image = image[:, :, None] if image.ndim == 2 else image
        batch_images.append(photometric(image.astype(np.float32) / 255.0, aug, rng))
        batch_labels.append(label)
    return to_tensor(np.stack(batch_images), norm), paddle.to_tensor(np.stack(batch_labels).astype(np.int64))


def make_patch_batch(
    images: np.ndarray,
    labels: np.ndarray,
    size: int,
    sampler: PatchSampler,
    aug: AugmentConfig,
    rng: np.random.Generator,
    norm: tuple[float, float] = (0.5, 0.5),
) -> tuple[paddle.Tensor, paddle.Tensor, dict[str, int]]:
    """A batch of tiles (see training/patches.py) and how many came from each pool of centres."""
    batch_images, batch_labels, pools = [], [], {}
    for index, y, x, pool in sampler.centres(size, rng):
        tile, tile_label = cut_tile(images[index], labels[index], (y, x), sampler.config.size, aug, rng)
        tile = tile[:, :, None] if tile.ndim == 2 else tile
        batch_images.append(photometric(tile.astype(np.float32) / 255.0, aug, rng))
        batch_labels.append(tile_label)
        pools[pool] = pools.get(pool, 0) + 1
    x_tensor = to_tensor(np.stack(batch_images), norm)
    return x_tensor, paddle.to_tensor(np.stack(batch_labels).astype(np.int64)), pools


def loss_fn(
    logits: paddle.Tensor,
    labels: paddle.Tensor,
    class_weights: list[float],
    dice_weight: float,
    tversky_weight: float = 0.0,
    tversky_alpha: float = 0.3,
) -> tuple[paddle.Tensor, dict[str, float]]:
    """Weighted CE + soft Dice over the foreground classes (+ a Tversky term on tumour); label 255 counts for none.

    The Tversky index TP / (TP + a FP + (1 - a) FN) with a < 0.5 costs a missed tumour voxel
    more than a false one: the recall-weighted term (Salehi et al., 2017).
    """
    weight = paddle.to_tensor(np.array(class_weights, np.float32))
    ce = F.cross_entropy(logits, labels, weight=weight, axis=1, ignore_index=IGNORE)
    valid = (labels != IGNORE).astype("float32").unsqueeze(1)
    probs = F.softmax(logits, axis=1) * valid
    onehot = (
        F.one_hot(paddle.where(labels == IGNORE, paddle.zeros_like(labels), labels), logits.shape[1]).transpose(
            [0, 3, 1, 2]
        )
        * valid
    )
    dims = [0, 2, 3]
    intersection = paddle.sum(probs * onehot, axis=dims)
    total = paddle.sum(probs, axis=dims) + paddle.sum(onehot, axis=dims)
    dice = (2 * intersection + 1.0) / (total + 1.0)
    dice_loss = 1.0 - paddle.mean(dice[1:])
    loss = ce + dice_weight * dice_loss
    parts = {"ce": float(ce), "dice_loss": float(dice_loss)}
    if tversky_weight:
        tp = intersection[2]
        fp = paddle.sum(probs[:, 2] * (1 - onehot[:, 2]))
        fn = paddle.sum((1 - probs[:, 2]) * onehot[:, 2] * valid[:, 0])
        tversky_loss = 1.0 - (tp + 1.0) / (tp + tversky_alpha * fp + (1 - tversky_alpha) * fn + 1.0)
        loss = loss + tversky_weight * tversky_loss
        parts["tversky_loss"] = float(tversky_loss)
    return loss, parts


def mine_hard_negatives(
    model: paddle.nn.Layer,
    images: np.ndarray,
    labels: np.ndarray,
    min_pixels: int,
    batch: int = 16,
    norm: tuple[float, float] = (0.5, 0.5),
) -> np.ndarray:
    """Indices of the samples on which ``model`` marks at least ``min_pixels`` of tumour where the
    reference has none (outside label 255): its false positives, drawn more often as hard negatives."""
    model.eval()
    hard = []
    with paddle.no_grad():
        for start in range(0, len(images), batch):
            units = images[start : start + batch].astype(np.float32) / 255.0
            pred = paddle.argmax(model(to_tensor(units, norm))[0], axis=1).numpy()
            truth = labels[start : start + batch]
            wrong = (pred == 2) & (truth != 2) & (truth != IGNORE)
            counts = wrong.reshape(len(wrong), -1).sum(axis=1)
            hard.extend(start + int(i) for i in np.flatnonzero(counts >= min_pixels))
    model.train()
    return np.array(hard, dtype=np.int64)


def evaluate(
    model: paddle.nn.Layer,
    images: np.ndarray,
    labels: np.ndarray,
    batch: int = 16,
    norm: tuple[float, float] = (0.5, 0.5),
) -> dict[str, float]:
    """Pooled 2D Dice of liver (1 or 2) and tumour (2) over the validation samples, outside label 255."""
    model.eval()
    sums = {"liver": [0, 0], "tumour": [0, 0]}
    with paddle.no_grad():
        for start in range(0, len(images), batch):
            units = images[start : start + batch].astype(np.float32) / 255.0
            pred = paddle.argmax(model(to_tensor(units, norm))[0], axis=1).numpy()
            truth = labels[start : start + batch]
            valid = truth != IGNORE
            for name, p, t in (("liver", pred > 0, (truth > 0) & valid), ("tumour", pred == 2, truth == 2)):
                p = p & valid
                sums[name][0] += 2 * int(np.count_nonzero(p & t))
                sums[name][1] += int(p.sum() + t.sum())
    model.train()
    return {f"val_{name}_dice": (a / b if b else 1.0) for name, (a, b) in sums.items()}


def save_curve(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [h for h in history if "loss" in h]
    val = [h for h in history if "val_liver_dice" in h]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.5))
    left.plot([h["iter"] for h in train], [h["loss"] for h in train], label="total")
    left.plot([h["iter"] for h in train], [h["ce"] for h in train], label="CE")
    left.plot([h["iter"] for h in train], [h["dice_loss"] for h in train], label="1 - Dice")
    left.set_xlabel("iteration")
    left.set_title("training loss")
    left.legend()
    for key, name in (("val_liver_dice", "liver"), ("val_tumour_dice", "tumour")):
        right.plot([h["iter"] for h in val], [h[key] for h in val], marker="o", label=name)
    right.set_ylim(0, 1)
    right.set_xlabel("iteration")
    right.set_title("validation Dice (validation cases, 2D)")
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def save_checkpoint(out: Path, model, optimizer, state: dict) -> None:
    ckpt = out / "checkpoint"
    ckpt.mkdir(parents=True, exist_ok=True)
    paddle.save(model.state_dict(), str(ckpt / "model.pdparams.tmp"))
    paddle.save(optimizer.state_dict(), str(ckpt / "model.pdopt.tmp"))
    (ckpt / "model.pdparams.tmp").replace(ckpt / "model.pdparams")
    (ckpt / "model.pdopt.tmp").replace(ckpt / "model.pdopt")
    (ckpt / "state.json").write_text(json.dumps(state))


def fold_cases(fold: str, train_cases: list[str] | None = None, val_cases: list[str] | None = None) -> dict:
    """The protocol fold, or a custom one when case lists are given (tests, new data)."""
    if train_cases:
        return {
            "train": train_cases,
            "val": val_cases or train_cases[:1],
            "test_case": None,
            "protocol": f"custom: trained on {', '.join(train_cases)}; no held-out case",
        }
    return FOLDS[fold]


def train(
    config: dict,
    fold: str,
    out: Path,
    max_minutes: float | None = None,
    train_cases: list[str] | None = None,
    val_cases: list[str] | None = None,
) -> dict:
    """Train (or resume) one run; returns the final state."""
    data_cfg, train_cfg = config["data"], config["train"]
    folds = fold_cases(fold, train_cases, val_cases)
    fold = fold if not train_cases else "custom"
    root = Path(data_cfg["root"])
    norm = normalisation(root)
    train_list = with_synthetic_copies(root, folds["train"]) if fold.startswith("cv") else folds["train"]
    images, labels = read_samples(root, train_list, data_cfg.get("limit"))
    val_images, val_labels = read_samples(root, folds["val"], data_cfg.get("val_limit"))
    in_channels = images.shape[-1]
    paddle.seed(int(train_cfg.get("seed", 0)))
    model = build_model(config["model"], num_classes=3, in_channels=in_channels)
    iters = int(train_cfg["iters"])
    warmup = int(train_cfg.get("warmup", min(50, iters // 10)))
    schedule = paddle.optimizer.lr.CosineAnnealingDecay(
        float(train_cfg["lr"]), T_max=max(iters - warmup, 1), eta_min=float(train_cfg.get("min_lr", 1e-5))
    )
    if warmup:
        schedule = paddle.optimizer.lr.LinearWarmup(schedule, warmup, 0.0, float(train_cfg["lr"]))
    optimizer = paddle.optimizer.AdamW(
        schedule, parameters=model.parameters(), weight_decay=float(train_cfg.get("weight_decay", 1e-4))
    )
    out.mkdir(parents=True, exist_ok=True)
    protocol = folds["protocol"]
    meta_path = root / "meta.json"
    ignored = json.loads(meta_path.read_text()).get("ignored") if meta_path.is_file() else None
    if ignored:
        protocol += f"; label 'ignore' (no loss) on {', '.join(ignored)} outside the liver"
    state = {
        "iter": 0,
        "history": [],
        "fold": fold,
        "protocol": protocol,
        "config": config,
        "in_channels": int(in_channels),
        "train_seconds": 0.0,
        "val_cases": folds["val"],
    }
    ckpt = out / "checkpoint"
    if train_cfg.get("init_from") and not (ckpt / "state.json").is_file():
        start = Path(str(train_cfg["init_from"]).format(fold=fold))  # a fine-tune starts from a run's weights
        if not start.is_file():
            raise SystemExit(f"init_from: {start} does not exist; train that run first")
        model.set_state_dict(paddle.load(str(start)))
        state["init_from"] = str(start)
        state["protocol"] += f"; started from {start} (same fold)"
    hard_fraction = float(train_cfg.get("hard_negative_fraction", 0.0))
    if hard_fraction and not (ckpt / "state.json").is_file():  # mined once, from the starting weights
        hard = mine_hard_negatives(model, images, labels, int(train_cfg.get("hard_negative_min_pixels", 20)), norm=norm)
        state["hard_negatives"] = hard.tolist()
        state["protocol"] += (
            f"; {len(hard)} of {len(images)} training samples where the starting weights marked false tumour "
            f"drawn as {hard_fraction:.0%} of each batch"
        )
        print(f"hard negatives: {len(hard)} of {len(images)} training samples", file=sys.stderr)
    if (ckpt / "state.json").is_file():
        state = json.loads((ckpt / "state.json").read_text())
        model.set_state_dict(paddle.load(str(ckpt / "model.pdparams")))
        optimizer.set_state_dict(paddle.load(str(ckpt / "model.pdopt")))
        if state["config"] != config:  # keep an honest record of mid-run changes
            state.setdefault("config_changes", []).append({"iter": state["iter"], "previous": state["config"]})
            state["config"] = config
        state.setdefault("val_cases", folds["val"])
        print(f"resumed from iteration {state['iter']}", file=sys.stderr)
    rng = np.random.default_rng([int(train_cfg.get("seed", 0)), state["iter"]])
    if "rng_state" in state:  # the sampler carries on exactly where the last chunk stopped
        rng.bit_generator.state = state["rng_state"]
    aug = AugmentConfig(**config.get("augment", {}))
    patch = PatchConfig(**data_cfg["patch"]) if data_cfg.get("patch") else None
    sampler = PatchSampler(labels, patch) if patch else None
    log = (out / "train.log.jsonl").open("a")
    log.write(json.dumps({"chunk_start": state["iter"], "time": time.strftime("%Y-%m-%dT%H:%M:%S")}) + "\n")
    started = time.perf_counter()
    base_seconds = state["train_seconds"]
    model.train()
    tumour_indices = np.flatnonzero((labels == 2).reshape(len(labels), -1).any(axis=1))
    tumour_fraction = float(train_cfg.get("tumour_fraction", 0.0))
    hard_indices = np.array(state.get("hard_negatives", []), dtype=np.int64)
    select_on = train_cfg.get("select_on", "val_mean_dice")
    batch_size = int(train_cfg["batch_size"])
    pools: dict[str, int] = state.setdefault("pools", {})
    while state["iter"] < iters:
        if sampler:
            x, y, drawn = make_patch_batch(images, labels, batch_size, sampler, aug, rng, norm)
            for pool, count in drawn.items():
                pools[pool] = pools.get(pool, 0) + count
        else:
            x, y = make_batch(
                images, labels, batch_size, aug, rng, tumour_indices, tumour_fraction, norm, hard_indices, hard_fraction
            )
        loss, parts = loss_fn(
            model(x)[0],
            y,
            train_cfg["class_weights"],
            float(train_cfg.get("dice_weight", 1.0)),
            float(train_cfg.get("tversky_weight", 0.0)),
            float(train_cfg.get("tversky_alpha", 0.3)),
        )
        loss.backward()
        optimizer.step()
        optimizer.clear_grad()
        schedule.step()
        state["iter"] += 1
        state["train_seconds"] = base_seconds + time.perf_counter() - started
        it = state["iter"]
        if it % int(train_cfg.get("log_every", 10)) == 0 or it == 1:
            entry = {
                "iter": it,
                "loss": float(loss),
                **parts,
                "lr": float(optimizer.get_lr()),
                "seconds": round(state["train_seconds"], 1),
            }
            state["history"].append(entry)
            log.write(json.dumps(entry) + "\n")
            log.flush()
        if it % int(train_cfg.get("val_every", 100)) == 0 or it == iters:
            scores = evaluate(model, val_images, val_labels, norm=norm)
            scores["val_mean_dice"] = (scores["val_liver_dice"] + scores["val_tumour_dice"]) / 2
            entry = {"iter": it, **scores}
            state["history"].append(entry)
            log.write(json.dumps(entry) + "\n")
            log.flush()
            save_curve(state["history"], out / "curve.png")
            print(json.dumps(entry), file=sys.stderr)
            if scores[select_on] > state.get("best", {}).get(select_on, -1.0):
                paddle.save(model.state_dict(), str(out / "best.pdparams.tmp"))
                (out / "best.pdparams.tmp").replace(out / "best.pdparams")
                state["best"] = entry
        out_of_time = max_minutes is not None and (time.perf_counter() - started) > 60 * max_minutes
        if it % int(train_cfg.get("save_every", 100)) == 0 or it == iters or out_of_time:
            state["rng_state"] = rng.bit_generator.state
            save_checkpoint(out, model, optimizer, state)
        if out_of_time and it < iters:
            print(f"time limit reached at iteration {it}/{iters}; run again to resume", file=sys.stderr)
            return state
    paddle.save(model.state_dict(), str(out / "final.pdparams"))
    (out / "final.json").write_text(json.dumps({k: v for k, v in state.items() if k != "history"}, indent=2))
    return state


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train a segmentation model on one protocol fold.")
    parser.add_argument("config", type=Path)
    parser.add_argument("--fold", choices=sorted(FOLDS), default="A")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: output/NAME_foldF)")
    parser.add_argument("--iters", type=int, default=None, help="override the config's iterations")
    parser.add_argument("--data", type=Path, default=None, help="override the config's data root")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (and checkpoint) after this long")
    parser.add_argument("--train-cases", nargs="+", default=None, help="case lists instead of the fold's")
    parser.add_argument("--val-cases", nargs="+", default=None)
    parser.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override config values, e.g. model.base_channels=4 train.batch_size=2",
    )
    args = parser.parse_args(argv)
    config = load_config(args.config)
    if args.iters:
        config["train"]["iters"] = args.iters
    if args.data:
        config["data"]["root"] = str(args.data)
    for item in args.set:
        key, value = item.split("=", 1)
        section, name = key.split(".", 1)
        config[section][name] = yaml.safe_load(value)
    paddle.set_device("cpu" if not paddle.is_compiled_with_cuda() else "gpu")
    state = train(
        config, args.fold, run_dir(config, args.fold, args.out), args.max_minutes, args.train_cases, args.val_cases
    )
    print(
        f"{config['name']} fold {args.fold}: iteration {state['iter']}/{config['train']['iters']}, "
        f"{state['train_seconds'] / 60:.1f} min",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
