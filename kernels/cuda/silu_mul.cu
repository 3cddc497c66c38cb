// silu_mul: the gated MLP activation. gate_up is rows x 2*inter (f32, the
// fused gate/up projection: gate in the first inter columns, up in the
// rest); with the optional biases added (g = gate + bg, u = up + bu),
//   out = silu(g) * u = g / (1 + exp(-g)) * u
// rounded to the storage type (the down projection's input).
//
// Launch: grid (ceil(inter / 256), rows), block (256). Contract: expf is
// CUDA's (<= 2 ulp), the CPU's is libm's, so rtol 1e-6 after the bf16
// rounding, if any.
#include "common.cuh"

template <typename T>
__device__ void silu_mul(const float* __restrict__ gate_up, const float* __restrict__ bias,
                         int inter, T* __restrict__ out) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= inter) return;
    const size_t row = (size_t)blockIdx.y;
    const float g = gate_up[row * 2 * inter + i], u = gate_up[row * 2 * inter + inter + i];
    store_f32(out, row * inter + i, silu_mul_value(g, u, bias, inter, i));
}

extern "C" __global__ void silu_mul_f32(const float* gate_up, const float* bias, int inter,
                                        float* out) {
    silu_mul(gate_up, bias, inter, out);
}

extern "C" __global__ void silu_mul_bf16(const float* gate_up, const float* bias, int inter,
                                         bf16* out) {
    silu_mul(gate_up, bias, inter, out);
}
