// sketch: the protocol's hidden-state sketch (PROTOCOL.md §6.4,
// grail_core::sketch) of each row of `hidden` (rows x dim, f32).
//   1. reference r = the ceil(dim/16)-th largest |h_i|, found exactly by a
//      four-pass 8-bit radix select on the bit patterns of |h_i| (for
//      non-negative floats the bit order is the numeric order);
//      scale = 32 / r (one IEEE division); q_i = clamp(rint(h_i * scale),
//      -127, 127) (one IEEE multiplication, round half to even).
//   2. a_j = sum_i sigma_ji q_i in integers for the 128 planes, sigma_ji = -1
//      when bit j of plane word i is set; bit j of the sketch is a_j > 0.
// Only exact operations, so the result is the CPU sketch bit for bit.
//
// Launch: grid (rows), block (256), dynamic shared memory dim bytes
// (dim <= 40960, within the default 48 KiB). planes: dim x 4 u32 words (the u128 plane words, little
// endian). out: rows x 4 u32 (the 16 sketch bytes, little endian).
// status[r]: 0 ok, 1 + index of the first non-finite component, or
// 0xffffffff when the reference is below 2^-64 (degenerate state).
#include "common.cuh"

#define SKETCH_THREADS 256

extern "C" __global__ void __launch_bounds__(SKETCH_THREADS)
sketch_f32(const float* __restrict__ hidden, const uint32_t* __restrict__ planes, int dim,
           uint32_t* __restrict__ out, uint32_t* __restrict__ status) {
    GRAIL_DYNAMIC_SMEM(int8_t, q);
    __shared__ unsigned int hist[256];
    __shared__ int iscratch[32];
    __shared__ int bad;
    __shared__ unsigned int prefix_s;
    __shared__ unsigned int rank_s;
    __shared__ int acc[256];
    const int r = blockIdx.x;
    const int tid = threadIdx.x;
    const float* h = hidden + (size_t)r * dim;

    int first_bad = 0x7fffffff;
    for (int i = tid; i < dim; i += SKETCH_THREADS) {
        if (!isfinite(h[i])) first_bad = min(first_bad, i);
    }
    if (block_or(first_bad != 0x7fffffff, iscratch)) {
        if (tid == 0) bad = 0x7fffffff;
        __syncthreads();
        if (first_bad != 0x7fffffff) atomicMin(&bad, first_bad);
        __syncthreads();
        if (tid == 0) status[r] = 1u + (uint32_t)bad;
        return;
    }

    // radix select of the k-th largest |h| (k >= 1)
    const unsigned int k = (unsigned int)((dim + 15) / 16);
    if (tid == 0) { prefix_s = 0u; rank_s = k; }
    unsigned int mask = 0u;
    for (int shift = 24; shift >= 0; shift -= 8) {
        hist[tid] = 0u;
        __syncthreads();
        const unsigned int prefix = prefix_s;
        for (int i = tid; i < dim; i += SKETCH_THREADS) {
            const unsigned int key = __float_as_uint(h[i]) & 0x7fffffffu;
            if ((key & mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
        }
        __syncthreads();
        if (tid == 0) {
            unsigned int rank = rank_s;
            int b = 255;
            for (; b > 0; b--) {
                if (rank <= hist[b]) break;
                rank -= hist[b];
            }
            rank_s = rank;
            prefix_s = prefix | ((unsigned int)b << shift);
        }
        mask |= 255u << shift;
        __syncthreads();
    }
    const float reference = __uint_as_float(prefix_s);
    if (reference < 5.421010862427522e-20f) {  // 2^-64
        if (tid == 0) status[r] = 0xffffffffu;
        return;
    }
    const float scale = __fdiv_rn(32.0f, reference);
    for (int i = tid; i < dim; i += SKETCH_THREADS) {
        const float v = rintf(__fmul_rn(h[i], scale));
        q[i] = (int8_t)fminf(fmaxf(v, -127.0f), 127.0f);
    }
    __syncthreads();

    // thread t: plane bit t % 128 over dimensions t / 128, t / 128 + 2, ...
    const int j = tid & 127;
    const int word = j >> 5, bit = j & 31;
    int a = 0;
    for (int i = tid >> 7; i < dim; i += 2) {
        const int qi = q[i];
        const uint32_t w = planes[(size_t)i * 4 + word];
        a += ((w >> bit) & 1u) ? -qi : qi;
    }
    acc[tid] = a;
    __syncthreads();
    if (tid < 128) {
        const int total = acc[tid] + acc[tid + 128];
        const unsigned int bits = __ballot_sync(0xffffffffu, total > 0);
        if ((tid & 31) == 0) out[(size_t)r * 4 + (tid >> 5)] = bits;
    }
    if (tid == 0) status[r] = 0;
}
