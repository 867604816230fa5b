#!/usr/bin/env bash
# Create .venv-peer in the repository root (or $PEER_VENV): a Python 3.6 virtual environment,
# kept apart from the app's .venv, with the published peer tool pyliverlesionseg 0.3 (KU Leuven; TensorFlow 1.12 + Keras
# 2.2.4, trained weights inside the wheel) for the benchmark that compares it with LiverHealth.
# The peer is never a dependency of the app; only bench/peer/run_pyliverlesionseg.py uses it.
#
# Idempotent: a venv that already imports the pinned set is left as it is.
# The first run downloads about 150 MB from PyPI and may take several minutes.
#
# Usage: bash bench/peer/setup_pyliverlesionseg.sh      (PYTHON36=/path/to/python3.6 to choose one)
# Exit codes: 0 ready, 3 no Python 3.6 found, other: pip or the import check failed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${PEER_VENV:-$ROOT/.venv-peer}"

# The working set, found by trial: pyliverlesionseg 0.3 asks for tensorflow==1.12.0,
# keras==2.2.4, h5py==2.10 and pymirc/pynetdicom; everything else is pinned to the last
# releases that install on Python 3.6 and work with TF 1.12 (numpy < 1.17 avoids TF 1.12's
# numpy FutureWarnings, protobuf < 3.20, gast 0.2.2 as TF 1.12 expects).
PINS=(
  "pyliverlesionseg==0.3"
  "tensorflow==1.12.0"
  "tensorboard==1.12.2"
  "keras==2.2.4"
  "keras-applications==1.0.8"
  "keras-preprocessing==1.1.2"
  "h5py==2.10.0"
  "numpy==1.16.6"
  "scipy==1.5.4"
  "protobuf==3.19.6"
  "gast==0.2.2"
  "grpcio==1.48.2"
  "absl-py==1.4.0"
  "astor==0.8.1"
  "termcolor==1.1.0"
  "six==1.17.0"
  "Markdown==3.3.7"
  "Werkzeug==2.0.3"
  "nibabel==3.2.2"
  "pydicom==2.3.1"
  "pynetdicom==1.5.7"
  "pymirc==0.29.1"
  "scikit-image==0.17.2"
  "PyWavelets==1.1.1"
  "imageio==2.15.0"
  "tifffile==2020.9.3"
  "networkx==2.5.1"
  "decorator==4.4.2"
  "matplotlib==3.3.4"
  "python-dateutil==2.8.2"
  "pyparsing==3.1.4"
  "kiwisolver==1.3.1"
  "cycler==0.11.0"
  "Pillow==8.4.0"
  "numba==0.53.1"
  "llvmlite==0.36.0"
  "packaging==21.3"
  "PyYAML==6.0.1"
  "importlib-metadata==4.8.3"
  "zipp==3.6.0"
  "typing-extensions==4.1.1"
  "dataclasses==0.8"
)

CHECK='import pyliverlesionseg, tensorflow, keras, numpy, h5py, nibabel, pymirc
assert pyliverlesionseg.__version__ == "0.3", pyliverlesionseg.__version__
assert tensorflow.__version__.startswith("1.12."), tensorflow.__version__
assert keras.__version__ == "2.2.4", keras.__version__'

find_python36() {
  local cand
  for cand in "${PYTHON36:-}" "$(command -v python3.6 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.6.*/bin/python3.6; do
    [ -n "$cand" ] && [ -x "$cand" ] || continue
    # a pyenv shim on the PATH exists but fails when 3.6 is not the selected version: run it
    if "$cand" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 6) else 1)' >/dev/null 2>&1; then
      echo "$cand"
      return 0
    fi
  done
  return 1
}

# pip with this machine's own pip config set aside: its local mirror and find-links hold
# wheels for newer Pythons without Requires-Python data, which an old pip would pick.
peer_pip() {
  env -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL -u PIP_INDEX_URL -u PIP_CONSTRAINT \
    PIP_CONFIG_FILE=/dev/null PIP_DISABLE_PIP_VERSION_CHECK=1 \
    "$VENV/bin/python" -m pip "$@"
}

STAMP="$VENV/.peer-pins"   # the pin list this venv was last installed with

peer_ok() {
  [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] &&
    [ "$(cat "$STAMP")" = "$(printf '%s\n' "${PINS[@]}")" ] &&
    TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c "$CHECK" >/dev/null 2>&1
}

if peer_ok; then
  echo "pyliverlesionseg 0.3 ready: $VENV/bin/python (already set up)"
  exit 0
fi

if ! PY36="$(find_python36)"; then
  echo "setup_pyliverlesionseg: no working Python 3.6 found (python3.6 on PATH, \$PYTHON36, or \$PYENV_ROOT/versions/3.6.*/bin/python3.6); install one, e.g. 'pyenv install 3.6.15'." >&2
  exit 3
fi

if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 6) else 1)' 2>/dev/null; then
  echo "setup_pyliverlesionseg: $VENV is not a Python 3.6 venv; recreating it" >&2
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup_pyliverlesionseg: creating $VENV with $PY36" >&2
  "$PY36" -m venv "$VENV"
fi

echo "setup_pyliverlesionseg: installing pyliverlesionseg 0.3 and TensorFlow 1.12 (several minutes)" >&2
peer_pip install --quiet "pip==21.3.1" "setuptools==59.6.0" "wheel==0.37.1"
peer_pip install --quiet "${PINS[@]}"
printf '%s\n' "${PINS[@]}" > "$STAMP"

if ! peer_ok; then
  rm -f "$STAMP"
  echo "setup_pyliverlesionseg: installed, but the import check failed:" >&2
  TF_CPP_MIN_LOG_LEVEL=3 "$VENV/bin/python" -c "$CHECK" >&2 || true
  exit 1
fi
echo "pyliverlesionseg 0.3 ready: $VENV/bin/python (run bench/peer/run_pyliverlesionseg.py with it)"
