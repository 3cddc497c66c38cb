// Every kernel of kernels/cuda/, compiled for the CPU emulation
// (cuda_emu.h), and the table the emulated driver looks them up in by name.
#include "../../cuda/attention.cu"
#include "../../cuda/embedding.cu"
#include "../../cuda/kv_fork.cu"
#include "../../cuda/logsoftmax.cu"
#include "../../cuda/rms_norm.cu"
#include "../../cuda/rope.cu"
#include "../../cuda/sampler.cu"
#include "../../cuda/silu_mul.cu"
#include "../../cuda/sketch.cu"

#include "emu.h"

namespace {

template <auto K>
void launcher(dim3 grid, dim3 block, size_t smem, void** params) {
    emu::launch(K, grid, block, smem, params);
}

#define KERNEL(name) {#name, &launcher<name>}
const emu::Kernel KERNELS[] = {
    KERNEL(attention_split_f32),   KERNEL(attention_split_bf16), KERNEL(attention_combine_f32),
    KERNEL(attention_combine_bf16), KERNEL(embedding_f32),        KERNEL(embedding_bf16),
    KERNEL(logprob_f32),           KERNEL(rms_norm_residual_f32), KERNEL(rms_norm_residual_bf16),
    KERNEL(rope_kv_write_f32),     KERNEL(rope_kv_write_bf16),   KERNEL(sample_f32),
    KERNEL(silu_mul_f32),          KERNEL(silu_mul_bf16),        KERNEL(sketch_f32),
    KERNEL(kv_fork_u128),
};
#undef KERNEL

}  // namespace

const emu::Kernel* emu::find_kernel(const char* name) {
    for (const auto& k : KERNELS) {
        if (std::strcmp(k.name, name) == 0) return &k;
    }
    return nullptr;
}
