#!/usr/bin/env bash
# Installs nvcc 13.0 (with its NVVM, C runtime headers and CCCL) from PyPI
# into .nvcc/ at the repository root: enough to compile kernels/cuda/*.cu on
# a machine with no CUDA toolkit and no GPU. kernels/build.rs and
# scripts/check-kernels.sh find it there. 13.0 matches the CUDA 13.0 driver
# API the backend is pinned to (cudarc's cuda-13000).
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.nvcc
if [ -x "$dest/nvidia/cu13/bin/nvcc" ]; then
    exit 0
fi
python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$dest" \
    'nvidia-cuda-nvcc==13.0.88' 'nvidia-nvvm==13.0.88' 'nvidia-cuda-crt==13.0.88' \
    'nvidia-cuda-cccl==13.0.85' 'nvidia-cuda-runtime==13.0.96'
"$dest/nvidia/cu13/bin/nvcc" --version | tail -1
