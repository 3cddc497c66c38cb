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
// (z + 1) C / S), and its GEMM_WARPS warps split those the same way. Per chunk a warp
// loads its 16 x GEMM_CHUNK weight strip with 16-byte loads into registers
// (the next chunk's loads in flight while this one's products run), stores
// it to its own shared strip (row stride GEMM_STRIDE: the 8 rows of an
// ldmatrix fall on distinct banks), then runs GEMM_CHUNK / 16 k-steps: A from
// the strip, B = rows of x straight from global memory (every block reads
// the same x: L1 / L2 resident). The warps' partial tiles are then added in
// warp order through shared memory. With one split that is the output. With
// S > 1 (few column tiles: the host splits k so that the launch fills the
// GPU) each split stores its tile to `partials` (tile z * gridDim.x + b),
// and the last of a column's splits to arrive (counted in done[b] after a
// fence) adds the S tiles in split order, stores the output and resets the
// count for the next launch. Deterministic for a given S.
//
// Launch: grid (ceil(n / 16), S), block (32 GEMM_WARPS), kernel
// gemm_bf16_m<MT>; with S > 1, partials holds S ceil(n / 16) tiles of
// 16 x 16 MT floats and done ceil(n / 16) zeros.
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
#define GEMM_STRIDE (GEMM_CHUNK + 8)
// 16-byte vectors of a warp's strip per lane
#define GEMM_VECS (GEMM_TILE * GEMM_CHUNK / 8 / 32)

// The products of `steps` k-steps of 16 over a warp's strip (A) and rows of
// x (B) from column `col`. PIPELINED (full chunks: steps == GEMM_CHUNK / 16,
// known at compile time): each step's fragments are loaded one step ahead,
// in flight during the previous step's products. Otherwise (the one partial
// chunk of a product, if any) one step after another.
template <int MT, bool PIPELINED>
__device__ __forceinline__ void gemm_chunk(
    nvcuda::wmma::fragment<nvcuda::wmma::accumulator, 16, 16, 16, float> (&acc)[MT],
    const bf16* strip, const bf16* x, int k, int col, int steps) {
    using namespace nvcuda;
    typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
    typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragB;
    auto fetch = [&](int s, FragA& a, FragB (&b)[MT]) {
        wmma::load_matrix_sync(a, strip + s * 16, GEMM_STRIDE);
#pragma unroll
        for (int t = 0; t < MT; t++) {
            wmma::load_matrix_sync(b[t], x + (size_t)t * 16 * k + col + s * 16, k);
        }
    };
    if (PIPELINED) {
        constexpr int STEPS = GEMM_CHUNK / 16;
        FragA a[2];
        FragB b[2][MT];
        fetch(0, a[0], b[0]);
#pragma unroll
        for (int s = 0; s < STEPS; s++) {
            if (s + 1 < STEPS) fetch(s + 1, a[(s + 1) % 2], b[(s + 1) % 2]);
#pragma unroll
            for (int t = 0; t < MT; t++) wmma::mma_sync(acc[t], a[s % 2], b[s % 2][t], acc[t]);
        }
    } else {
        for (int s = 0; s < steps; s++) {
            FragA a;
            FragB b[MT];
            fetch(s, a, b);
#pragma unroll
            for (int t = 0; t < MT; t++) wmma::mma_sync(acc[t], a, b[t], acc[t]);
        }
    }
}

