// gemm: out (m x n, f32, row-major) = x (m x k, bf16) * w^T (w: n x k,
// bf16, row-major: output column c's weights are row c of w), for the
// decode-sized m <= 64 where the weights dominate: the tensor cores through
// WMMA (m16n16k16, bf16 inputs, f32 accumulators), every weight byte read
// once, with many loads in flight.
//
// Tiling: block (b, z) computes out[:, 16b .. 16b + 16) for every row, as
// the transposed tile out^T = W_tile (16 x k) * x^T (k x 16 MT), MT =
// ceil(m / 16) accumulator tiles, over split z of the S = gridDim.y splits
// of k: k in chunks of GEMM_CHUNK columns, split z takes chunks [z C / S,
// (z + 1) C / S), and its GEMM_WARPS warps split those the same way. Per
// chunk a warp loads its 16 x GEMM_CHUNK weight strip with 16-byte loads
// into registers (the next chunk's loads in flight while this one's
// products run), stores it to its own shared strip (a row stride that puts
// the 8 rows of an ldmatrix on distinct banks), then runs GEMM_CHUNK / 16
// k-steps: A from the strip, B = rows of x straight from global memory
// (every block reads the same x: L1 / L2 resident; no block reuses it over
// more than its 16 columns, so x's traffic from L2 is m / 16 times the
// weights' from HBM: the cost of this tiling as m grows). The warps'
// partial tiles are then added in warp order through shared memory. With
// one split that is the output. With S > 1 (few column tiles: the host
// splits k so that the launch fills the GPU) each split stores its tile to
// `partials`, and the last of a column's splits to arrive (counted in
// done[b] after a fence) adds the S tiles in split order, stores the output
// and resets the count for the next launch. Deterministic for a given S.
//
// Fused forms, two 16-row weight parts per block (each staged GEMM_CHUNK / 2
// columns at a time, so a strip weighs the same) over the same k ranges per
// split and per warp as gemm's, so the same sums, then the arithmetic of the
// kernel they replace: their outputs equal gemm's products (as many splits)
// through that kernel, bit for bit.
// - gemm_swiglu: the gate/up projection (w: 2 inter x k, gate rows first);
//   part 0 gate rows, part 1 the up rows of the same 16 columns; stores
//   silu_mul.cu's activation (silu_mul_value, storage type, m x inter).
// - gemm_rope: the q/k/v projection; part 0 and part 1 the two halves of 16
//   rope pairs of one head; does rope.cu's bias, rotation and writes.
//
// Kernel parameters: x, m, w, k, the kernel's own, then partials and done.
// Launch: block (32 GEMM_WARPS); grid (tiles, S) with tiles ceil(n / 16)
// for gemm_bf16_m<MT>, ceil(inter / 16) for gemm_swiglu_bf16_m<MT> and
// (heads + 2 kv_heads) head_dim / 32 for gemm_rope_bf16_m<MT>. With S > 1,
// partials holds S tiles parts tiles of 16 x 16 MT floats and done `tiles`
// zeros.
// Contract (checked by the host wrapper): k % 16 == 0; w 16-byte aligned at
// every row (k % 8 == 0 and the offset % 8 == 0); x 32-byte aligned and
// holding 16 MT rows. Rows m .. 16 MT of x are read whatever they hold:
// column j of a product depends on row j of x only, and columns >= m are not
// stored. Accuracy: bf16 products are exact in f32; the order and rounding
// of the tensor cores' sums are the hardware's, as for cuBLAS's bf16 GEMMs,
// so the twin (a dot product in f32) is met within a tolerance, not bits.
#include "common.cuh"
#include <mma.h>

#define GEMM_WARPS 8
#define GEMM_TILE 16
#define GEMM_CHUNK 128
// 16-byte vectors of a warp's strip per lane (any number of parts)
#define GEMM_VECS (GEMM_TILE * GEMM_CHUNK / 8 / 32)

typedef nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> GemmAcc;

