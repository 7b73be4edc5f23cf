#!/usr/bin/env bash
# Run the benchmark on an NVIDIA GPU: a separate venv with CUDA JAX, then bench/run.py.
#
#   bash bench/gpu.sh [bench/run.py options]      e.g.  bash bench/gpu.sh --quick --json outputs/bench_gpu.json
#
# Environment: JAX_CUDA=cuda13 (default; the line of the current JAX install docs) or
# cuda12 for an older driver; VENV=.venv-gpu (where the venv goes); PY=python3.
# The NVIDIA wheels bring CUDA and cuDNN with them; only the driver must be installed.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv-gpu}"
JAX_CUDA="${JAX_CUDA:-cuda13}"
PY="${PY:-python3}"

if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet -e '.[test]'
"$VENV/bin/python" -m pip install --quiet -U "jax[$JAX_CUDA]"

backend=$("$VENV/bin/python" -c 'import jax; print(jax.default_backend())')
if [ "$backend" != "gpu" ]; then
    echo "bench/gpu.sh: JAX sees no GPU (default backend: $backend); check nvidia-smi and JAX_CUDA" >&2
    exit 2
fi
"$VENV/bin/python" -c 'import jax; print("devices:", jax.devices())' >&2
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >&2 || true
exec "$VENV/bin/python" bench/run.py --devices 1 "$@"
