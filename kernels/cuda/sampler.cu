// sampler: the protocol's verifiable sampler on the GPU. For each row r of
// `logits` (rows x vocab, f32) and its uniform u[r] in [0, 1): the first
// token i whose running weight sum C_i exceeds u * Z, where the weights
// w_i = exp_det((z_i - max) / T) and their sums follow common.cuh's fixed
// order (SOFTMAX_THREADS chunks), and the committed logprob
// (z_tok - max) / T - ln Z in f64.
//
// Launch: grid (rows), block (SOFTMAX_THREADS), no dynamic shared memory.
// Contract: token[r] equals kernels/src/twins.rs `sample` bit for bit on the
// same logits; logprob[r] agrees to f64 rounding of log (atol 1e-12).
// status[r] = 0 on success, 1 + index of the first non-finite logit otherwise
// (then token and logprob are left untouched).
#include "common.cuh"

extern "C" __global__ void __launch_bounds__(SOFTMAX_THREADS)
sample_f32(const float* __restrict__ logits, const double* __restrict__ uniforms, int vocab,
           const float* __restrict__ temperatures, uint32_t* __restrict__ token, double* __restrict__ logprob,
           uint32_t* __restrict__ status) {
    __shared__ double prefix[SOFTMAX_THREADS + 1];
    __shared__ float fscratch[32];
    __shared__ int iscratch[32];
    __shared__ int bad;
    __shared__ int found;
    __shared__ int last_nonzero;
    const int r = blockIdx.x;
    const float temperature = temperatures[r];
    const float* z = logits + (size_t)r * vocab;
    float m;
    if (!softmax_prefix(z, vocab, temperature, &m, prefix, &bad, fscratch, iscratch)) {
        if (threadIdx.x == 0) status[r] = 1u + (uint32_t)bad;
        return;
    }
    const double total = prefix[SOFTMAX_THREADS];
    const double target = uniforms[r] * total;
    const int chunk = (vocab + SOFTMAX_THREADS - 1) / SOFTMAX_THREADS;
    const int j = threadIdx.x;
    if (j == 0) { found = -1; last_nonzero = -1; }
    __syncthreads();
    // The chunk holding the target: the first j with target < prefix[j+1].
    // Exactly one thread sees prefix[j] <= target < prefix[j+1] unless the
    // target is at or past Z (rounding), where none does.
    const bool mine = target < prefix[j + 1] && (j == 0 || !(target < prefix[j]));
    const int lo = min(vocab, j * chunk), hi = min(vocab, lo + chunk);
    if (mine) {
        // the running sum from the chunk's start, token by token, up to the
        // first token past the target (logits loaded SOFTMAX_UNROLL at a time)
        double c = prefix[j];
        int pick = -1, nz = -1;
        for (int i0 = lo; i0 < hi && pick < 0; i0 += SOFTMAX_UNROLL) {
            float zv[SOFTMAX_UNROLL];
            softmax_load(z, i0, hi, zv);
#pragma unroll
            for (int u = 0; u < SOFTMAX_UNROLL; u++) {
                const int i = i0 + u;
                if (i < hi && pick < 0) {
                    const float w = softmax_weight(zv[u], m, temperature);
                    c += (double)w;
                    if (w > 0.0f) nz = i;
                    if (target < c) pick = i;
                }
            }
        }
        found = pick >= 0 ? pick : nz;
    }
    // The last token with a non-zero weight, for a target at or past Z:
    // each thread's chunk from its end, SOFTMAX_UNROLL logits at a time.
    int nz = -1;
    for (int i1 = hi; i1 > lo && nz < 0; i1 -= SOFTMAX_UNROLL) {
        const int i0 = max(lo, i1 - SOFTMAX_UNROLL);
        float zv[SOFTMAX_UNROLL];
        softmax_load(z, i0, i1, zv);
#pragma unroll
        for (int u = SOFTMAX_UNROLL - 1; u >= 0; u--) {
            if (i0 + u < i1 && nz < 0 && softmax_weight(zv[u], m, temperature) > 0.0f) nz = i0 + u;
        }
    }
    if (nz >= 0) atomicMax(&last_nonzero, nz);
    __syncthreads();
    if (j == 0) {
        const int t = found >= 0 ? found : last_nonzero;
        token[r] = (uint32_t)t;
        logprob[r] = ((double)z[t] - (double)m) / (double)temperature - log(total);
        status[r] = 0;
    }
}
