// rms_norm: RMSNorm fused with the residual add. For each row r (hidden
// wide):
//   if delta:  residual[r] += delta[r] (+ bias)      (f32, in place)
//   y = w * (residual[r] * rsqrt(mean(residual[r]^2) + eps))
// The mean of squares is accumulated in f64 and rounded to f32, the scale is
// 1 / sqrt(var + eps) in f32 (IEEE sqrt and division), as transformers and
// the CPU engine compute it. y is written as f32 to out_f32 and/or rounded
// to the storage type to out_t (either may be null); `rows_out` (nullable)
// names, for each output row, the input row it normalizes (the final norm
// writes only the rows whose logits are wanted; the residual of the other
// rows is left as it was).
//
// Launch: grid (rows), block (256). Contract: the f64 sum of squares is a
// tree, the CPU's is sequential, so results agree to f32 rounding
// (rtol 1e-6); everything after the sum is the CPU's operations exactly.
#include "common.cuh"

// Elements a thread loads before it uses the first (strided_batches):
// hidden 1536 over 256 threads is 6 elements each, one round trip per pass.
#define RMS_UNROLL 8

template <typename T>
__device__ void rms_norm_residual(float* __restrict__ residual, const float* __restrict__ delta,
                                  const float* __restrict__ bias, const float* __restrict__ w,
                                  const uint32_t* __restrict__ rows_out, int hidden, float eps,
                                  float* __restrict__ out_f32, T* __restrict__ out_t) {
    __shared__ double scratch[32];
    const size_t out_row = (size_t)blockIdx.x * hidden;
    const size_t row = (rows_out ? (size_t)rows_out[blockIdx.x] : (size_t)blockIdx.x) * hidden;
    // this thread's elements i = threadIdx.x + k * blockDim.x, k = 0, 1, ...,
    // summed in that order
    double ss = 0.0;
    float x[RMS_UNROLL], dl[RMS_UNROLL], b[RMS_UNROLL];
    strided_batches<RMS_UNROLL>(
        threadIdx.x, hidden, blockDim.x,
        [&](int u, int i) {
            x[u] = residual[row + i];
            if (delta) dl[u] = delta[row + i];
            if (delta && bias) b[u] = bias[i];
        },
        [&](int u, int i) {
            if (delta) {
                float d = dl[u];
                if (bias) d = __fadd_rn(d, b[u]);
                x[u] = __fadd_rn(x[u], d);
                residual[row + i] = x[u];
            }
            ss += (double)x[u] * (double)x[u];
        });
    ss = block_sum_f64(ss, scratch);
    const float var = (float)(ss / (double)hidden);
    const float scale = __fdiv_rn(1.0f, __fsqrt_rn(__fadd_rn(var, eps)));
    float wv[RMS_UNROLL];
    strided_batches<RMS_UNROLL>(
        threadIdx.x, hidden, blockDim.x,
        [&](int u, int i) {
            x[u] = residual[row + i];
            wv[u] = w[i];
        },
        [&](int u, int i) {
            const float y = __fmul_rn(wv[u], __fmul_rn(x[u], scale));
            if (out_f32) out_f32[out_row + i] = y;
            if (out_t) store_f32(out_t, out_row + i, y);
        });
}

extern "C" __global__ void rms_norm_residual_f32(float* residual, const float* delta,
                                                 const float* bias, const float* w,
                                                 const uint32_t* rows_out, int hidden, float eps,
                                                 float* out_f32, float* out_t) {
    rms_norm_residual(residual, delta, bias, w, rows_out, hidden, eps, out_f32, out_t);
}

extern "C" __global__ void rms_norm_residual_bf16(float* residual, const float* delta,
                                                  const float* bias, const float* w,
                                                  const uint32_t* rows_out, int hidden, float eps,
                                                  float* out_f32, bf16* out_t) {
    rms_norm_residual(residual, delta, bias, w, rows_out, hidden, eps, out_f32, out_t);
}
