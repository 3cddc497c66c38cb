#!/usr/bin/env bash
# Compile-checks every kernels/cuda/*.cu with nvcc for sm_80 (A100) and
# sm_90 (H100/H200): warnings are errors, register spills are errors, no
# FMA contraction (the flags kernels/build.rs builds with). Needs no GPU;
# installs nvcc from PyPI into .nvcc/ when none is found (NVCC, CUDA_HOME,
# PATH).
set -euo pipefail
cd "$(dirname "$0")/.."
nvcc="${NVCC:-}"
if [ -z "$nvcc" ] && [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then
    nvcc="$CUDA_HOME/bin/nvcc"
fi
if [ -z "$nvcc" ]; then
    scripts/install-nvcc.sh
    nvcc=.nvcc/nvidia/cu13/bin/nvcc
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
n=0
for cu in kernels/cuda/*.cu; do
    for sm in 80 90; do
        "$nvcc" -std=c++17 --fmad=false -Werror all-warnings -Xptxas -warn-spills,-Werror \
            -arch=sm_$sm -cubin -o "$out/$(basename "$cu" .cu)_sm$sm.cubin" "$cu"
        n=$((n + 1))
    done
done
echo "nvcc: $n kernel builds (sm_80, sm_90) clean: $(ls kernels/cuda/*.cu | xargs -n1 basename | tr '\n' ' ')"
