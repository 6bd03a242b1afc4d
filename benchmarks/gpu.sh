#!/usr/bin/env bash
# GPU benchmark (jcnn issue 7, point 6): ResNet-50 (224², bf16, b128) and ResNet-18 train-step
# throughput for jcnn vs PyTorch eager and torch.compile, and MFU against the card's measured bf16
# matmul rate. Budget: under 8 minutes on one NVIDIA GPU. Needs jax[cuda] and a CUDA torch in the venv.
#   benchmarks/gpu.sh                    # on the GPU machine; writes benchmarks/results/gpu.json
#   GPU_BENCH_TINY=1 benchmarks/gpu.sh   # tiny sizes, to check the script on a CPU
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
"$PY" -c "import jax; print('jax devices:', jax.devices())"
export XLA_PYTHON_CLIENT_MEM_FRACTION="${XLA_PYTHON_CLIENT_MEM_FRACTION:-0.6}"  # leave room for torch
exec timeout "${GPU_BENCH_TIMEOUT:-480}" "$PY" -m benchmarks.gpu "$@"
