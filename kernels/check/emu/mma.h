// mma.h for the CPU emulation (cuda_emu.h): the part of nvcuda::wmma that
// kernels/cuda/gemm.cu uses, m16n16k16 tiles of bf16 inputs with f32
// accumulators. Every operation is a warp collective, as on the device: all
// 32 lanes must call it with the same pointer and stride, else the
// emulation aborts (on the device: undefined behaviour). Pointers must be
// 32-byte aligned and strides a multiple of 16 bytes (the device's rules).
//
// A fragment's elements are spread over the lanes in a layout CUDA leaves
// unspecified, so kernels may not index them; here fragments have none of
// the device's element members (x, num_elements): a kernel that indexes
// one does not compile. Lane l holds, of a 16 x 16 tile: row l / 2 of A,
// columns 8 (l % 2) .. + 8 of B, and those 8 elements of the accumulator. A product sums its 16 terms in
// order, in f32 (bf16 products are exact); the tensor cores' order and
// rounding differ, which the kernels' twins allow for with a tolerance.
#pragma once
#include "cuda_bf16.h"

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <typename Use, int M, int N, int K, typename T, typename Layout = void>
class fragment;

template <typename Layout>
struct fragment<matrix_a, 16, 16, 16, __nv_bfloat16, Layout> {
    float row_[16];  // row lane / 2 (bf16 values, exact in f32)
};

template <typename Layout>
struct fragment<matrix_b, 16, 16, 16, __nv_bfloat16, Layout> {
    float cols_[8][16];  // columns 8 (lane % 2) + c, each over k
};

template <>
struct fragment<accumulator, 16, 16, 16, float, void> {
    float acc_[8];  // row lane / 2, columns 8 (lane % 2) + c
};

namespace detail {

// A warp collective: every lane arrives with the same `what` (pointer,
// stride), checked, before any goes on.
inline void collective(const char* op, const void* p, unsigned ldm, size_t elem_bytes) {
    if (reinterpret_cast<uintptr_t>(p) % 32 != 0) {
        emu::fail("wmma::%s: pointer %p is not 32-byte aligned", op, p);
    }
    if (ldm * elem_bytes % 16 != 0) {
        emu::fail("wmma::%s: stride %u elements is not a multiple of 16 bytes", op, ldm);
    }
    // each exchange's values are read before this lane's next collective
    // (which reuses the buffer two collectives back)
    const uint64_t values[2] = {reinterpret_cast<uint64_t>(p), ldm};
    for (const uint64_t v : values) {
        const uint64_t* all = emu::exchange(0xffffffffu, v);
        for (unsigned l = 1; l < 32; l++) {
            if (all[l] != all[0]) {
                emu::fail("wmma::%s: lanes 0 and %u disagree on the pointer or stride", op, l);
            }
        }
    }
}

inline unsigned lane() { return emu::machine().thread.x % 32; }

// element (r, c) of a 16 x 16 tile at p with stride ldm in `layout`
template <typename Layout>
inline float element(const __nv_bfloat16* p, unsigned ldm, int r, int c) {
    return __bfloat162float(std::is_same_v<Layout, row_major> ? p[r * ldm + c] : p[c * ldm + r]);
}

}  // namespace detail

template <typename Layout>
void load_matrix_sync(fragment<matrix_a, 16, 16, 16, __nv_bfloat16, Layout>& a,
                      const __nv_bfloat16* p, unsigned ldm) {
    detail::collective("load_matrix_sync (a)", p, ldm, 2);
    const int r = detail::lane() / 2;
    for (int k = 0; k < 16; k++) a.row_[k] = detail::element<Layout>(p, ldm, r, k);
}

template <typename Layout>
void load_matrix_sync(fragment<matrix_b, 16, 16, 16, __nv_bfloat16, Layout>& b,
                      const __nv_bfloat16* p, unsigned ldm) {
    detail::collective("load_matrix_sync (b)", p, ldm, 2);
    const int c0 = detail::lane() % 2 * 8;
    for (int c = 0; c < 8; c++) {
        for (int k = 0; k < 16; k++) b.cols_[c][k] = detail::element<Layout>(p, ldm, k, c0 + c);
    }
}

inline void fill_fragment(fragment<accumulator, 16, 16, 16, float>& f, float v) {
    (void)emu::exchange(0xffffffffu, 0);
    for (float& e : f.acc_) e = v;
}

inline void mma_sync(fragment<accumulator, 16, 16, 16, float>& d,
                     const fragment<matrix_a, 16, 16, 16, __nv_bfloat16, row_major>& a,
                     const fragment<matrix_b, 16, 16, 16, __nv_bfloat16, col_major>& b,
                     const fragment<accumulator, 16, 16, 16, float>& c) {
    (void)emu::exchange(0xffffffffu, 0);
    for (int j = 0; j < 8; j++) {
        float s = c.acc_[j];
        for (int k = 0; k < 16; k++) s += a.row_[k] * b.cols_[j][k];
        d.acc_[j] = s;
    }
}

inline void store_matrix_sync(float* p, const fragment<accumulator, 16, 16, 16, float>& f,
                              unsigned ldm, layout_t layout) {
    detail::collective("store_matrix_sync", p, ldm, 4);
    const int r = detail::lane() / 2, c0 = detail::lane() % 2 * 8;
    for (int c = 0; c < 8; c++) {
        if (layout == mem_row_major) {
            p[r * ldm + c0 + c] = f.acc_[c];
        } else {
            p[(c0 + c) * ldm + r] = f.acc_[c];
        }
    }
}

}  // namespace wmma
}  // namespace nvcuda