// The geometry of a product of PARTS 16-row weight parts per block (1:
// gemm; 2: gemm_swiglu's gate and up, gemm_rope's pair halves): a warp's
// strip is 16 PARTS rows of CHUNK columns of k, row stride STRIDE (the 8
// rows of an ldmatrix on distinct banks), the same 4 KiB whatever PARTS.
template <int PARTS>
struct GemmShape {
    static constexpr int CHUNK = GEMM_CHUNK / PARTS;
    static constexpr int STRIDE = CHUNK + 8;
    static constexpr int STRIP = GEMM_TILE * PARTS * STRIDE;  // elements
    static constexpr int STEPS = CHUNK / 16;
};

// The products of `steps` k-steps of 16 over a warp's strip (A, each part)
// and rows of x (B) from column `col`. PIPELINED (full chunks: steps ==
// STEPS, known at compile time): each step's fragments are loaded one step
// ahead, in flight during the previous step's products. Otherwise (the one
// partial chunk of a product, if any) one step after another.
template <int MT, int PARTS, bool PIPELINED>
__device__ __forceinline__ void gemm_chunk(GemmAcc (&acc)[PARTS][MT], const bf16* strip,
                                           const bf16* x, int k, int col, int steps) {
    using namespace nvcuda;
    typedef GemmShape<PARTS> S;
    typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
    typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragB;
    auto fetch = [&](int s, FragA (&a)[PARTS], FragB (&b)[MT]) {
#pragma unroll
        for (int p = 0; p < PARTS; p++) {
            wmma::load_matrix_sync(a[p], strip + p * GEMM_TILE * S::STRIDE + s * 16, S::STRIDE);
        }
#pragma unroll
        for (int t = 0; t < MT; t++) {
            wmma::load_matrix_sync(b[t], x + (size_t)t * 16 * k + col + s * 16, k);
        }
    };
    auto multiply = [&](FragA (&a)[PARTS], FragB (&b)[MT]) {
#pragma unroll
        for (int p = 0; p < PARTS; p++) {
#pragma unroll
            for (int t = 0; t < MT; t++) wmma::mma_sync(acc[p][t], a[p], b[t], acc[p][t]);
        }
    };
    if (PIPELINED) {
        FragA a[2][PARTS];
        FragB b[2][MT];
        fetch(0, a[0], b[0]);
#pragma unroll
        for (int s = 0; s < S::STEPS; s++) {
            if (s + 1 < S::STEPS) fetch(s + 1, a[(s + 1) % 2], b[(s + 1) % 2]);
            multiply(a[s % 2], b[s % 2]);
        }
    } else {
        for (int s = 0; s < steps; s++) {
            FragA a[PARTS];
            FragB b[MT];
            fetch(s, a, b);
            multiply(a, b);
        }
    }
}

