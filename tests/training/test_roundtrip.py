"""Train two steps of a tiny model on real slices, export it, check parity, run it in the app."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from liverhealth.imaging import load
from liverhealth.inference import Segmenter, load_manifest
from tests.helpers.prerequisites import require
from training import preprocess

REPO = Path(__file__).resolve().parents[2]
TRAIN_PYTHON = REPO / ".venv-train" / "bin" / "python"
pytestmark = pytest.mark.training_env  # every test runs TRAIN_PYTHON itself (no fixture says so)


def require_training_stack() -> None:
    """Fail with the fix when the separate training venv is missing."""
    require(
        TRAIN_PYTHON.exists(),
        "The training stack is not installed: run `bash training/setup.sh` (`bash scripts/test.sh` does).",
    )


def run_in_training_env(script: str) -> str:
    """Run a Python snippet in the training venv (system zlib preloaded, as the entry points do); its stdout."""
    require_training_stack()
    result = subprocess.run(
        [str(TRAIN_PYTHON), "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "LD_PRELOAD": "/lib/x86_64-linux-gnu/libz.so.1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def tiny_training(out: Path, data: Path) -> list[str]:
    """The command line of a two-iteration run of a tiny UNet on 3Dircadb1.1's samples."""
    return [
        str(TRAIN_PYTHON),
        "-m",
        "training.train",
        "training/configs/unet_w16.yaml",
        "--out",
        str(out),
        "--data",
        str(data),
        "--iters",
        "2",
        "--train-cases",
        "3Dircadb1.1",
        "--set",
        "model.base_channels=4",
        "model.depth=2",
        "train.batch_size=2",
        "data.size=64",
        "data.limit=12",
        "data.val_limit=4",
    ]


