// kv_fork: forks prefilled prompts into their rollouts' cache slots. For
// every pair i, copies positions [0, n[i]) of slot from[i] into slot to[i],
// in every layer and KV head, keys and values, bit for bit.
//
// The caches are [layer][slot][kv_head][position][head_dim] (rope.cu), seen
// here as 16-byte vectors: `vpp` vectors per position (head_dim * element
// size / 16; the host checks it divides), so one kernel serves every storage
// type. Launch: grid (pairs, layers * kv_heads, 2), block (256); block
// (i, l * kv_heads + h, c) copies pair i's n[i] * vpp vectors of head h of
// layer l of the cache c (0 keys, 1 values).
#include "common.cuh"

extern "C" __global__ void kv_fork_u128(uint4* __restrict__ k_cache, uint4* __restrict__ v_cache,
                                        const uint32_t* __restrict__ from,
                                        const uint32_t* __restrict__ to,
                                        const uint32_t* __restrict__ n, int slots, int kv_heads,
                                        int cap, int vpp) {
    const int i = blockIdx.x;
    const int layer = blockIdx.y / kv_heads, h = blockIdx.y % kv_heads;
    uint4* cache = blockIdx.z == 0 ? k_cache : v_cache;
    const size_t head = (size_t)cap * vpp;
    const size_t layer_base = (size_t)layer * slots * kv_heads * head;
    const uint4* src = cache + layer_base + ((size_t)from[i] * kv_heads + h) * head;
    uint4* dst = cache + layer_base + ((size_t)to[i] * kv_heads + h) * head;
    GRAIL_CHECK_ALIGNED(src, 16);
    GRAIL_CHECK_ALIGNED(dst, 16);
    const size_t count = (size_t)n[i] * vpp;
    for (size_t e = threadIdx.x; e < count; e += blockDim.x) dst[e] = src[e];
}