// Block (blockIdx.x, blockIdx.y)'s sums over its split of k (see the top of
// the file): part p covers weight rows row0 + p part_stride + r for r < 16,
// of which the first `valid` exist (the rest count as zeros); returns in
// vals[p][q] the product for element e = q 32 GEMM_WARPS + threadIdx.x of
// the 16 x 16 MT tile: weight row e % 16 (consecutive threads, consecutive
// output columns) of part p, row e / 16 of x. `smem`: GEMM_WARPS strips.
template <int MT, int PARTS>
__device__ __forceinline__ void gemm_sums(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                          int k, int row0, int part_stride, int valid, bf16* smem,
                                          float (&vals)[PARTS][MT]) {
    using namespace nvcuda;
    typedef GemmShape<PARTS> S;
    constexpr int LD = MT * GEMM_TILE;  // partial tiles: 16 x LD floats per warp
    static_assert(GEMM_TILE * LD == 32 * GEMM_WARPS * MT, "MT elements per thread");
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    bf16* strip = smem + warp * S::STRIP;
    // splits and warps take ranges of whole GEMM_CHUNKs, whatever PARTS (the
    // same ranges, so the same sums, as gemm's), staged in PARTS pieces each
    const int chunks = (k + GEMM_CHUNK - 1) / GEMM_CHUNK, splits = gridDim.y, z = blockIdx.y;
    const int s0 = z * chunks / splits, mine = (z + 1) * chunks / splits - s0;
    const int c0 = (s0 + warp * mine / GEMM_WARPS) * PARTS;
    const int c1 = (s0 + (warp + 1) * mine / GEMM_WARPS) * PARTS;

    GemmAcc acc[PARTS][MT];
#pragma unroll
    for (int p = 0; p < PARTS; p++) {
#pragma unroll
        for (int t = 0; t < MT; t++) wmma::fill_fragment(acc[p][t], 0.0f);
    }

    // vector v of the strip: row r = v / (CHUNK / 8) (part r / 16), columns
    // 8 (v % (CHUNK / 8)) ..: each instruction reads whole rows' contiguous
    // bytes
    constexpr int ROW_VECS = S::CHUNK / 8;
    uint4 vec[GEMM_VECS];
    auto load = [&](int c) {
#pragma unroll
        for (int u = 0; u < GEMM_VECS; u++) {
            const int v = u * 32 + lane, r = v / ROW_VECS, col = c * S::CHUNK + v % ROW_VECS * 8;
            if (r % GEMM_TILE < valid && col < k) {
                const int row = row0 + r / GEMM_TILE * part_stride + r % GEMM_TILE;
                const bf16* p = w + (size_t)row * k + col;
                GRAIL_CHECK_ALIGNED(p, 16);
                vec[u] = *reinterpret_cast<const uint4*>(p);
            } else {
                vec[u] = uint4{0, 0, 0, 0};
            }
        }
    };
    if (c0 < c1) load(c0);
    for (int c = c0; c < c1; c++) {
#pragma unroll
        for (int u = 0; u < GEMM_VECS; u++) {
            const int v = u * 32 + lane;
            *reinterpret_cast<uint4*>(strip + v / ROW_VECS * S::STRIDE + v % ROW_VECS * 8) = vec[u];
        }
        __syncwarp();
        if (c + 1 < c1) load(c + 1);
        // a last GEMM_CHUNK of k cut short may leave a piece with no step
        const int col = c * S::CHUNK, steps = max(0, min(S::CHUNK, k - col)) / 16;
        if (steps == S::STEPS) {
            gemm_chunk<MT, PARTS, true>(acc, strip, x, k, col, steps);
        } else {
            gemm_chunk<MT, PARTS, false>(acc, strip, x, k, col, steps);
        }
        __syncwarp();  // the strip is read before the next chunk overwrites it
    }
    // the warps' tiles of each part through shared memory, added in warp order
    float* sums = reinterpret_cast<float*>(smem);
#pragma unroll
    for (int p = 0; p < PARTS; p++) {
        __syncthreads();  // every strip (or the previous part's tiles) read
#pragma unroll
        for (int t = 0; t < MT; t++) {
            wmma::store_matrix_sync(sums + warp * GEMM_TILE * LD + t * 16, acc[p][t], LD,
                                    wmma::mem_row_major);
        }
        __syncthreads();
#pragma unroll
        for (int q = 0; q < MT; q++) {
            const int e = q * 32 * GEMM_WARPS + threadIdx.x, i = e % GEMM_TILE, j = e / GEMM_TILE;
            float s = sums[i * LD + j];
            for (int ww = 1; ww < GEMM_WARPS; ww++) {
                s = __fadd_rn(s, sums[ww * GEMM_TILE * LD + i * LD + j]);
            }
            vals[p][q] = s;
        }
    }
}

// Bytes of a block's shared memory: the strips, reused for the tiles.
template <int MT, int PARTS>
struct GemmSmem {
    static constexpr int STRIPS = GEMM_WARPS * GemmShape<PARTS>::STRIP;  // bf16 elements
    static_assert(GEMM_WARPS * GEMM_TILE * MT * GEMM_TILE * 4 <= STRIPS * 2, "partial tiles");
};

