#!/usr/bin/env bash
# Create .venv-train: the Paddle training stack, kept apart from the app (it needs numpy<2).
# Install order and pins from the project's training notes: paddle 2.6.2 first, then paddleseg
# 2.8.0 (which pins opencv-python<=4.6), paddle2onnx 1.3.1, onnxruntime, numpy<2, pandas<3.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv-train/bin/python ] || ! .venv-train/bin/python -c "import paddle, paddleseg, paddle2onnx, onnxruntime, yaml, matplotlib" 2>/dev/null; then
    [ -x .venv-train/bin/python ] || "$PYTHON" -m venv .venv-train
    .venv-train/bin/python -m pip install --quiet --upgrade pip
    .venv-train/bin/python -m pip install --quiet "paddlepaddle==2.6.2" "numpy<2"
    .venv-train/bin/python -m pip install --quiet "paddleseg==2.8.0" "paddle2onnx==1.3.1" onnxruntime "numpy<2" "pandas<3" matplotlib pyyaml
fi
echo "training stack ready in .venv-train ($(.venv-train/bin/python -c 'import paddle; print("paddle", paddle.__version__)' 2>/dev/null | tail -1))"
