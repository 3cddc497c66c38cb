#!/usr/bin/env bash
# GPU checks for the CUDA backend, in two steps, because the GPU machine has
# CUDA 13, PyTorch and transformers but no network (no crate downloads):
#
#   scripts/gpu-check.sh build   # here (x86-64, network): installs nvcc from
#                                # PyPI if needed, builds the GPU test
#                                # executables (--features cuda, release) into
#                                # gpu-bundle/
#   scripts/gpu-check.sh run [DIR]  # there, from the repository root with
#                                # gpu-bundle/ beside it: runs every GPU test
#                                # and the benchmark, writes DIR/report.txt
#                                # (DIR defaults to gpu-bundle)
#
# `run` exits non-zero if any test fails. What it runs: the CUDA backend's
# test suite (kernels/check/tests/cuda, the same one CI runs on the CPU
# emulation), built for the GPU:
# - kernels: every kernel against its CPU twin (poisoned outputs, several
#   shapes; exact for sampled tokens and sketches) and the forward pass
#   against the CPU engine on stories260K;
# - generation: rollouts against the CPU engine's, token for token;
# - rollouts: >= 1,000 rollouts generated on the GPU, verified by the CPU
#   validator with every group proven; zero rejections, and the GPU-vs-CPU
#   sketch / logprob deviation distribution;
# then the benchmark: a random Qwen2.5-1.5B-shape bf16 checkpoint written to
# /tmp, transformers' decode throughput on it (scripts/bench_transformers.py)
# and cuda-bench's table beside it (DIR/bench.md, bench.json,
# transformers.json).
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=gpu-bundle

case "${1:-}" in
build)
    if [ -z "${NVCC:-}" ] && ! command -v nvcc >/dev/null; then
        scripts/install-nvcc.sh
        export NVCC="$PWD/.nvcc/nvidia/cu13/bin/nvcc"
    fi
    rm -rf "$bundle" && mkdir -p "$bundle"
    cargo test --release --no-run -p grail-cuda-check --features cuda --test cuda \
        --message-format=json-render-diagnostics >"$bundle/build.json"
    cargo build --release -p grail-cuda-check --features cuda --bin cuda-bench
    cp target/release/cuda-bench "$bundle/cuda-bench"
    python3 - "$bundle" <<'PY'
import json, shutil, sys
bundle = sys.argv[1]
names = []
for line in open(f"{bundle}/build.json"):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "cuda":
        shutil.copy(m["executable"], f"{bundle}/cuda-tests")
        names.append(m["target"]["name"])
assert names == ["cuda"], names
PY
    # the executables find fixtures through the build's absolute repo path
    pwd >"$bundle/built-at"
    rm "$bundle/build.json"
    strip --strip-debug "$bundle/cuda-tests" "$bundle/cuda-bench"
    ls -la "$bundle"
    ;;
run)
    [ -x "$bundle/cuda-tests" ] || { echo "no $bundle/: run 'scripts/gpu-check.sh build' first" >&2; exit 2; }
    built_at=$(cat "$bundle/built-at")
    if [ "$built_at" != "$PWD" ] && [ ! -e "$built_at" ]; then
        mkdir -p "$(dirname "$built_at")" && ln -s "$PWD" "$built_at"
    fi
    # cuBLAS 13: the toolkit's, else the one PyTorch's wheels bring
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
        $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13/lib") for p in nvidia.__path__))' 2>/dev/null) \
        $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cublas/lib") for p in nvidia.__path__))' 2>/dev/null); do
        if ls "$d"/libcublas.so.13* >/dev/null 2>&1; then
            export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            break
        fi
    done
    out="${2:-$bundle}"
    mkdir -p "$out"
    report="$out/report.txt"
    {
        echo "grail gpu-check $(date -u +%FT%TZ)"
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
    } >"$report"
    status=0
    echo "== CUDA backend tests" | tee -a "$report"
    if ! "$bundle/cuda-tests" --nocapture --test-threads=1 2>&1 | tee -a "$report"; then
        status=1
    fi
    echo "== benchmark: random Qwen2.5-1.5B-shape bf16 checkpoint" | tee -a "$report"
    ckpt=/tmp/grail-bench-qwen2.5-1.5b
    "$bundle/cuda-bench" --synthetic 1.5b --checkpoint-dir "$ckpt" --write-only 2>&1 | tee -a "$report"
    hf=()
    if PYTHONUNBUFFERED=1 python3 scripts/bench_transformers.py --model "$ckpt" \
        --json "$out/transformers.json" 2>&1 | tee -a "$report"; then
        hf=(--transformers "$out/transformers.json")
    else
        echo "transformers baseline FAILED" | tee -a "$report"
        status=1
    fi
    if ! "$bundle/cuda-bench" --model "$ckpt" --label "random Qwen2.5-1.5B-shape checkpoint" \
        ${hf[@]+"${hf[@]}"} --json "$out/bench.json" \
        --markdown "$out/bench.md" 2>&1 | tee -a "$report"; then
        status=1
    fi
    echo "== result: $([ $status = 0 ] && echo PASS || echo FAIL)" | tee -a "$report"
    exit $status
    ;;
*)
    echo "usage: scripts/gpu-check.sh build|run" >&2
    exit 2
    ;;
esac