// With one split (gridDim.y == 1) returns true at once. Otherwise stores
// this split's vals to its tile of `partials` and returns whether this block
// is the last of its column tile's splits to arrive (counted in
// done[blockIdx.x] after a fence); that block then holds in vals the sums
// of every split's tiles, added in split order, and has reset the count.
template <int MT, int PARTS>
__device__ __forceinline__ bool gemm_merge_splits(float (&vals)[PARTS][MT],
                                                  float* __restrict__ partials,
                                                  unsigned* __restrict__ done) {
    constexpr int TILE = GEMM_TILE * MT * GEMM_TILE;  // floats of one part's tile
    const int splits = gridDim.y;
    if (splits == 1) return true;
    auto at = [&](int z, int p, int q) -> float* {
        return partials + (((size_t)z * gridDim.x + blockIdx.x) * PARTS + p) * TILE +
               q * 32 * GEMM_WARPS + threadIdx.x;
    };
#pragma unroll
    for (int p = 0; p < PARTS; p++) {
#pragma unroll
        for (int q = 0; q < MT; q++) *at(blockIdx.y, p, q) = vals[p][q];
    }
    // this split's tile is visible device-wide before it is counted
    __threadfence();
    __syncthreads();
    __shared__ int last;
    if (threadIdx.x == 0) {
        last = atomicAdd(&done[blockIdx.x], 1u) == (unsigned)splits - 1;
        // the acquire side: the thread that saw the count fences before
        // the barrier that lets the block read the other splits' tiles
        __threadfence();
    }
    __syncthreads();
    if (!last) return false;
#pragma unroll
    for (int p = 0; p < PARTS; p++) {
#pragma unroll
        for (int q = 0; q < MT; q++) {
            float s = __ldcg(at(0, p, q));
            for (int z = 1; z < splits; z++) s = __fadd_rn(s, __ldcg(at(z, p, q)));
            vals[p][q] = s;
        }
    }
    if (threadIdx.x == 0) done[blockIdx.x] = 0;
    return true;
}

// Element q of this thread's share of the tile: weight row i (within a
// part), x row j.
__device__ __forceinline__ int gemm_row_in_tile(int q) {
    return (q * 32 * GEMM_WARPS + (int)threadIdx.x) % GEMM_TILE;
}
__device__ __forceinline__ int gemm_x_row(int q) {
    return (q * 32 * GEMM_WARPS + (int)threadIdx.x) / GEMM_TILE;
}

template <int MT>
__device__ void gemm_bf16(const bf16* __restrict__ x, int m, const bf16* __restrict__ w, int n,
                          int k, float* __restrict__ out, float* __restrict__ partials,
                          unsigned* __restrict__ done) {
    __shared__ __align__(32) bf16 smem[GemmSmem<MT, 1>::STRIPS];
    const int n0 = blockIdx.x * GEMM_TILE;
    float vals[1][MT];
    gemm_sums<MT, 1>(x, w, k, n0, 0, min(GEMM_TILE, n - n0), smem, vals);
    if (!gemm_merge_splits<MT, 1>(vals, partials, done)) return;
#pragma unroll
    for (int q = 0; q < MT; q++) {
        const int i = gemm_row_in_tile(q), j = gemm_x_row(q);
        if (j < m && n0 + i < n) out[(size_t)j * n + n0 + i] = vals[0][q];
    }
}

template <int MT>
__device__ void gemm_swiglu_bf16(const bf16* __restrict__ x, int m, const bf16* __restrict__ w,
                                 int inter, int k, const float* __restrict__ bias,
                                 bf16* __restrict__ act, float* __restrict__ partials,
                                 unsigned* __restrict__ done) {
    __shared__ __align__(32) bf16 smem[GemmSmem<MT, 2>::STRIPS];
    const int n0 = blockIdx.x * GEMM_TILE;
    float vals[2][MT];
    gemm_sums<MT, 2>(x, w, k, n0, inter, min(GEMM_TILE, inter - n0), smem, vals);
    if (!gemm_merge_splits<MT, 2>(vals, partials, done)) return;
#pragma unroll
    for (int q = 0; q < MT; q++) {
        const int i = gemm_row_in_tile(q), j = gemm_x_row(q);
        if (j >= m || n0 + i >= inter) continue;
        store_f32(act, (size_t)j * inter + n0 + i,
                  silu_mul_value(vals[0][q], vals[1][q], bias, inter, n0 + i));
    }
}