def test_train_export_parity_round_trip(data_root, tmp_path):
    require_training_stack()
    data = tmp_path / "data"
    assert (
        preprocess.main(
            [
                "--out",
                str(data),
                "--ircadb",
                str(data_root / "3Dircadb1.1"),
                "--size",
                "64",
                "--synthetic-copies",
                "0",
                "--negatives-every",
                "0",
                "--margin",
                "0",
                "--pixel-mm",
                "6.0",
            ]
        )
        == 0
    )
    run = tmp_path / "run"
    train = subprocess.run(
        [*tiny_training(run, data), "train.val_every=2", "train.log_every=1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    assert (run / "final.pdparams").is_file() and (run / "curve.png").is_file()
    log = [json.loads(line) for line in (run / "train.log.jsonl").read_text().splitlines()]
    assert [entry["iter"] for entry in log if "loss" in entry] == [1, 2]
    models = tmp_path / "models"
    export = subprocess.run(
        [str(TRAIN_PYTHON), "-m", "training.export", str(run), "--id", "tiny", "--models-dir", str(models)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert export.returncode == 0, export.stderr[-2000:]
    assert sorted(p.name for p in models.iterdir()) == ["manifest.json", "tiny.onnx"]
    parity = json.loads((run / "parity.json").read_text())
    assert parity["max_abs_diff"] <= 1e-3 and parity["argmax_agreement"] >= 0.999
    manifest = load_manifest(models)
    spec = manifest.get("tiny")
    assert spec.input.size == (64, 64) and spec.input.context_slices == 1 and spec.input.pixel_mm == 6.0
    assert spec.trained["fold"] == "custom" and spec.trained["iterations"] == 2
    volume = load(data_root / "dcmqi" / "ct-3slice")
    labels = Segmenter(manifest).segment(volume, "tiny").labels
    assert labels.shape == volume.shape and set(np.unique(labels)) <= {0, 1, 2}
    fine = tmp_path / "fine"
    tune = [*tiny_training(fine, data), "train.hard_negative_fraction=0.5"]
    missing = subprocess.run(
        [*tune, f"train.init_from={tmp_path / 'nowhere.pdparams'}"], cwd=REPO, capture_output=True, text=True
    )
    assert missing.returncode != 0 and "does not exist; train that run first" in missing.stderr
    started = subprocess.run(
        [*tune, f"train.init_from={run / 'final.pdparams'}"], cwd=REPO, capture_output=True, text=True, timeout=600
    )
    assert started.returncode == 0, started.stderr[-2000:]
    state = json.loads((fine / "final.json").read_text())
    assert state["init_from"] == str(run / "final.pdparams") and "started from" in state["protocol"]
    assert isinstance(state["hard_negatives"], list) and "hard negatives:" in started.stderr


def test_every_config_builds_its_model():
    """Each YAML under training/configs parses and its model maps [N, 3, H, W] to three-class logits."""
    stdout = run_in_training_env(
        "import sys, paddle\n"
        "from pathlib import Path\n"
        "from training.train import load_config\n"
        "from training.models import build_model\n"
        "for path in sorted(Path('training/configs').glob('*.yaml')):\n"
        "    config = load_config(path)\n"
        "    model = build_model(config['model'], 3, 2 * int(config['data']['context']) + 1)\n"
        "    model.eval()\n"
        "    out = model(paddle.zeros([1, 3, 64, 64]))\n"
        "    out = out[0] if isinstance(out, (list, tuple)) else out\n"
        "    print(path.stem, config['name'], tuple(out.shape))\n"
    )
    built = dict(line.split(" ", 1) for line in stdout.splitlines())
    expected = {path.stem for path in (REPO / "training" / "configs").glob("*.yaml")}
    assert set(built) == expected
    assert all(line.endswith("(1, 3, 64, 64)") for line in built.values()), built


def test_ignored_pixels_count_for_nothing_in_the_loss():
    """Label 255 pixels: the loss equals the loss over the other pixels alone."""
    stdout = run_in_training_env(
        "import numpy as np, paddle\n"
        "from training.train import loss_fn, IGNORE\n"
        "paddle.seed(0)\n"
        "logits = paddle.randn([2, 3, 8, 8])\n"
        "labels = np.random.default_rng(0).integers(0, 3, (2, 8, 8)).astype('int64')\n"
        "masked = labels.copy(); masked[:, :4] = IGNORE\n"
        "def parts(x, y):\n"
        "    _, p = loss_fn(x, paddle.to_tensor(y), [0.3, 1, 2], 1.0, tversky_weight=1.0)\n"
        "    return p['ce'], p['dice_loss'], p['tversky_loss']\n"
        "full = parts(logits, labels)\n"
        "ignored = parts(logits, masked)\n"
        "half = parts(logits[:, :, 4:], labels[:, 4:])\n"
        "print(*full, *ignored, *half)\n"
    )
    values = [float(v) for v in stdout.split()]
    full, ignored, half = values[0:3], values[3:6], values[6:9]
    assert ignored == pytest.approx(half, rel=1e-5)
    assert all(abs(a - b) > 1e-3 for a, b in zip(ignored, full, strict=True))  # the masked half did change every term


def test_hard_negatives_are_the_samples_with_false_tumour():
    """A layer marking tumour on every left half: sample 0 has tumour there (no false positive),
    sample 1 none (a hard negative), sample 2 has the left half ignored (label 255: nothing counts)."""
    stdout = run_in_training_env(
        "import numpy as np, paddle\n"
        "from training.train import mine_hard_negatives, IGNORE\n"
        "class LeftTumour(paddle.nn.Layer):\n"
        "    def forward(self, x):\n"
        "        n, _, h, w = x.shape\n"
        "        logits = np.zeros((n, 3, h, w), 'float32'); logits[:, 2, :, : w // 2] = 5.0\n"
        "        return [paddle.to_tensor(logits)]\n"
        "images = np.zeros((3, 8, 8, 3), 'uint8')\n"
        "labels = np.zeros((3, 8, 8), 'uint8'); labels[0, :, :4] = 2; labels[2, :, :4] = IGNORE\n"
        "print(mine_hard_negatives(LeftTumour(), images, labels, min_pixels=4).tolist())\n"
    )
    assert stdout.strip() == "[1]"
