// attention: causal attention over the KV cache with grouped-query heads,
// flash-decoding style. Row r (a decode step or one prefill token) attends
// with each of its `heads` query heads (q: rows x heads * head_dim, f32) over
// positions [0, len[r]) of cache slot slot[r] (the layout of rope.cu; kv
// head h serves query heads h*G .. h*G+G-1, G = heads / kv_heads).
//
// attention_split_<T>: grid (rows, kv_heads, splits), block (128), dynamic
// shared memory (G * head_dim + G * ATTN_SPLIT) floats. Block (r, h, s)
// covers positions [s*ATTN_SPLIT, min(len, (s+1)*ATTN_SPLIT)) for the G query
// heads of kv head h, loading each key and value once for all of them, and
// writes the split's running max m, sum l of exp(score - m) and unnormalized
// output acc; blocks past len write nothing. The split size is a constant,
// never a function of the batch, so a row's result does not depend on what
// else is in the batch.
// attention_combine_<T>: grid (rows, heads), block (128): merges the splits
// in order s = 0, 1, ... and writes out (rows x heads * head_dim) in the
// storage type (the o projection's input).
//
// Limits (checked on the host): head_dim <= 256 and even, G <= 8 (every Llama
// and Qwen2 checkpoint has G <= 8).
// Contract: softmax(q.k * scale) . v within rtol 1e-5 of the CPU engine on
// f32 caches (scores, exp and sums are ordered differently).
#include "common.cuh"

#define ATTN_SPLIT 256
#define ATTN_THREADS 128
#define ATTN_MAX_GROUP 8

template <typename T>
__device__ void attention_split(const float* __restrict__ q, const T* __restrict__ k_cache,
                                const T* __restrict__ v_cache, const uint32_t* __restrict__ slot,
                                const uint32_t* __restrict__ len, int heads, int kv_heads,
                                int head_dim, int cap, float scale, float* __restrict__ part_acc,
                                float* __restrict__ part_ml) {
    GRAIL_DYNAMIC_SMEM(float, smem);
    const int r = blockIdx.x, h = blockIdx.y, s = blockIdx.z, splits = gridDim.z;
    const int group = heads / kv_heads;
    const int p0 = s * ATTN_SPLIT;
    const int n = min((int)len[r] - p0, ATTN_SPLIT);
    if (n <= 0) return;
    float* qs = smem;                       // group x head_dim
    float* sc = smem + group * head_dim;    // group x ATTN_SPLIT
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    for (int e = tid; e < group * head_dim; e += ATTN_THREADS) {
        qs[e] = q[(size_t)r * heads * head_dim + (size_t)h * group * head_dim + e];
    }
    __syncthreads();
    const size_t base = ((size_t)slot[r] * kv_heads + h) * cap * head_dim;
    const T* kb = k_cache + base;
    const T* vb = v_cache + base;

    // scores: one warp per position, lanes over the head dimension
    for (int j = warp; j < n; j += ATTN_THREADS / 32) {
        float dot[ATTN_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATTN_MAX_GROUP; g++) dot[g] = 0.0f;
        const size_t row = (size_t)(p0 + j) * head_dim;
        for (int t = lane; t < head_dim; t += 32) {
            const float kv = load_f32(kb, row + t);
#pragma unroll
            for (int g = 0; g < ATTN_MAX_GROUP; g++) {
                if (g < group) dot[g] = __fmaf_rn(qs[g * head_dim + t], kv, dot[g]);
            }
        }
#pragma unroll
        for (int g = 0; g < ATTN_MAX_GROUP; g++) {
            if (g < group) {
                float v = dot[g];
                for (int o = 16; o > 0; o >>= 1) v = __fadd_rn(v, __shfl_xor_sync(0xffffffffu, v, o));
                if (lane == 0) sc[g * ATTN_SPLIT + j] = __fmul_rn(v, scale);
            }
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

    // acc[t] = sum_j p_j v_j[t], each value row read once for the whole group
    for (int t = tid; t < head_dim; t += ATTN_THREADS) {
        float acc[ATTN_MAX_GROUP];
#pragma unroll
        for (int g = 0; g < ATTN_MAX_GROUP; g++) acc[g] = 0.0f;
        for (int j = 0; j < n; j++) {
            const float v = load_f32(vb, (size_t)(p0 + j) * head_dim + t);
#pragma unroll
            for (int g = 0; g < ATTN_MAX_GROUP; g++) {
                if (g < group) acc[g] = __fmaf_rn(sc[g * ATTN_SPLIT + j], v, acc[g]);
            }
        }
#pragma unroll
        for (int g = 0; g < ATTN_MAX_GROUP; g++) {
            if (g < group) {
                part_acc[(((size_t)r * heads + h * group + g) * splits + s) * head_dim + t] = acc[g];
            }
        }
    }
}

template <typename T>
__device__ void attention_combine(const float* __restrict__ part_acc,
                                  const float* __restrict__ part_ml,
                                  const uint32_t* __restrict__ len, int heads, int head_dim,
                                  int splits, T* __restrict__ out) {
    const int r = blockIdx.x, hq = blockIdx.y;
    const int used = ((int)len[r] + ATTN_SPLIT - 1) / ATTN_SPLIT;
    const size_t first = ((size_t)r * heads + hq) * splits;
    float m = -INFINITY;
    for (int s = 0; s < used; s++) m = fmaxf(m, part_ml[(first + s) * 2]);
    float l = 0.0f;
    for (int s = 0; s < used; s++) {
        l = __fadd_rn(l, __fmul_rn(part_ml[(first + s) * 2 + 1],
                                   expf(__fsub_rn(part_ml[(first + s) * 2], m))));
    }
    const float inv = __fdiv_rn(1.0f, l);
    for (int t = threadIdx.x; t < head_dim; t += blockDim.x) {
        float acc = 0.0f;
        for (int s = 0; s < used; s++) {
            const float w = expf(__fsub_rn(part_ml[(first + s) * 2], m));
            acc = __fmaf_rn(part_acc[(first + s) * head_dim + t], w, acc);
        }
        store_f32(out, ((size_t)r * heads + hq) * head_dim + t, __fmul_rn(acc, inv));
    }
}

extern "C" __global__ void
attention_split_f32(const float* q, const float* k_cache, const float* v_cache,
                    const uint32_t* slot, const uint32_t* len, int heads, int kv_heads,
                    int head_dim, int cap, float scale, float* part_acc, float* part_ml) {
    attention_split(q, k_cache, v_cache, slot, len, heads, kv_heads, head_dim, cap, scale,
                    part_acc, part_ml);
}

extern "C" __global__ void
attention_split_bf16(const float* q, const bf16* k_cache, const bf16* v_cache,
                     const uint32_t* slot, const uint32_t* len, int heads, int kv_heads,
                     int head_dim, int cap, float scale, float* part_acc, float* part_ml) {
    attention_split(q, k_cache, v_cache, slot, len, heads, kv_heads, head_dim, cap, scale,
                    part_acc, part_ml);
}

extern "C" __global__ void attention_combine_f32(const float* part_acc, const float* part_ml,
                                                 const uint32_t* len, int heads, int head_dim,
                                                 int splits, float* out) {
    attention_combine(part_acc, part_ml, len, heads, head_dim, splits, out);
}

extern "C" __global__ void attention_combine_bf16(const float* part_acc, const float* part_ml,
                                                  const uint32_t* len, int heads, int head_dim,
                                                  int splits, bf16* out) {
    attention_combine(part_acc, part_ml, len, heads, head_dim, splits, out);
}