template <int MT>
__device__ void gemm_bf16(const bf16* __restrict__ x, int m, const bf16* __restrict__ w, int n,
                          int k, float* __restrict__ out, float* __restrict__ partials,
                          unsigned* __restrict__ done) {
    using namespace nvcuda;
    constexpr int LD = MT * GEMM_TILE;  // partial tiles: 16 x LD floats per warp
    // the strips, then (reused) the partial tiles
    __shared__ __align__(32) bf16 smem[GEMM_WARPS * GEMM_TILE * GEMM_STRIDE];
    static_assert(GEMM_WARPS * GEMM_TILE * LD * sizeof(float) <= sizeof(smem), "partial tiles");
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int n0 = blockIdx.x * GEMM_TILE;
    bf16* strip = smem + warp * GEMM_TILE * GEMM_STRIDE;
    const int chunks = (k + GEMM_CHUNK - 1) / GEMM_CHUNK, splits = gridDim.y, z = blockIdx.y;
    const int s0 = z * chunks / splits, mine = (z + 1) * chunks / splits - s0;
    const int c0 = s0 + warp * mine / GEMM_WARPS, c1 = s0 + (warp + 1) * mine / GEMM_WARPS;

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[MT];
#pragma unroll
    for (int t = 0; t < MT; t++) wmma::fill_fragment(acc[t], 0.0f);

    // vector v of the strip: row v / 16, columns 8 (v % 16) ..; a warp's
    // lanes read two rows' 256 contiguous bytes per instruction
    uint4 vec[GEMM_VECS];
    auto load = [&](int c) {
#pragma unroll
        for (int u = 0; u < GEMM_VECS; u++) {
            const int v = u * 32 + lane, row = n0 + v / 16, col = c * GEMM_CHUNK + v % 16 * 8;
            if (row < n && col < k) {
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
            *reinterpret_cast<uint4*>(strip + v / 16 * GEMM_STRIDE + v % 16 * 8) = vec[u];
        }
        __syncwarp();
        if (c + 1 < c1) load(c + 1);
        const int col = c * GEMM_CHUNK, steps = min(GEMM_CHUNK, k - col) / 16;
        if (steps == GEMM_CHUNK / 16) {
            gemm_chunk<MT, true>(acc, strip, x, k, col, steps);
        } else {
            gemm_chunk<MT, false>(acc, strip, x, k, col, steps);
        }
        __syncwarp();  // the strip is read before the next chunk overwrites it
    }
    __syncthreads();  // every strip read: the shared memory now holds the partial tiles
    float* sums = reinterpret_cast<float*>(smem);
#pragma unroll
    for (int t = 0; t < MT; t++) {
        wmma::store_matrix_sync(sums + warp * GEMM_TILE * LD + t * 16, acc[t], LD,
                                wmma::mem_row_major);
    }
    __syncthreads();
    // element e: weight row i = e % 16 (consecutive threads, consecutive
    // output columns), x row j = e / 16
    float* tile =
        splits == 1 ? nullptr : partials + ((size_t)z * gridDim.x + blockIdx.x) * GEMM_TILE * LD;
    for (int e = threadIdx.x; e < GEMM_TILE * LD; e += blockDim.x) {
        const int i = e % GEMM_TILE, j = e / GEMM_TILE;
        if (j >= m || n0 + i >= n) continue;
        float s = sums[i * LD + j];
        for (int q = 1; q < GEMM_WARPS; q++) s = __fadd_rn(s, sums[q * GEMM_TILE * LD + i * LD + j]);
        if (splits == 1) {
            out[(size_t)j * n + n0 + i] = s;
        } else {
            tile[e] = s;
        }
    }
    if (splits == 1) return;
    // this split's tile is visible device-wide before it is counted
    __threadfence();
    __syncthreads();
    __shared__ int last;
    if (threadIdx.x == 0) last = atomicAdd(&done[blockIdx.x], 1u) == (unsigned)splits - 1;
    __syncthreads();
    if (!last) return;
    for (int e = threadIdx.x; e < GEMM_TILE * LD; e += blockDim.x) {
        const int i = e % GEMM_TILE, j = e / GEMM_TILE;
        if (j >= m || n0 + i >= n) continue;
        const float* p = partials + (size_t)blockIdx.x * GEMM_TILE * LD + e;
        float s = __ldcg(p);
        for (int q = 1; q < splits; q++) {
            s = __fadd_rn(s, __ldcg(p + (size_t)q * gridDim.x * GEMM_TILE * LD));
        }
        out[(size_t)j * n + n0 + i] = s;
    }
    if (threadIdx.x == 0) done[blockIdx.x] = 0;
}

#define GEMM_KERNEL(MT)                                                                        \
    extern "C" __global__ void __launch_bounds__(32 * GEMM_WARPS)                              \
        gemm_bf16_m##MT(const bf16* x, int m, const bf16* w, int n, int k, float* out,         \
                        float* partials, unsigned* done) {                                     \
        gemm_bf16<MT>(x, m, w, n, k, out, partials, done);                                     \
    }
GEMM_KERNEL(1)
GEMM_KERNEL(2)
GEMM_KERNEL(3)
GEMM_KERNEL(4)
#undef GEMM_KERNEL
