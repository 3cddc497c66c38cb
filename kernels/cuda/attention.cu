// attention: causal attention over the KV cache with grouped-query heads,
// flash-decoding style, for decode steps and prefill rows alike. Row r (a
// decode step or one prefill token) attends with each of its `heads` query
// heads (q: rows x heads * head_dim, f32) over positions [0, len[r]) of cache
// slot slot[r] (the layout of rope.cu; kv head h serves query heads
// h*G .. h*G+G-1, G = heads / kv_heads).
//
// attention_<T>: one launch, grid (rows, kv_heads, splits), block
// (ATTN_THREADS = ATTN_SPLIT = 128), dynamic shared memory
// attention_smem_floats(G, d) floats (at most 44 KiB). Block (r, h, s)
// covers positions [s*ATTN_SPLIT, min(len, (s+1)*ATTN_SPLIT)) for the G
// query heads of kv head h, reading each key and value row once for all of
// them with 16-byte loads:
//   scores: thread j computes the G dot products of position p0 + j over the
//     whole head dimension (no cross-thread reduction);
//   softmax: warp w, heads w, w+4: the split's max m and l = sum exp(s - m);
//   values: thread = (chunk c of VEC dimensions, position group pg): sums
//     p_j v_j over positions j = pg, pg + PG, ... for its chunk, G heads at
//     once; the PG partial sums are added in pg order through shared memory.
// It writes m, l and the unnormalized output acc per query head to the
// partials (part_ml, part_acc); blocks past len do nothing. Then the split
// blocks of (r, h) count themselves in done[r * kv_heads + h] (after a
// device-wide fence), and the last of them, whichever it is, merges the
// splits in order s = 0, 1, ... and writes out (rows x heads * head_dim) in
// the storage type (the o projection's input), and sets the counter back to
// zero for the next launch. One launch instead of a split and a combine
// kernel: a decode step of a 28-layer model launches 28 kernels fewer.
// The split size is a constant, never a function of the batch, so a row's
// result does not depend on what else is in the batch. Every len[r] >= 1.
//
// Limits (checked on the host): head_dim a multiple of VEC = 16 / sizeof(T)
// (8 for bf16, 4 for f32) and at most 256, G <= 8 (every Llama and Qwen2
// checkpoint has G <= 8).
// Contract: softmax(q.k * scale) . v within rtol 1e-5 of the f64 reference on
// f32 caches (scores, exp and sums are ordered differently).
#include "common.cuh"

#define ATTN_SPLIT 128
#define ATTN_THREADS 128
#define ATTN_MAX_GROUP 8

// Elements of T in one 16-byte vector.
template <typename T>
struct Vec {
    static constexpr int N = 16 / (int)sizeof(T);
};

