// attention: causal attention over the KV cache with grouped-query heads,
// flash-decoding style, for decode steps and prefill rows alike. Row r (a
// decode step or one prefill token) attends with each of its `heads` query
// heads (q: rows x heads * head_dim, f32) over positions [0, len[r]) of cache
// slot slot[r] (the layout of rope.cu; kv head h serves query heads
// h*G .. h*G+G-1, G = heads / kv_heads).
//
// attention_<T>_g<G>: one launch, grid (rows, kv_heads, splits), block
// (ATTN_THREADS = ATTN_SPLIT = 128), dynamic shared memory of
// attention_smem_bytes(G, d, dt) (kernels/src/twins.rs; at most 44 KiB).
// Block (r, h, s) covers positions [s*ATTN_SPLIT, min(len, (s+1)*ATTN_SPLIT)) for the G
// query heads of kv head h, reading each key and value row once for all of
// them with 16-byte loads, Vec<T>::UNROLL of them issued before the first is
// used (one at a time, a split is bound by load latency, not bandwidth):
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
#define ATTN_MAX_GROUP 8  // kernels exist for G = 1 .. ATTN_MAX_GROUP (below)

// Elements of T in one 16-byte vector, and the vectors a thread loads
// before it uses the first: 8 for bf16 caches (2 round trips per phase at
// head_dim 128), 4 for f32 ones, which spill registers at 8.
template <typename T>
struct Vec {
    static constexpr int N = 16 / (int)sizeof(T);
    static constexpr int UNROLL = sizeof(T) == 2 ? 8 : 4;
};

// The 16-byte vector at p, as it is in memory (loaded apart from its
// widening, so that several loads can be in flight before the first use).
template <typename T>
__device__ __forceinline__ uint4 load_raw(const T* p) {
    GRAIL_CHECK_ALIGNED(p, 16);
    return *reinterpret_cast<const uint4*>(p);
}

// Element e of a raw vector of T, widened to f32.
__device__ __forceinline__ float widen(const uint4& v, int e, const float*) {
    const unsigned int w = e == 0 ? v.x : e == 1 ? v.y : e == 2 ? v.z : v.w;
    return __uint_as_float(w);
}
__device__ __forceinline__ float widen(const uint4& v, int e, const bf16*) {
    const int i = e >> 1;
    const unsigned int w = i == 0 ? v.x : i == 1 ? v.y : i == 2 ? v.z : v.w;
    return __uint_as_float((e & 1) ? (w & 0xffff0000u) : (w << 16));
}

