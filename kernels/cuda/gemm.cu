// gemm: out (m x n, f32, row-major) = x (m x k, bf16) * w^T (w: n x k,
// bf16, row-major: output column c's weights are row c of w), for the
// decode-sized m <= 64 where the weights dominate: the tensor cores through
// WMMA (m16n16k16, bf16 inputs, f32 accumulators), every weight byte read
// once, with many loads in flight. Its fused form gemm_swiglu multiplies by
// a gate/up projection (w: 2 inter x k, gate rows then up rows) and stores
// silu_mul.cu's activation of the two products instead (storage type, inter
// columns): a block then takes the same 16 columns of gate and of up (two
// 16-row parts per strip, chunks of GEMM_CHUNK / 2 so a strip weighs the
// same), the same sums, and the same arithmetic after them as silu_mul.cu
// (silu_mul_value), so its output equals gemm's products through silu_mul.cu.
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
// 16 x 16 MT floats and done ceil(n / 16) zeros. gemm_swiglu_bf16_m<MT>:
// grid (ceil(inter / 16)), one split.
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
// gemm; 2: gate and up, gemm_swiglu): a warp's strip is 16 PARTS rows of
// CHUNK columns of k, row stride STRIDE (the 8 rows of an ldmatrix on
// distinct banks), the same 4 KiB whatever PARTS.
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

// Block (blockIdx.x, blockIdx.y)'s sums (see the top of the file): part p
// covers weight rows p n + 16 blockIdx.x .. + 16 (n: the columns of a part);
// returns in vals[p][q] the product for element e = q 32 GEMM_WARPS +
// threadIdx.x of the 16 x 16 MT tile: weight row e % 16 (consecutive
// threads, consecutive output columns) of part p, row e / 16 of x. `smem`:
// GEMM_WARPS strips.
template <int MT, int PARTS>
__device__ __forceinline__ void gemm_sums(const bf16* __restrict__ x, const bf16* __restrict__ w,
                                          int n, int k, bf16* smem, float (&vals)[PARTS][MT]) {
    using namespace nvcuda;
    typedef GemmShape<PARTS> S;
    constexpr int LD = MT * GEMM_TILE;  // partial tiles: 16 x LD floats per warp
    static_assert(GEMM_TILE * LD == 32 * GEMM_WARPS * MT, "MT elements per thread");
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int n0 = blockIdx.x * GEMM_TILE;
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
            const int row = n0 + r % GEMM_TILE;
            if (row < n && col < k) {
                const bf16* p = w + ((size_t)(r / GEMM_TILE) * n + row) * k + col;
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

template <int MT>
__device__ void gemm_bf16(const bf16* __restrict__ x, int m, const bf16* __restrict__ w, int n,
                          int k, float* __restrict__ out, float* __restrict__ partials,
                          unsigned* __restrict__ done) {
    constexpr int LD = MT * GEMM_TILE;
    __shared__ __align__(32) bf16 smem[GemmSmem<MT, 1>::STRIPS];
    float vals[1][MT];
    gemm_sums<MT, 1>(x, w, n, k, smem, vals);
    const int n0 = blockIdx.x * GEMM_TILE, splits = gridDim.y, z = blockIdx.y;
    float* tile =
        splits == 1 ? nullptr : partials + ((size_t)z * gridDim.x + blockIdx.x) * GEMM_TILE * LD;
#pragma unroll
    for (int q = 0; q < MT; q++) {
        const int e = q * 32 * GEMM_WARPS + threadIdx.x, i = e % GEMM_TILE, j = e / GEMM_TILE;
        if (j >= m || n0 + i >= n) continue;
        if (splits == 1) {
            out[(size_t)j * n + n0 + i] = vals[0][q];
        } else {
            tile[e] = vals[0][q];
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
#pragma unroll
    for (int q = 0; q < MT; q++) {
        const int e = q * 32 * GEMM_WARPS + threadIdx.x, i = e % GEMM_TILE, j = e / GEMM_TILE;
        if (j >= m || n0 + i >= n) continue;
        const float* p = partials + (size_t)blockIdx.x * GEMM_TILE * LD + e;
        float s = __ldcg(p);
        for (int zz = 1; zz < splits; zz++) {
            s = __fadd_rn(s, __ldcg(p + (size_t)zz * gridDim.x * GEMM_TILE * LD));
        }
        out[(size_t)j * n + n0 + i] = s;
    }
    if (threadIdx.x == 0) done[blockIdx.x] = 0;
}

template <int MT>
__device__ void gemm_swiglu_bf16(const bf16* __restrict__ x, int m, const bf16* __restrict__ w,
                                 int inter, int k, const float* __restrict__ bias,
                                 bf16* __restrict__ act) {
    __shared__ __align__(32) bf16 smem[GemmSmem<MT, 2>::STRIPS];
    float vals[2][MT];
    gemm_sums<MT, 2>(x, w, inter, k, smem, vals);
    const int n0 = blockIdx.x * GEMM_TILE;
#pragma unroll
    for (int q = 0; q < MT; q++) {
        const int e = q * 32 * GEMM_WARPS + threadIdx.x, i = e % GEMM_TILE, j = e / GEMM_TILE;
        if (j >= m || n0 + i >= inter) continue;
        store_f32(act, (size_t)j * inter + n0 + i,
                  silu_mul_value(vals[0][q], vals[1][q], bias, inter, n0 + i));
    }
}

#define GEMM_KERNELS(MT)                                                                       \
    extern "C" __global__ void __launch_bounds__(32 * GEMM_WARPS)                              \
        gemm_bf16_m##MT(const bf16* x, int m, const bf16* w, int n, int k, float* out,         \
                        float* partials, unsigned* done) {                                     \
        gemm_bf16<MT>(x, m, w, n, k, out, partials, done);                                     \
    }                                                                                          \
    extern "C" __global__ void __launch_bounds__(32 * GEMM_WARPS)                              \
        gemm_swiglu_bf16_m##MT(const bf16* x, int m, const bf16* w, int inter, int k,          \
                               const float* bias, bf16* act) {                                 \
        gemm_swiglu_bf16<MT>(x, m, w, inter, k, bias, act);                                    \
    }
GEMM_KERNELS(1)
GEMM_KERNELS(2)
GEMM_KERNELS(3)
GEMM_KERNELS(4)
#undef GEMM_KERNELS
