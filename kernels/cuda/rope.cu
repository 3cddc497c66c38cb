// rope: rotary position embedding fused with the KV-cache write. Row r of
// qkv (rows x (heads + 2*kv_heads) * head_dim, f32: the fused q/k/v
// projection, q heads first, then k heads, then v heads), with the optional
// bias added, at position pos[r]:
//   q heads -> rotated, written as f32 to q_out (rows x heads * head_dim)
//   k heads -> rotated, written to k_cache; v heads -> written to v_cache
// Rotation is transformers' "rotate half" (common.cuh's rope_rotate: element
// i pairs with i + head_dim/2, two roundings per product and sum), with
// (cos, sin) read from `table` (max_positions x head_dim/2 pairs, computed
// on the host exactly as the CPU engine computes them).
// Cache layout (one layer): [slot][kv_head][position < cap][head_dim], in the
// storage type.
//
// Launch: grid (rows), block (128). Contract: bit-exact against the CPU
// engine's bias add, rope and cache write (bf16 caches round to nearest even).
#include "common.cuh"

#define ROPE_UNROLL 8

// Pair e of the rotated (q and k) heads: head h, index i < head_dim / 2,
// and its two columns of the row.
struct RopePair {
    int h, i, c1, c2;
};
__device__ __forceinline__ RopePair rope_pair(int e, int half, int head_dim) {
    const int h = e / half, i = e % half, c1 = h * head_dim + i;
    return RopePair{h, i, c1, c1 + half};
}

template <typename T>
__device__ void rope_kv_write(const float* __restrict__ qkv, const float* __restrict__ bias,
                              const float* __restrict__ table, const uint32_t* __restrict__ pos,
                              const uint32_t* __restrict__ slot, int heads, int kv_heads,
                              int head_dim, int cap, float* __restrict__ q_out,
                              T* __restrict__ k_cache, T* __restrict__ v_cache) {
    const int r = blockIdx.x;
    const int half = head_dim / 2;
    const int width = (heads + 2 * kv_heads) * head_dim;
    const float* x = qkv + (size_t)r * width;
    const float* cs = table + (size_t)pos[r] * head_dim;  // half pairs of (cos, sin)
    const size_t s = slot[r];
    const size_t p = pos[r];
    // rotated pairs of the q and k heads, then the values, ROPE_UNROLL
    // elements' loads in flight at a time (strided_batches)
    const int pairs = (heads + kv_heads) * half;
    float v1[ROPE_UNROLL], v2[ROPE_UNROLL], b1[ROPE_UNROLL], b2[ROPE_UNROLL],
        cos[ROPE_UNROLL], sin[ROPE_UNROLL];
    strided_batches<ROPE_UNROLL>(
        threadIdx.x, pairs, blockDim.x,
        [&](int u, int e) {
            const RopePair q = rope_pair(e, half, head_dim);
            v1[u] = x[q.c1];
            v2[u] = x[q.c2];
            if (bias) {
                b1[u] = bias[q.c1];
                b2[u] = bias[q.c2];
            }
            cos[u] = cs[2 * q.i];
            sin[u] = cs[2 * q.i + 1];
        },
        [&](int u, int e) {
            const RopePair q = rope_pair(e, half, head_dim);
            if (bias) {
                v1[u] = __fadd_rn(v1[u], b1[u]);
                v2[u] = __fadd_rn(v2[u], b2[u]);
            }
            float y1, y2;
            rope_rotate(v1[u], v2[u], cos[u], sin[u], &y1, &y2);
            if (q.h < heads) {
                q_out[(size_t)r * heads * head_dim + q.c1] = y1;
                q_out[(size_t)r * heads * head_dim + q.c2] = y2;
            } else {
                const size_t base = ((s * kv_heads + (q.h - heads)) * cap + p) * head_dim;
                store_f32(k_cache, base + q.i, y1);
                store_f32(k_cache, base + q.i + half, y2);
            }
        });
    // values: the v1 and b1 arrays again
    const int first_value = (heads + kv_heads) * head_dim;
    strided_batches<ROPE_UNROLL>(
        threadIdx.x, kv_heads * head_dim, blockDim.x,
        [&](int u, int e) {
            v1[u] = x[first_value + e];
            if (bias) b1[u] = bias[first_value + e];
        },
        [&](int u, int e) {
            const int h = e / head_dim, t = e % head_dim;
            if (bias) v1[u] = __fadd_rn(v1[u], b1[u]);
            store_f32(v_cache, ((s * kv_heads + h) * cap + p) * head_dim + t, v1[u]);
        });
}

extern "C" __global__ void rope_kv_write_f32(const float* qkv, const float* bias,
                                             const float* table, const uint32_t* pos,
                                             const uint32_t* slot, int heads, int kv_heads,
                                             int head_dim, int cap, float* q_out, float* k_cache,
                                             float* v_cache) {
    rope_kv_write(qkv, bias, table, pos, slot, heads, kv_heads, head_dim, cap, q_out, k_cache,
                  v_cache);
}

extern "C" __global__ void rope_kv_write_bf16(const float* qkv, const float* bias,
                                              const float* table, const uint32_t* pos,
                                              const uint32_t* slot, int heads, int kv_heads,
                                              int head_dim, int cap, float* q_out, bf16* k_cache,
                                              bf16* v_cache) {
    rope_kv_write(qkv, bias, table, pos, slot, heads, kv_heads, head_dim, cap, q_out, k_cache,
                  v_cache);
}