template <typename T, int G>
__device__ void attention(const float* __restrict__ q, const T* __restrict__ k_cache,
                          const T* __restrict__ v_cache, const uint32_t* __restrict__ slot,
                          const uint32_t* __restrict__ len, int heads, int kv_heads, int head_dim,
                          int cap, float scale, float* __restrict__ part_acc,
                          float* __restrict__ part_ml, uint32_t* __restrict__ done,
                          T* __restrict__ out) {
    constexpr int VEC = Vec<T>::N, UNROLL = Vec<T>::UNROLL, group = G;
    GRAIL_DYNAMIC_SMEM(float, smem);
    const int r = blockIdx.x, h = blockIdx.y, s = blockIdx.z, splits = gridDim.z;
    const int p0 = s * ATTN_SPLIT;
    const int n = min((int)len[r] - p0, ATTN_SPLIT);
    if (n <= 0) return;
    const int d = head_dim, chunks = d / VEC, pgroups = ATTN_THREADS / chunks;
    float* qs = smem;                        // group x d
    float* sc = qs + group * d;              // group x ATTN_SPLIT
    float* red = sc + group * ATTN_SPLIT;    // pgroups x group x d
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const size_t base = ((size_t)slot[r] * kv_heads + h) * cap * d + (size_t)p0 * d;
    const T* kb = k_cache + base;
    const T* vb = v_cache + base;

    // scores: thread j, position p0 + j, all of its head dimension, loading
    // UNROLL vectors before using the first (loads in flight, not
    // latency, bound a split), summing in order c = 0, 1, ... The first
    // vectors are requested before the queries are staged, so that the two
    // sets of loads overlap.
    const bool scoring = tid < n;
    const T* krow = kb + (size_t)tid * d;
    uint4 k[UNROLL];
    if (scoring) {
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            if (u < chunks) k[u] = load_raw(krow + u * VEC);
        }
    }
    for (int e = tid; e < group * d; e += ATTN_THREADS) {
        qs[e] = q[(size_t)r * heads * d + (size_t)h * group * d + e];
    }
    __syncthreads();
    if (scoring) {
        float dot[G];
#pragma unroll
        for (int g = 0; g < G; g++) dot[g] = 0.0f;
        for (int c0 = 0; c0 < chunks; c0 += UNROLL) {
            if (c0 > 0) {
#pragma unroll
                for (int u = 0; u < UNROLL; u++) {
                    if (c0 + u < chunks) k[u] = load_raw(krow + (c0 + u) * VEC);
                }
            }
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                if (c0 + u < chunks) {
#pragma unroll
                    for (int g = 0; g < G; g++) {
#pragma unroll
                        for (int e = 0; e < VEC; e++) {
                            dot[g] = __fmaf_rn(qs[g * d + (c0 + u) * VEC + e], widen(k[u], e, kb),
                                                dot[g]);
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int g = 0; g < G; g++) sc[g * ATTN_SPLIT + tid] = __fmul_rn(dot[g], scale);
    }
    // values: thread (chunk c, position group pg) will sum p_j v_j[c] over
    // j = pg, pg + pgroups, ... (in that order) for all G heads, loading
    // UNROLL value rows before using the first; the first rows are
    // requested now, to arrive while the softmax runs
    const int c = tid % chunks, pg = tid / chunks;
    const bool summing = pg < pgroups;
    uint4 v[UNROLL];
    if (summing) {
#pragma unroll
        for (int u = 0; u < UNROLL; u++) {
            const int j = pg + u * pgroups;
            if (j < n) v[u] = load_raw(vb + (size_t)j * d + c * VEC);
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

    // values (see above)
    if (summing) {
        float acc[G][VEC];
#pragma unroll
        for (int g = 0; g < G; g++) {
#pragma unroll
            for (int e = 0; e < VEC; e++) acc[g][e] = 0.0f;
        }
        for (int j0 = pg; j0 < n; j0 += UNROLL * pgroups) {
            if (j0 > pg) {
#pragma unroll
                for (int u = 0; u < UNROLL; u++) {
                    const int j = j0 + u * pgroups;
                    if (j < n) v[u] = load_raw(vb + (size_t)j * d + c * VEC);
                }
            }
#pragma unroll
            for (int u = 0; u < UNROLL; u++) {
                const int j = j0 + u * pgroups;
                if (j < n) {
#pragma unroll
                    for (int g = 0; g < G; g++) {
                        const float p = sc[g * ATTN_SPLIT + j];
#pragma unroll
                        for (int e = 0; e < VEC; e++) {
                            acc[g][e] = __fmaf_rn(p, widen(v[u], e, vb), acc[g][e]);
                        }
                    }
                }
            }
        }
#pragma unroll
        for (int g = 0; g < G; g++) {
#pragma unroll
            for (int e = 0; e < VEC; e++) red[(pg * group + g) * d + c * VEC + e] = acc[g][e];
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
    __shared__ float head_m[G];
    __shared__ float head_inv[G];
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

// One kernel per storage type and group size G (attention_<T>_g<G>), so
// that each G gets its own register allocation and no per-head branches.
#define ATTENTION_KERNEL(SFX, T, G)                                                              \
    extern "C" __global__ void __launch_bounds__(ATTN_THREADS) attention_##SFX##_g##G(          \
        const float* q, const T* k_cache, const T* v_cache, const uint32_t* slot,             \
        const uint32_t* len, int heads, int kv_heads, int head_dim, int cap, float scale,     \
        float* part_acc, float* part_ml, uint32_t* done, T* out) {                           \
        attention<T, G>(q, k_cache, v_cache, slot, len, heads, kv_heads, head_dim, cap, scale, \
                        part_acc, part_ml, done, out);                                         \
    }
#define ATTENTION_KERNELS(G)            \
    ATTENTION_KERNEL(f32, float, G)     \
    ATTENTION_KERNEL(bf16, bf16, G)
ATTENTION_KERNELS(1)
ATTENTION_KERNELS(2)
ATTENTION_KERNELS(3)
ATTENTION_KERNELS(4)
ATTENTION_KERNELS(5)
ATTENTION_KERNELS(6)
ATTENTION_KERNELS(7)
ATTENTION_KERNELS(8)
