// logsoftmax: the chosen-token log-softmax. For each row r of `logits`
// (rows x vocab, f32), token[r] and temperature T = temperatures[r]:
// logprob[r] = (z_tok - max) / T - ln Z in f64, with Z summed in
// common.cuh's fixed order (the sampler's normalizer, so a sampled token's
// logprob is the same number whichever kernel computes it).
//
// Launch: grid (rows), block (SOFTMAX_THREADS), no dynamic shared memory.
// Contract: within 1e-12 (f64 log rounding) of kernels/src/twins.rs
// `logprob`. status[r] = 0 on success, 1 + index of the first non-finite
// logit, or 0xffffffff when token[r] >= vocab.
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(SOFTMAX_THREADS)
logprob_f32(const float* __restrict__ logits, const uint32_t* __restrict__ token, int vocab,
            const float* __restrict__ temperatures, double* __restrict__ logprob, uint32_t* __restrict__ status) {
    __shared__ double prefix[SOFTMAX_THREADS + 1];
    __shared__ float fscratch[32];
    __shared__ int iscratch[32];
    __shared__ int bad;
    const int r = blockIdx.x;
    const float temperature = temperatures[r];
    const float* z = logits + (size_t)r * vocab;
    const uint32_t t = token[r];
    if (t >= (uint32_t)vocab) {
        if (threadIdx.x == 0) status[r] = 0xffffffffu;
        return;
    }
    float m;
    if (!softmax_prefix(z, vocab, temperature, &m, prefix, &bad, fscratch, iscratch)) {
        if (threadIdx.x == 0) status[r] = 1u + (uint32_t)bad;
        return;
    }
    if (threadIdx.x == 0) {
        logprob[r] = ((double)z[t] - (double)m) / (double)temperature -
                     log(prefix[SOFTMAX_THREADS]);
        status[r] = 0;
    }
}