// The VEC elements of the 16-byte vector at p, widened to f32.
__device__ __forceinline__ void load_vec(const float* p, float* out) {
    GRAIL_CHECK_ALIGNED(p, 16);
    const float4 v = *reinterpret_cast<const float4*>(p);
    out[0] = v.x;
    out[1] = v.y;
    out[2] = v.z;
    out[3] = v.w;
}
__device__ __forceinline__ void load_vec(const bf16* p, float* out) {
    GRAIL_CHECK_ALIGNED(p, 16);
    const uint4 v = *reinterpret_cast<const uint4*>(p);
    const unsigned int w[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int i = 0; i < 4; i++) {
        out[2 * i] = __uint_as_float(w[i] << 16);
        out[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
}

template <typename T>
__device__ void attention(const float* __restrict__ q, const T* __restrict__ k_cache,
                          const T* __restrict__ v_cache, const uint32_t* __restrict__ slot,
                          const uint32_t* __restrict__ len, int heads, int kv_heads, int head_dim,
                          int cap, float scale, float* __restrict__ part_acc,
                          float* __restrict__ part_ml, uint32_t* __restrict__ done,
                          T* __restrict__ out) {
    constexpr int VEC = Vec<T>::N;
    GRAIL_DYNAMIC_SMEM(float, smem);
    const int r = blockIdx.x, h = blockIdx.y, s = blockIdx.z, splits = gridDim.z;
    const int group = heads / kv_heads;
    const int p0 = s * ATTN_SPLIT;
    const int n = min((int)len[r] - p0, ATTN_SPLIT);
    if (n <= 0) return;
    const int d = head_dim, chunks = d / VEC, pgroups = ATTN_THREADS / chunks;
    float* qs = smem;                        // group x d
    float* sc = qs + group * d;              // group x ATTN_SPLIT
    float* red = sc + group * ATTN_SPLIT;    // pgroups x group x d
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (int e = tid; e < group * d; e += ATTN_THREADS) {
        qs[e] = q[(size_t)r * heads * d + (size_t)h * group * d + e];
    }
    __syncthreads();
    const size_t base = ((size_t)slot[r] * kv_heads + h) * cap * d + (size_t)p0 * d;
    const T* kb = k_cache + base;
    const T* vb = v_cache + base;

    // scores: thread j, position p0 + j, all of its head dimension
    if (tid < n) {
        float dot[ATTN_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATTN_MAX_GROUP; g++) dot[g] = 0.0f;
        const T* krow = kb + (size_t)tid * d;
        for (int c = 0; c < chunks; c++) {
            float k[VEC];
            load_vec(krow + c * VEC, k);
#pragma unroll
            for (int g = 0; g < ATTN_MAX_GROUP; g++) {
                if (g < group) {
#pragma unroll
                    for (int e = 0; e < VEC; e++) {
                        dot[g] = __fmaf_rn(qs[g * d + c * VEC + e], k[e], dot[g]);
                    }
                }
            }
        }
#pragma unroll
        for (int g = 0; g < ATTN_MAX_GROUP; g++) {
            if (g < group) sc[g * ATTN_SPLIT + tid] = __fmul_rn(dot[g], scale);
        }
    }
    __syncthreads();

    // per head: max, then p = exp(score - max) in place, then their sum
    for (int g = warp; g < group; g += ATTN_THREADS / 32) {
        float m = -INFINITY;
        for (int j = lane; j < n; j += 32) m = fmaxf(m, sc[g * ATTN_SPLIT + j]);
        for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
        float l = 0.0f;
        for (int j = lane; j < n; j += 32) {
            const float p = expf(__fsub_rn(sc[g * ATTN_SPLIT + j], m));
            sc[g * ATTN_SPLIT + j] = p;
            l = __fadd_rn(l, p);
        }
        for (int o = 16; o > 0; o >>= 1) l = __fadd_rn(l, __shfl_xor_sync(0xffffffffu, l, o));
        if (lane == 0) {
            const size_t out = (((size_t)r * heads + h * group + g) * splits + s) * 2;
            part_ml[out] = m;
            part_ml[out + 1] = l;
        }
    }
    __syncthreads();

    // values: thread (chunk c, position group pg) sums p_j v_j[c] over
    // j = pg, pg + pgroups, ... for all G heads
    const int c = tid % chunks, pg = tid / chunks;
    if (pg < pgroups) {
        float acc[ATTN_MAX_GROUP][VEC];
#pragma unroll
        for (int g = 0; g < ATTN_MAX_GROUP; g++) {
#pragma unroll
            for (int e = 0; e < VEC; e++) acc[g][e] = 0.0f;
        }
        for (int j = pg; j < n; j += pgroups) {
            float v[VEC];
            load_vec(vb + (size_t)j * d + c * VEC, v);
#pragma unroll
            for (int g = 0; g < ATTN_MAX_GROUP; g++) {
                if (g < group) {
                    const float p = sc[g * ATTN_SPLIT + j];
#pragma unroll
                    for (int e = 0; e < VEC; e++) acc[g][e] = __fmaf_rn(p, v[e], acc[g][e]);
                }
            }
        }
#pragma unroll
        for (int g = 0; g < ATTN_MAX_GROUP; g++) {
            if (g < group) {
#pragma unroll
                for (int e = 0; e < VEC; e++) red[(pg * group + g) * d + c * VEC + e] = acc[g][e];
            }
        }
    }
    __syncthreads();
    // the position groups' sums, in pg order
    for (int e = tid; e < group * d; e += ATTN_THREADS) {
        const int g = e / d, t = e % d;
        float a = 0.0f;
        for (int p = 0; p < pgroups; p++) a = __fadd_rn(a, red[(p * group + g) * d + t]);
        part_acc[(((size_t)r * heads + h * group + g) * splits + s) * d + t] = a;
    }

    // The last split block of (r, h) to finish merges the splits: every
    // thread fences its partial writes device-wide before thread 0 counts
    // the block, so the block that sees the count reach `used` reads every
    // split's partials (through L2: __ldcg, never a stale L1 line).
    __shared__ int last;
    __threadfence();
    __syncthreads();
    const int used = ((int)len[r] + ATTN_SPLIT - 1) / ATTN_SPLIT;
    if (tid == 0) {
        uint32_t* counter = done + (size_t)r * kv_heads + h;
        last = atomicAdd(counter, 1u) + 1u == (uint32_t)used;
        if (last) *counter = 0u;  // every used block has counted: ready for the next launch
    }
    __syncthreads();
    if (!last) return;
    __threadfence();
    // per query head: the maximum of the split maxima, and 1 / sum l_s e^(m_s - m)
    __shared__ float head_m[ATTN_MAX_GROUP];
    __shared__ float head_inv[ATTN_MAX_GROUP];
    if (tid < group) {
        const size_t first = ((size_t)r * heads + h * group + tid) * splits;
        float m = -INFINITY;
        for (int k = 0; k < used; k++) m = fmaxf(m, __ldcg(&part_ml[(first + k) * 2]));
        float l = 0.0f;
        for (int k = 0; k < used; k++) {
            l = __fadd_rn(l, __fmul_rn(__ldcg(&part_ml[(first + k) * 2 + 1]),
                                       expf(__fsub_rn(__ldcg(&part_ml[(first + k) * 2]), m))));
        }
        head_m[tid] = m;
        head_inv[tid] = __fdiv_rn(1.0f, l);
    }
    __syncthreads();
    for (int e = tid; e < group * d; e += ATTN_THREADS) {
        const int g = e / d, t = e % d;
        const size_t first = ((size_t)r * heads + h * group + g) * splits;
        const float m = head_m[g];
        float acc = 0.0f;
        for (int k = 0; k < used; k++) {
            const float w = expf(__fsub_rn(__ldcg(&part_ml[(first + k) * 2]), m));
            acc = __fmaf_rn(__ldcg(&part_acc[(first + k) * d + t]), w, acc);
        }
        store_f32(out, ((size_t)r * heads + h * group + g) * d + t, __fmul_rn(acc, head_inv[g]));
    }
}

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attention_f32(const float* q, const float* k_cache, const float* v_cache, const uint32_t* slot,
              const uint32_t* len, int heads, int kv_heads, int head_dim, int cap, float scale,
              float* part_acc, float* part_ml, uint32_t* done, float* out) {
    attention(q, k_cache, v_cache, slot, len, heads, kv_heads, head_dim, cap, scale, part_acc,
              part_ml, done, out);
}

extern "C" __global__ void __launch_bounds__(ATTN_THREADS)
attention_bf16(const float* q, const bf16* k_cache, const bf16* v_cache, const uint32_t* slot,
               const uint32_t* len, int heads, int kv_heads, int head_dim, int cap, float scale,
               float* part_acc, float* part_ml, uint32_t* done, bf16* out) {
    attention(q, k_cache, v_cache, slot, len, heads, kv_heads, head_dim, cap, scale, part_acc,
              part_ml, done, out);
}