// gemm_rope: the q/k/v projection (w: (heads + 2 kv_heads) head_dim rows:
// q heads, k heads, v heads) fused with rope.cu: each block takes 16 pairs
// (i, i + head_dim / 2) of one head (head_dim a multiple of 32), part 0 the
// first of each pair, part 1 the second, and does with the two sums what
// rope.cu does with those two columns of its qkv row (bias, rotation of q
// and k heads by rope_rotate, q to q_out, k and v to the caches at the
// row's slot and position).
template <int MT>
__device__ void gemm_rope_bf16(const bf16* __restrict__ x, int m, const bf16* __restrict__ w,
                               int k, const float* __restrict__ bias,
                               const float* __restrict__ table, const uint32_t* __restrict__ pos,
                               const uint32_t* __restrict__ slot, int heads, int kv_heads,
                               int head_dim, int cap, float* __restrict__ q_out,
                               bf16* __restrict__ k_cache, bf16* __restrict__ v_cache,
                               float* __restrict__ partials, unsigned* __restrict__ done) {
    __shared__ __align__(32) bf16 smem[GemmSmem<MT, 2>::STRIPS];
    const int half = head_dim / 2, per_head = half / GEMM_TILE;
    const int h = blockIdx.x / per_head, i0 = blockIdx.x % per_head * GEMM_TILE;
    float vals[2][MT];
    gemm_sums<MT, 2>(x, w, k, h * head_dim + i0, half, GEMM_TILE, smem, vals);
    if (!gemm_merge_splits<MT, 2>(vals, partials, done)) return;
#pragma unroll
    for (int q = 0; q < MT; q++) {
        const int j = gemm_x_row(q), i = i0 + gemm_row_in_tile(q);
        if (j >= m) continue;
        const int c1 = h * head_dim + i, c2 = c1 + half;
        float v1 = vals[0][q], v2 = vals[1][q];
        if (bias) {
            v1 = __fadd_rn(v1, bias[c1]);
            v2 = __fadd_rn(v2, bias[c2]);
        }
        const size_t s = slot[j], p = pos[j];
        if (h >= heads + kv_heads) {
            const size_t base = ((s * kv_heads + (h - heads - kv_heads)) * cap + p) * head_dim;
            store_f32(v_cache, base + i, v1);
            store_f32(v_cache, base + i + half, v2);
            continue;
        }
        const float* cs = table + (size_t)p * head_dim + 2 * i;
        float y1, y2;
        rope_rotate(v1, v2, cs[0], cs[1], &y1, &y2);
        if (h < heads) {
            q_out[(size_t)j * heads * head_dim + c1] = y1;
            q_out[(size_t)j * heads * head_dim + c2] = y2;
        } else {
            const size_t base = ((s * kv_heads + (h - heads)) * cap + p) * head_dim;
            store_f32(k_cache, base + i, y1);
            store_f32(k_cache, base + i + half, y2);
        }
    }
}

#define GEMM_KERNELS(MT)                                                                       \
    extern "C" __global__ void __launch_bounds__(32 * GEMM_WARPS)                              \
        gemm_bf16_m##MT(const bf16* x, int m, const bf16* w, int k, int n, float* out,         \
                        float* partials, unsigned* done) {                                     \
        gemm_bf16<MT>(x, m, w, n, k, out, partials, done);                                     \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(32 * GEMM_WARPS)                              \
        gemm_swiglu_bf16_m##MT(const bf16* x, int m, const bf16* w, int k, int inter,          \
                               const float* bias, bf16* act, float* partials,                  \
                               unsigned* done) {                                               \
        gemm_swiglu_bf16<MT>(x, m, w, inter, k, bias, act, partials, done);                    \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(32 * GEMM_WARPS) gemm_rope_bf16_m##MT(         \
        const bf16* x, int m, const bf16* w, int k, const float* bias, const float* table,     \
        const uint32_t* pos, const uint32_t* slot, int heads, int kv_heads, int head_dim,      \
        int cap, float* q_out, bf16* k_cache, bf16* v_cache, float* partials,                  \
        unsigned* done) {                                                                      \
        gemm_rope_bf16<MT>(x, m, w, k, bias, table, pos, slot, heads, kv_heads, head_dim, cap, \
                           q_out, k_cache, v_cache, partials, done);                           \
    }
GEMM_KERNELS(1)
GEMM_KERNELS(2)
GEMM_KERNELS(3)
GEMM_KERNELS(4)
#undef GEMM_KERNELS
