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
# transformers.json), with cuBLAS's and gemm.cu's products measured side by
# side at the batch sizes gemm.cu serves; last, with the time left, the kernel and generation
# tests under compute-sanitizer memcheck, and the tests of our own kernels
# under its racecheck and synccheck. The whole run keeps inside
# GPU_CHECK_SECONDS (default 570).
set -euo pipefail
cd "$(dirname "$0")/.."
bundle=gpu-bundle

case "${1:-}" in
build)
    if [ "${GPU_CHECK_EMULATED:-0}" != 1 ] && [ -z "${NVCC:-}" ] && ! command -v nvcc >/dev/null; then
        scripts/install-nvcc.sh
        export NVCC="$PWD/.nvcc/nvidia/cu13/bin/nvcc"
    fi
    rm -rf "$bundle" && mkdir -p "$bundle"
    # GPU_CHECK_EMULATED=1: a bundle for the CPU emulation (a dry run of
    # `run` on a machine without a GPU)
    features=(--features cuda)
    [ "${GPU_CHECK_EMULATED:-0}" = 1 ] && features=()
    cargo test --release --no-run -p grail-cuda-check ${features[@]+"${features[@]}"} --test cuda \
        --message-format=json-render-diagnostics >"$bundle/build.json"
    cargo build --release -p grail-cuda-check ${features[@]+"${features[@]}"} --bin cuda-bench
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
    if [ "${GPU_CHECK_EMULATED:-0}" = 1 ]; then echo emulated; else echo cuda; fi >"$bundle/kind"
    rm "$bundle/build.json"
    strip --strip-debug "$bundle/cuda-tests" "$bundle/cuda-bench"
    ls -la "$bundle"
    ;;
