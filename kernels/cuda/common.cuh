// Shared device helpers for grail's kernels: storage types, the
// deterministic f32 exp (twin of grail_engine::kernels::exp), block
// reductions and the fixed-order softmax normalizer shared by the sampler and
// the log-softmax kernels.
//
// Numerical contract of the whole directory: every file is compiled with
// --fmad=false, so a*b+c is two roundings unless the code asks for a fused
// multiply-add with __fmaf_rn; the CPU twins in kernels/src/twins.rs perform
// the same IEEE operations in the same order wherever a kernel promises bits.
#pragma once
#include <cuda_bf16.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

// Dynamic shared memory, and a check before a pointer is read as a 16- or
// 8-byte vector; the CPU emulation of kernels/check (cuda_emu.h) defines
// both its own way (a per-block buffer; an abort on a misaligned address).
#ifndef GRAIL_DYNAMIC_SMEM
#define GRAIL_DYNAMIC_SMEM(T, name) extern __shared__ __align__(16) T name[]
#endif
#ifndef GRAIL_CHECK_ALIGNED
#define GRAIL_CHECK_ALIGNED(p, bytes) ((void)0)
#endif

// Storage <-> f32.
__device__ __forceinline__ float load_f32(const float* p, size_t i) { return p[i]; }
__device__ __forceinline__ float load_f32(const bf16* p, size_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store_f32(float* p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store_f32(bf16* p, size_t i, float v) { p[i] = __float2bfloat16_rn(v); }

// e^x, the exact sequence of IEEE operations of grail_engine::kernels::exp:
// Cody-Waite reduction, a degree-7 polynomial, scaling through the exponent
// bits. x < EXP_LO gives 0, x > 88 gives exp(88), NaN gives NaN.
#define GRAIL_EXP_LO (-87.33655f)
#define GRAIL_EXP_HI 88.0f
__device__ __forceinline__ float exp_det(float x) {
    if (x < GRAIL_EXP_LO) return 0.0f;
    if (GRAIL_EXP_HI < x) x = GRAIL_EXP_HI;
    const float magic = 12582912.0f;
    const float t = __fmaf_rn(x, 1.44269504088896340736f, magic);
    const float n = __fsub_rn(t, magic);
    float r = __fmaf_rn(-n, 355.0f / 512.0f, x);
    r = __fmaf_rn(-n, -2.1219444e-4f, r);
    float y = 1.9875691e-4f;
    y = __fmaf_rn(y, r, 1.3981999e-3f);
    y = __fmaf_rn(y, r, 8.333452e-3f);
    y = __fmaf_rn(y, r, 4.1665796e-2f);
    y = __fmaf_rn(y, r, 1.6666665e-1f);
    y = __fmaf_rn(y, r, 0.5f);
    y = __fadd_rn(__fmaf_rn(y, __fmul_rn(r, r), r), 1.0f);
    const int bits = ((int)(__float_as_uint(t) - __float_as_uint(magic)) + 127) << 23;
    return __fmul_rn(y, __int_as_float(bits));
}

// The gated MLP activation of one element: silu(g) * u = g / (1 + exp(-g))
// * u, with the optional biases first (g + bias[i], u + bias[inter + i]).
// silu_mul.cu's, and gemm.cu's fused form of it. expf is CUDA's (<= 2 ulp).
__device__ __forceinline__ float silu_mul_value(float g, float u, const float* bias, int inter,
                                                int i) {
    if (bias) {
        g = __fadd_rn(g, bias[i]);
        u = __fadd_rn(u, bias[inter + i]);
    }
    return __fmul_rn(__fdiv_rn(g, __fadd_rn(1.0f, expf(-g))), u);
}

// transformers' "rotate half" of a pair (x1, x2) = (element i, element i +
// head_dim / 2) of a head: x1' = x1 cos - x2 sin, x2' = x2 cos + x1 sin, two
// roundings each (no fused multiply-add). rope.cu's, and gemm.cu's fused
// form of it.
__device__ __forceinline__ void rope_rotate(float x1, float x2, float cos, float sin, float* y1,
                                            float* y2) {
    *y1 = __fsub_rn(__fmul_rn(x1, cos), __fmul_rn(x2, sin));
    *y2 = __fadd_rn(__fmul_rn(x2, cos), __fmul_rn(x1, sin));
}

// Visits this thread's elements i = first, first + stride, ... < n in
// batches of UNROLL: load(u, i) for every element of a batch, then use(u, i)
// for each, in the same order. A batch's loads are all in flight before the
// first is used: a kernel that runs one block per row is bound by its chain
// of load round trips, not by bandwidth. `load` keeps what it reads in
// arrays of UNROLL indexed by u, which `use` reads back.
template <int UNROLL, typename Load, typename Use>
__device__ __forceinline__ void strided_batches(int first, int n, int stride, Load&& load,
                                                Use&& use) {
    for (int i0 = first; i0 < n; i0 += UNROLL * stride) {
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int i = i0 + u * stride;
            if (i < n) load(u, i);
        }
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int i = i0 + u * stride;
            if (i < n) use(u, i);
        }
    }
}

