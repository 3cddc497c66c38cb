// embedding: out[r, :] = table[ids[r], :] as f32 (rows x hidden), from an
// f32 or bf16 table (vocab x hidden). Ids are checked against the vocabulary
// on the host before launch.
//
// Launch: grid (rows), block (256). Contract: exact (a copy or a bf16 -> f32
// widening).
#include "common.cuh"

template <typename T>
__device__ void embedding(const T* __restrict__ table, const uint32_t* __restrict__ ids,
                          int hidden, float* __restrict__ out) {
    const size_t src = (size_t)ids[blockIdx.x] * hidden;
    const size_t dst = (size_t)blockIdx.x * hidden;
    for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[dst + i] = load_f32(table, src + i);
}

extern "C" __global__ void embedding_f32(const float* table, const uint32_t* ids, int hidden,
                                         float* out) {
    embedding(table, ids, hidden, out);
}

extern "C" __global__ void embedding_bf16(const bf16* table, const uint32_t* ids, int hidden,
                                          float* out) {
    embedding(table, ids, hidden, out);
}
