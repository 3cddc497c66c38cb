// Every kernel of kernels/cuda/, compiled for the CPU emulation
// (cuda_emu.h), and the table the emulated driver looks them up in by name.
#include "../../cuda/attention.cu"
#include "../../cuda/embedding.cu"
#include "../../cuda/gemm.cu"
#include "../../cuda/kv_fork.cu"
#include "../../cuda/logsoftmax.cu"
#include "../../cuda/rms_norm.cu"
#include "../../cuda/rope.cu"
#include "../../cuda/sampler.cu"
#include "../../cuda/silu_mul.cu"
#include "../../cuda/sketch.cu"

#include "emu.h"

#include <tuple>

namespace {

template <typename... P>
constexpr size_t kernel_arity(void (*)(P...)) {
    return sizeof...(P);
}

template <auto K>
void launcher(dim3 grid, dim3 block, size_t smem, void** params) {
    emu::launch(K, grid, block, smem, params);
}

template <typename... P, size_t... I>
std::function<void()> bind_launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, void** params,
                           std::index_sequence<I...>) {
    std::tuple<std::remove_cv_t<P>...> args{*static_cast<std::remove_cv_t<P>*>(params[I])...};
    return [=]() mutable {
        void* ps[] = {&std::get<I>(args)...};
        emu::launch(k, grid, block, smem, ps);
    };
}

template <auto K>
std::function<void()> recorder(dim3 grid, dim3 block, size_t smem, void** params) {
    return bind_launch(K, grid, block, smem, params, std::make_index_sequence<kernel_arity(K)>{});
}

#define KERNEL(name) {#name, &launcher<name>, &recorder<name>}
// attention.cu's kernels for group size G (its ATTENTION_KERNELS)
#define ATTENTION(G) KERNEL(attention_f32_g##G), KERNEL(attention_bf16_g##G)
// gemm.cu's kernels for MT row tiles (its GEMM_KERNELS)
#define GEMM(MT) KERNEL(gemm_bf16_m##MT), KERNEL(gemm_swiglu_bf16_m##MT), KERNEL(gemm_rope_bf16_m##MT)
const emu::Kernel KERNELS[] = {
    ATTENTION(1), ATTENTION(2), ATTENTION(3), ATTENTION(4),
    ATTENTION(5), ATTENTION(6), ATTENTION(7), ATTENTION(8),
    KERNEL(embedding_f32),         KERNEL(embedding_bf16),
    GEMM(1), GEMM(2), GEMM(3), GEMM(4),
    KERNEL(logprob_f32),           KERNEL(rms_norm_residual_f32), KERNEL(rms_norm_residual_bf16),
    KERNEL(rope_kv_write_f32),     KERNEL(rope_kv_write_bf16),   KERNEL(sample_f32),
    KERNEL(silu_mul_f32),          KERNEL(silu_mul_bf16),        KERNEL(sketch_f32),
    KERNEL(kv_fork_u128),
};
#undef ATTENTION
#undef GEMM
#undef KERNEL

}  // namespace

const emu::Kernel* emu::find_kernel(const char* name) {
    for (const auto& k : KERNELS) {
        if (std::strcmp(k.name, name) == 0) return &k;
    }
    return nullptr;
}