run)
    [ -x "$bundle/cuda-tests" ] || { echo "no $bundle/: run 'scripts/gpu-check.sh build' first" >&2; exit 2; }
    kind=$(cat "$bundle/kind" 2>/dev/null || echo unknown)
    if [ "$kind" != cuda ] && [ "${GPU_CHECK_EMULATED:-0}" != 1 ]; then
        echo "$bundle/ was not built for a GPU (built for: $kind): it proves nothing about one; rebuild with 'scripts/gpu-check.sh build'" >&2
        exit 2
    fi
    built_at=$(cat "$bundle/built-at")
    if [ "$built_at" != "$PWD" ] && [ ! -e "$built_at" ]; then
        mkdir -p "$(dirname "$built_at")" && ln -s "$PWD" "$built_at"
    fi
    # cuBLAS 13: the toolkit's, else the one PyTorch's wheels bring
    cublas="none found (the tests will say which library is missing)"
    for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
        $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cu13/lib") for p in nvidia.__path__))' 2>/dev/null) \
        $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, "cublas/lib") for p in nvidia.__path__))' 2>/dev/null); do
        if ls "$d"/libcublas.so.13* >/dev/null 2>&1; then
            export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
            cublas=$(ls "$d"/libcublas.so.13* | head -1)
            break
        fi
    done
    out="${2:-$bundle}"
    mkdir -p "$out"
    report="$out/report.txt"
    {
        echo "grail gpu-check $(date -u +%FT%TZ), bundle built for: $kind"
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
        echo "cuBLAS: $cublas"
    } >"$report"
    cat "$report"
    status=0
    # Each step runs under its own time limit, cut to what is left of
    # GPU_CHECK_SECONDS (default 570: a device call may run 600 s), so
    # that a hang leaves the later steps their time, the report its lines,
    # and the whole run ends inside the call. Expected: tests ~1 min,
    # checkpoint ~15 s, transformers ~1 min, cuda-bench ~1 min.
    deadline=$((SECONDS + ${GPU_CHECK_SECONDS:-570}))
    step() {
        local limit=$1 left=$((deadline - SECONDS - 10))
        shift
        [ "$left" -lt "$limit" ] && limit=$left
        if [ "$limit" -le 0 ]; then
            echo "SKIPPED (no time left): $*" | tee -a "$report"
            return 124
        fi
        timeout --kill-after=5 "$limit" "$@" 2>&1 | tee -a "$report"
    }
    echo "== CUDA backend tests" | tee -a "$report"
    step 180 "$bundle/cuda-tests" --nocapture --test-threads=1 || status=1
    # GPU_CHECK_BENCH_MODEL, GPU_CHECK_BENCH_ARGS, GPU_CHECK_TORCH_DEVICE and
    # GPU_CHECK_PYTHON exist for dry runs of this script without a GPU
    # (an emulated bundle, a tiny model, torch on the CPU).
    model="${GPU_CHECK_BENCH_MODEL:-}"
    label="random Qwen2.5-1.5B-shape checkpoint"
    if [ -z "$model" ]; then
        model=/tmp/grail-bench-qwen2.5-1.5b
        echo "== benchmark: $label" | tee -a "$report"
        step 60 "$bundle/cuda-bench" --synthetic 1.5b --checkpoint-dir "$model" --write-only || status=1
    else
        label="$model"
        echo "== benchmark: $model" | tee -a "$report"
    fi
    read -r -a bench_args <<<"${GPU_CHECK_BENCH_ARGS:-}"
    hf=()
    if PYTHONUNBUFFERED=1 step 120 "${GPU_CHECK_PYTHON:-python3}" scripts/bench_transformers.py \
        --model "$model" --device "${GPU_CHECK_TORCH_DEVICE:-cuda}" ${bench_args[@]+"${bench_args[@]}"} \
        --json "$out/transformers.json"; then
        hf=(--transformers "$out/transformers.json")
    else
        echo "transformers baseline FAILED" | tee -a "$report"
        status=1
    fi
    step 150 "$bundle/cuda-bench" --model "$model" --label "$label" ${bench_args[@]+"${bench_args[@]}"} \
        ${hf[@]+"${hf[@]}"} --json "$out/bench.json" --markdown "$out/bench.md" || status=1
    # Last, with the time that is left, compute-sanitizer (it checks what
    # the emulation cannot: the emulation runs each block's threads one
    # after another, so it neither traps out-of-bounds device accesses nor
    # sees two threads race):
    # - memcheck: out-of-bounds and misaligned accesses, over the kernel and
    #   generation tests (cuBLAS's kernels too);
    # - racecheck: shared-memory hazards, and synccheck: barriers and warp
    #   collectives used wrongly, over the tests that launch only our own
    #   kernels (not cuBLAS's, whose internals are not ours to judge).
    # An error fails the run; a missing tool, one that cannot run on this
    # machine (it refuses the device under gVisor: the probe below, one
    # small test under memcheck, says so first) or too little time is
    # reported as not run.
    own_kernels=(kernels::rope_and_attention kernels::kv_fork kernels::sampler_logprob_and_sketch
        kernels::grail_gemm)
    sanitize() {
        local tool=$1 limit=$2 rc=0
        shift 2
        echo "== compute-sanitizer $tool: $*" | tee -a "$report"
        step "$limit" compute-sanitizer --tool "$tool" --error-exitcode 97 \
            "$bundle/cuda-tests" --test-threads=1 "$@" || rc=$?
        case $rc in
        0) ;;
        124 | 137) echo "$tool: NOT RUN to the end (time limit)" | tee -a "$report" ;;
        *) status=1 ;;
        esac
    }
    probe() {
        local rc=0 log
        log=$(mktemp)
        echo "== compute-sanitizer probe: memcheck on kernels::kv_fork" | tee -a "$report"
        step 60 compute-sanitizer --tool memcheck --error-exitcode 97 \
            "$bundle/cuda-tests" --test-threads=1 --exact kernels::kv_fork_matches_its_twin_exactly \
            >"$log" || rc=$?
        cat "$log"
        case $rc in
        0) rm -f "$log" ;;
        97)
            echo "memcheck: ERRORS in the probe test" | tee -a "$report"
            rm -f "$log" && status=1 && return 1
            ;;
        124 | 137)
            echo "compute-sanitizer: NOT RUN (the probe ran out of time)" | tee -a "$report"
            rm -f "$log" && return 1
            ;;
        *)
            echo "compute-sanitizer: NOT RUN (it could not run a test that passes without it, exit $rc:" \
                "$(grep -m1 -o 'Device not supported\|Error[^=]*' "$log" || echo 'see above'))" | tee -a "$report"
            rm -f "$log"
            return 1
            ;;
        esac
    }
    if ! command -v compute-sanitizer >/dev/null; then
        echo "compute-sanitizer: NOT RUN (none on PATH)" | tee -a "$report"
    elif probe; then
        sanitize memcheck 120 kernels:: generation::
        sanitize racecheck 90 "${own_kernels[@]}"
        sanitize synccheck 60 "${own_kernels[@]}"
    fi
    echo "== result: $([ $status = 0 ] && echo PASS || echo FAIL)" | tee -a "$report"
    exit $status
    ;;
*)
    echo "usage: scripts/gpu-check.sh build|run" >&2
    exit 2
    ;;
esac
