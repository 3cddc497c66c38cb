// The emulated cuBLAS: the calls grail's backend makes (handle, stream, math
// mode, cublasGemmEx), over host memory, for the CPU emulation of the CUDA
// backend. Built as a shared object whose SONAME is libcublas.so
// (kernels/check/build.rs).
//
// cublasGemmEx: column-major C (m x n) = alpha op(A) op(B) + beta C with A and
// B in f32 or bf16 (widened exactly), C in f32, every product accumulated in
// f32 with fused multiply-adds in increasing k, the order a pedantic f32 GEMM
// may use. Anything else (other types, compute types, device pointer mode)
// is CUBLAS_STATUS_NOT_SUPPORTED, never a guess. The product runs through
// the emulated driver's stream (grail_emu_submit, driver.cpp), so a
// capturing stream records it into its graph, as it would cuBLAS's kernels.
#include <cstdint>
#include <cstring>
#include <cmath>

extern "C" {

typedef int cublasStatus_t;
enum {
    CUBLAS_STATUS_SUCCESS = 0,
    CUBLAS_STATUS_NOT_INITIALIZED = 1,
    CUBLAS_STATUS_INVALID_VALUE = 7,
    CUBLAS_STATUS_NOT_SUPPORTED = 15,
};
enum { CUBLAS_OP_N = 0, CUBLAS_OP_T = 1 };
enum { CUDA_R_32F = 0, CUDA_R_16BF = 14 };
enum { CUBLAS_COMPUTE_32F = 68, CUBLAS_COMPUTE_32F_PEDANTIC = 69 };

struct Handle {
    void* stream = nullptr;
    int math_mode = 0;
};
typedef Handle* cublasHandle_t;

cublasStatus_t cublasCreate_v2(cublasHandle_t* h) {
    *h = new Handle();
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, void* stream) {
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void*, size_t) {
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetMathMode(cublasHandle_t h, int mode) {
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    h->math_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}
const char* cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
        case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
        case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
        case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
        case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED (by the emulator)";
        default: return "unknown cuBLAS status";
    }
}
const char* cublasGetStatusName(cublasStatus_t s) { return cublasGetStatusString(s); }

// In the emulated driver (loaded first, with RTLD_GLOBAL).
void grail_emu_submit(void* stream, void (*run)(void*), void* work, void (*drop)(void*));

}  // extern "C"

namespace {

float load(const void* p, int type, int64_t i) {
    if (type == CUDA_R_32F) return static_cast<const float*>(p)[i];
    uint16_t b;
    std::memcpy(&b, static_cast<const char*>(p) + 2 * i, 2);
    const uint32_t u = (uint32_t)b << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// One cublasGemmEx call, its scalars copied (host pointer mode).
struct Gemm {
    int transa, transb, m, n, k;
    float alpha;
    const void* A;
    int atype, lda;
    const void* B;
    int btype, ldb;
    float beta;
    float* C;
    int ldc;

    void run() const {
        for (int64_t j = 0; j < n; j++) {
            for (int64_t i = 0; i < m; i++) {
                float acc = 0.0f;
                for (int64_t p = 0; p < k; p++) {
                    const float a = load(A, atype, transa == CUBLAS_OP_N ? i + p * lda : p + i * lda);
                    const float b = load(B, btype, transb == CUBLAS_OP_N ? p + j * ldb : j + p * ldb);
                    acc = std::fmaf(a, b, acc);
                }
                float& out = C[i + j * (int64_t)ldc];
                out = beta == 0.0f ? alpha * acc : std::fmaf(beta, out, alpha * acc);
            }
        }
    }
};

}  // namespace

extern "C" cublasStatus_t cublasGemmEx(cublasHandle_t h, int transa, int transb, int m, int n,
                                       int k, const void* alpha, const void* A, int atype,
                                       int lda, const void* B, int btype, int ldb,
                                       const void* beta, void* C, int ctype, int ldc,
                                       int compute, int /*algo*/) {
    if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    const bool ok_types = (atype == CUDA_R_32F || atype == CUDA_R_16BF) && btype == atype &&
                          ctype == CUDA_R_32F &&
                          (compute == CUBLAS_COMPUTE_32F || compute == CUBLAS_COMPUTE_32F_PEDANTIC);
    if (!ok_types) return CUBLAS_STATUS_NOT_SUPPORTED;
    if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T) ||
        (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T)) {
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    const int64_t a_rows = transa == CUBLAS_OP_N ? m : k;
    const int64_t b_rows = transb == CUBLAS_OP_N ? k : n;
    if (lda < (a_rows > 1 ? a_rows : 1) || ldb < (b_rows > 1 ? b_rows : 1) ||
        ldc < (m > 1 ? m : 1)) {
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    auto* g = new Gemm{transa, transb, m, n, k, *static_cast<const float*>(alpha), A, atype, lda,
                       B, btype, ldb, *static_cast<const float*>(beta), static_cast<float*>(C), ldc};
    grail_emu_submit(
        h->stream, [](void* w) { static_cast<Gemm*>(w)->run(); }, g,
        [](void* w) { delete static_cast<Gemm*>(w); });
    return CUBLAS_STATUS_SUCCESS;
}