// Block-wide reductions over blockDim.x threads (a multiple of 32, at most
// 1024); `scratch` holds 32 values. Every thread gets the result.
__device__ __forceinline__ float block_max(float v, float* scratch) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : -INFINITY;
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

__device__ __forceinline__ double block_sum_f64(double v, double* scratch) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0;
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ int block_or(int v, int* scratch) {
    for (int o = 16; o > 0; o >>= 1) v |= __shfl_xor_sync(0xffffffffu, v, o);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0;
    for (int o = 16; o > 0; o >>= 1) v |= __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// The softmax normalizer in a fixed order, shared by sampler.cu and
// logsoftmax.cu. SOFTMAX_THREADS threads split the vocabulary into
// SOFTMAX_THREADS contiguous chunks of ceil(V / SOFTMAX_THREADS) tokens;
// thread j sums w_i = exp_det((z_i - max) / T) over its chunk left to right
// in f64 from +0.0 into chunk[j]; thread 0 then forms the prefix sums
// prefix[j+1] = prefix[j] + chunk[j] left to right. Z = prefix[SOFTMAX_THREADS].
// The order depends on V only, so the twin reproduces every bit.
#define SOFTMAX_THREADS 256

__device__ __forceinline__ float softmax_weight(float z, float max, float temperature) {
    return exp_det(__fdiv_rn(__fsub_rn(z, max), temperature));
}

// Logits a thread loads before it uses the first, in the loops over its
// chunk: one at a time, each waited on before the next, a chunk of ~600
// logits (a 152k vocabulary) costs ~600 L2 round trips.
#define SOFTMAX_UNROLL 8

// z[i0 .. min(i0 + SOFTMAX_UNROLL, hi)) into out (the rest left unset).
__device__ __forceinline__ void softmax_load(const float* z, int i0, int hi, float* out) {
#pragma unroll
    for (int u = 0; u < SOFTMAX_UNROLL; u++) {
        if (i0 + u < hi) out[u] = z[i0 + u];
    }
}

// Returns false (in every thread) when a logit is not finite; then `*bad` is
// the smallest such index. Otherwise every thread gets the max in `*max_out`
// (a register of its own: no shared variable written by every thread).
__device__ __forceinline__ bool softmax_prefix(const float* z, int vocab, float temperature,
                                               float* max_out, double* prefix, int* bad,
                                               float* fscratch, int* iscratch) {
    const int chunk = (vocab + SOFTMAX_THREADS - 1) / SOFTMAX_THREADS;
    const int j = threadIdx.x;
    const int lo = min(vocab, j * chunk), hi = min(vocab, lo + chunk);
    float m = -INFINITY;
    int first_bad = 0x7fffffff;
    for (int i = lo; i < hi; i++) {
        const float v = z[i];
        if (!isfinite(v)) { first_bad = min(first_bad, i); }
        m = fmaxf(m, v);
    }
    // smallest non-finite index: OR of a one-hot is not a min, so reduce the
    // flag first and find the index in a second, rare pass
    const int any_bad = block_or(first_bad != 0x7fffffff, iscratch);
    if (any_bad) {
        __syncthreads();
        if (j == 0) *bad = 0x7fffffff;
        __syncthreads();
        if (first_bad != 0x7fffffff) atomicMin(bad, first_bad);
        __syncthreads();
        return false;
    }
    m = block_max(m, fscratch);
    double s = 0.0;
    for (int i0 = lo; i0 < hi; i0 += SOFTMAX_UNROLL) {
        float zv[SOFTMAX_UNROLL];
        softmax_load(z, i0, hi, zv);
#pragma unroll
        for (int u = 0; u < SOFTMAX_UNROLL; u++) {
            if (i0 + u < hi) s += (double)softmax_weight(zv[u], m, temperature);
        }
    }
    prefix[j + 1] = s;
    __syncthreads();
    if (j == 0) {
        double acc = 0.0;
        prefix[0] = 0.0;
        for (int c = 0; c < SOFTMAX_THREADS; c++) {
            acc += prefix[c + 1];
            prefix[c + 1] = acc;
        }
    }
    __syncthreads();
    *max_out = m;
    return true;
}
