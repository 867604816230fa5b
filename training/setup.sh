#!/usr/bin/env bash
# Create .venv-train: the Paddle training stack, kept apart from the app (it needs numpy<2).
# Install order and pins from the project's training notes: paddle 2.6.2 first, then paddleseg
# 2.8.0 (which pins opencv-python<=4.6), paddle2onnx 1.3.1, onnxruntime, numpy<2, pandas<3.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
# Check by package metadata: importing paddleseg and paddle2onnx together needs the zlib
# preload that training/paddle_env.py sets up.
installed() {
    .venv-train/bin/python - <<'PY' 2>/dev/null
from importlib.metadata import version
assert version("paddlepaddle") == "2.6.2" and version("paddleseg") == "2.8.0"
assert version("paddle2onnx") == "1.3.1" and version("numpy").startswith("1.")
for name in ("onnxruntime", "matplotlib", "PyYAML"):
    version(name)
PY
}
if [ ! -x .venv-train/bin/python ] || ! installed; then
    [ -x .venv-train/bin/python ] || "$PYTHON" -m venv .venv-train
    .venv-train/bin/python -m pip install --quiet --upgrade pip
    .venv-train/bin/python -m pip install --quiet "paddlepaddle==2.6.2" "numpy<2"
    .venv-train/bin/python -m pip install --quiet "paddleseg==2.8.0" "paddle2onnx==1.3.1" onnxruntime "numpy<2" "pandas<3" matplotlib pyyaml
fi
installed || { echo "training/setup.sh: the training stack did not install" >&2; exit 1; }
echo "training stack ready in .venv-train (paddlepaddle 2.6.2, paddleseg 2.8.0, paddle2onnx 1.3.1)"
