// The emulated CUDA driver: the part of libcuda's API that cudarc calls for
// grail's backend, over host memory, with kernels run by the CPU emulation
// (cuda_emu.h, kernels.cpp). Built as a shared object whose SONAME is
// libcuda.so (kernels/check/build.rs); grail_cuda_check::install() loads it
// before cudarc asks for "libcuda.so", so dlopen hands cudarc this object.
//
// One device ("grail CPU emulator", compute capability 9.0), one context,
// streams that run everything at once (so every stream is always in order
// and synchronizing is free), device pointers that are host addresses.
// Stream capture records kernel launches (their arguments copied, as the
// driver does) and cuBLAS calls into a graph that cuGraphLaunch replays in
// order; a copy or memset on a capturing stream is refused, as it is for
// pageable host memory on a GPU.
// Stricter than a GPU where that is cheap: every copy and memset is checked
// against the allocation it touches, freeing an unknown pointer is an error,
// and a kernel name or attribute it does not know is CUDA_ERROR_NOT_FOUND /
// CUDA_ERROR_NOT_SUPPORTED rather than a guess.
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "cuda_emu.h"
#include "emu.h"

extern "C" {

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef void* CUcontext;
typedef struct EmuStream* CUstream;
typedef void* CUevent;
typedef void* CUmodule;
typedef const emu::Kernel* CUfunction;
typedef struct EmuGraph* CUgraph;
typedef struct EmuGraph* CUgraphExec;
typedef void* CUgraphNode;

enum {
    CUDA_SUCCESS = 0,
    CUDA_ERROR_INVALID_VALUE = 1,
    CUDA_ERROR_OUT_OF_MEMORY = 2,
    CUDA_ERROR_INVALID_DEVICE = 101,
    CUDA_ERROR_INVALID_IMAGE = 200,
    CUDA_ERROR_INVALID_HANDLE = 400,
    CUDA_ERROR_NOT_FOUND = 500,
    CUDA_ERROR_NOT_SUPPORTED = 801,
    CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED = 900,
    CUDA_ERROR_STREAM_CAPTURE_INVALIDATED = 901,
};

}  // extern "C"

// A stream: work runs at once, unless the stream is capturing.
struct EmuStream {
    bool capturing = false;
    std::vector<std::function<void()>> nodes;
};

// A captured graph, and its instantiation (the same object, copied).
struct EmuGraph {
    std::vector<std::function<void()>> nodes;
};

// The fiber switch cuda_emu.h declares (see there).
asm(R"(
    .text
    .globl emu_switch
    .hidden emu_switch
    .type emu_switch, @function
emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    subq $8, %rsp
    stmxcsr (%rsp)
    fnstcw 4(%rsp)
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    ldmxcsr (%rsp)
    fldcw 4(%rsp)
    addq $8, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size emu_switch, .-emu_switch
)");

namespace {

constexpr size_t TOTAL_MEMORY = size_t(16) << 30;
constexpr size_t ALIGN = 256;
int CONTEXT_TAG = 0;
int MODULE_TAG = 0;

// The legacy default stream (a null CUstream).
EmuStream* stream_of(CUstream s) {
    static EmuStream* legacy = new EmuStream();
    return s == nullptr ? legacy : s;
}

// Copies and memsets are refused on a capturing stream.
bool capturing(CUstream s) { return stream_of(s)->capturing; }

struct Memory {
    std::mutex lock;
    std::map<uintptr_t, size_t> blocks;  // start -> bytes
    size_t used = 0;
};

Memory& memory() {
    static Memory* m = new Memory();
    return *m;
}

CUresult alloc(CUdeviceptr* out, size_t bytes) {
    if (out == nullptr) return CUDA_ERROR_INVALID_VALUE;
    Memory& m = memory();
    std::lock_guard<std::mutex> g(m.lock);
    const size_t rounded = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (m.used + rounded > TOTAL_MEMORY) return CUDA_ERROR_OUT_OF_MEMORY;
    void* p = std::aligned_alloc(ALIGN, rounded == 0 ? ALIGN : rounded);
    if (p == nullptr) return CUDA_ERROR_OUT_OF_MEMORY;
    // NaN floats and doubles, 0xffffffff words: a read of memory nothing
    // wrote shows (cuMemAlloc leaves memory unspecified, often zero)
    std::memset(p, 0xff, rounded == 0 ? ALIGN : rounded);
    m.blocks[reinterpret_cast<uintptr_t>(p)] = bytes;
    m.used += rounded;
    *out = reinterpret_cast<uintptr_t>(p);
    return CUDA_SUCCESS;
}

CUresult release(CUdeviceptr p) {
    Memory& m = memory();
    std::lock_guard<std::mutex> g(m.lock);
    auto it = m.blocks.find(p);
    if (it == m.blocks.end()) {
        emu::fail("cuMemFree of %#llx, which is not an allocation", p);
    }
    m.used -= (it->second + ALIGN - 1) / ALIGN * ALIGN;
    m.blocks.erase(it);
    std::free(reinterpret_cast<void*>(p));
    return CUDA_SUCCESS;
}

// `bytes` at device address `p` lie inside one allocation.
void check_range(CUdeviceptr p, size_t bytes, const char* what) {
    Memory& m = memory();
    std::lock_guard<std::mutex> g(m.lock);
    auto it = m.blocks.upper_bound(p);
    if (it == m.blocks.begin()) {
        emu::fail("%s: %zu bytes at %#llx outside every allocation", what, bytes, p);
    }
    --it;
    if (p + bytes > it->first + it->second) {
        emu::fail("%s: %zu bytes at %#llx run past the allocation of %zu bytes at %#llx", what,
                  bytes, p, it->second, (unsigned long long)it->first);
    }
}

struct Event {
    std::chrono::steady_clock::time_point at;
    bool recorded = false;
};

}  // namespace

extern "C" {

CUresult cuInit(unsigned) { return CUDA_SUCCESS; }
CUresult cuDriverGetVersion(int* v) {
    *v = 13000;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetCount(int* n) {
    *n = 1;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice* d, int ordinal) {
    if (ordinal != 0) return CUDA_ERROR_INVALID_DEVICE;
    *d = 0;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetName(char* name, int len, CUdevice) {
    std::snprintf(name, (size_t)len, "grail CPU emulator");
    return CUDA_SUCCESS;
}
CUresult cuDeviceTotalMem_v2(size_t* bytes, CUdevice) {
    *bytes = TOTAL_MEMORY;
    return CUDA_SUCCESS;
}
CUresult cuDeviceGetAttribute(int* v, int attrib, CUdevice) {
    switch (attrib) {
        case 75:  // COMPUTE_CAPABILITY_MAJOR
            *v = 9;
            return CUDA_SUCCESS;
        case 76:  // COMPUTE_CAPABILITY_MINOR
            *v = 0;
            return CUDA_SUCCESS;
        case 115:  // MEMORY_POOLS_SUPPORTED
            *v = 1;
            return CUDA_SUCCESS;
        case 16:  // MULTIPROCESSOR_COUNT
            *v = 1;
            return CUDA_SUCCESS;
        default:
            return CUDA_ERROR_NOT_SUPPORTED;
    }
}
CUresult cuDevicePrimaryCtxRetain(CUcontext* c, CUdevice) {
    *c = &CONTEXT_TAG;
    return CUDA_SUCCESS;
}
CUresult cuDevicePrimaryCtxRelease_v2(CUdevice) { return CUDA_SUCCESS; }
CUresult cuCtxSetCurrent(CUcontext) { return CUDA_SUCCESS; }
CUresult cuCtxGetCurrent(CUcontext* c) {
    *c = &CONTEXT_TAG;
    return CUDA_SUCCESS;
}
CUresult cuCtxSynchronize() { return CUDA_SUCCESS; }

CUresult cuMemGetInfo_v2(size_t* free_bytes, size_t* total) {
    Memory& m = memory();
    std::lock_guard<std::mutex> g(m.lock);
    *free_bytes = TOTAL_MEMORY - m.used;
    *total = TOTAL_MEMORY;
    return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream* s, unsigned) {
    *s = new EmuStream();
    return CUDA_SUCCESS;
}
CUresult cuStreamCreateWithPriority(CUstream* s, unsigned, int) {
    *s = new EmuStream();
    return CUDA_SUCCESS;
}
CUresult cuStreamDestroy_v2(CUstream s) {
    if (s != nullptr) delete s;
    return CUDA_SUCCESS;
}
CUresult cuStreamSynchronize(CUstream) { return CUDA_SUCCESS; }
CUresult cuStreamQuery(CUstream) { return CUDA_SUCCESS; }
CUresult cuStreamWaitEvent(CUstream, CUevent, unsigned) { return CUDA_SUCCESS; }

CUresult cuMemAlloc_v2(CUdeviceptr* p, size_t bytes) { return alloc(p, bytes); }
CUresult cuMemAllocAsync(CUdeviceptr* p, size_t bytes, CUstream) { return alloc(p, bytes); }
CUresult cuMemFree_v2(CUdeviceptr p) { return release(p); }
CUresult cuMemFreeAsync(CUdeviceptr p, CUstream) { return release(p); }

CUresult cuMemsetD8Async(CUdeviceptr p, unsigned char v, size_t n, CUstream s) {
    if (capturing(s)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    check_range(p, n, "cuMemsetD8Async");
    std::memset(reinterpret_cast<void*>(p), v, n);
    return CUDA_SUCCESS;
}
CUresult cuMemsetD8_v2(CUdeviceptr p, unsigned char v, size_t n) {
    return cuMemsetD8Async(p, v, n, nullptr);
}
CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void* src, size_t n, CUstream s) {
    if (capturing(s)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    check_range(dst, n, "cuMemcpyHtoDAsync");
    std::memcpy(reinterpret_cast<void*>(dst), src, n);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t n) {
    return cuMemcpyHtoDAsync_v2(dst, src, n, nullptr);
}
CUresult cuMemcpyDtoHAsync_v2(void* dst, CUdeviceptr src, size_t n, CUstream s) {
    if (capturing(s)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    check_range(src, n, "cuMemcpyDtoHAsync");
    std::memcpy(dst, reinterpret_cast<const void*>(src), n);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t n) {
    return cuMemcpyDtoHAsync_v2(dst, src, n, nullptr);
}
CUresult cuMemcpyDtoDAsync_v2(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s) {
    if (capturing(s)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    check_range(src, n, "cuMemcpyDtoDAsync (source)");
    check_range(dst, n, "cuMemcpyDtoDAsync (destination)");
    std::memmove(reinterpret_cast<void*>(dst), reinterpret_cast<const void*>(src), n);
    return CUDA_SUCCESS;
}
CUresult cuMemcpyDtoD_v2(CUdeviceptr dst, CUdeviceptr src, size_t n) {
    return cuMemcpyDtoDAsync_v2(dst, src, n, nullptr);
}

// Module images: an nvcc fatbin (magic 0xBA55ED50) or the placeholder an
// emulated build embeds ("grail-emulated:<file>"); the kernels are the
// emulation's either way.
CUresult cuModuleLoadData(CUmodule* m, const void* image) {
    uint32_t magic;
    std::memcpy(&magic, image, 4);
    if (magic != 0xBA55ED50u && std::strncmp(static_cast<const char*>(image), "grail-emulated:", 15) != 0) {
        return CUDA_ERROR_INVALID_IMAGE;
    }
    *m = &MODULE_TAG;
    return CUDA_SUCCESS;
}
CUresult cuModuleUnload(CUmodule) { return CUDA_SUCCESS; }
CUresult cuModuleGetFunction(CUfunction* f, CUmodule, const char* name) {
    const emu::Kernel* k = emu::find_kernel(name);
    if (k == nullptr) return CUDA_ERROR_NOT_FOUND;
    *f = k;
    return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx,
                        unsigned by, unsigned bz, unsigned smem, CUstream s, void** params,
                        void** extra) {
    if (f == nullptr) return CUDA_ERROR_INVALID_HANDLE;
    if (extra != nullptr) return CUDA_ERROR_NOT_SUPPORTED;
    EmuStream* st = stream_of(s);
    if (st->capturing) {
        st->nodes.push_back(f->record(dim3{gx, gy, gz}, dim3{bx, by, bz}, smem, params));
    } else {
        f->run(dim3{gx, gy, gz}, dim3{bx, by, bz}, smem, params);
    }
    return CUDA_SUCCESS;
}

// Stream capture and graphs.
CUresult cuStreamBeginCapture_v2(CUstream s, int /*mode*/) {
    EmuStream* st = stream_of(s);
    if (st->capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    st->capturing = true;
    st->nodes.clear();
    return CUDA_SUCCESS;
}
CUresult cuStreamEndCapture(CUstream s, CUgraph* graph) {
    EmuStream* st = stream_of(s);
    if (!st->capturing) return CUDA_ERROR_STREAM_CAPTURE_INVALIDATED;
    st->capturing = false;
    *graph = new EmuGraph{std::move(st->nodes)};
    st->nodes.clear();
    return CUDA_SUCCESS;
}
CUresult cuStreamIsCapturing(CUstream s, int* status) {
    *status = stream_of(s)->capturing ? 1 : 0;  // CU_STREAM_CAPTURE_STATUS_ACTIVE : NONE
    return CUDA_SUCCESS;
}
CUresult cuGraphInstantiateWithFlags(CUgraphExec* exec, CUgraph graph, unsigned long long) {
    *exec = new EmuGraph(*graph);
    return CUDA_SUCCESS;
}
CUresult cuGraphLaunch(CUgraphExec exec, CUstream s) {
    if (capturing(s)) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    for (auto& node : exec->nodes) node();
    return CUDA_SUCCESS;
}
CUresult cuGraphUpload(CUgraphExec, CUstream) { return CUDA_SUCCESS; }
// The node count only (every recorded launch or cuBLAS call is one node);
// the nodes themselves are not emulated.
CUresult cuGraphGetNodes(CUgraph graph, CUgraphNode* nodes, size_t* count) {
    if (nodes != nullptr) return CUDA_ERROR_NOT_SUPPORTED;
    *count = graph->nodes.size();
    return CUDA_SUCCESS;
}
CUresult cuGraphExecDestroy(CUgraphExec exec) {
    delete exec;
    return CUDA_SUCCESS;
}
CUresult cuGraphDestroy(CUgraph graph) {
    delete graph;
    return CUDA_SUCCESS;
}

// For the emulated cuBLAS (cublas.cpp): run `work` on stream `s` now, or
// record it into the graph `s` is capturing. `work` is then owned here.
void grail_emu_submit(CUstream s, void (*run)(void*), void* work, void (*drop)(void*)) {
    EmuStream* st = stream_of(s);
    if (!st->capturing) {
        run(work);
        drop(work);
        return;
    }
    std::shared_ptr<void> owned(work, drop);
    st->nodes.push_back([run, owned] { run(owned.get()); });
}

CUresult cuEventCreate(CUevent* e, unsigned) {
    *e = new Event();
    return CUDA_SUCCESS;
}
CUresult cuEventDestroy_v2(CUevent e) {
    delete static_cast<Event*>(e);
    return CUDA_SUCCESS;
}
CUresult cuEventRecord(CUevent e, CUstream) {
    auto* ev = static_cast<Event*>(e);
    ev->at = std::chrono::steady_clock::now();
    ev->recorded = true;
    return CUDA_SUCCESS;
}
CUresult cuEventSynchronize(CUevent) { return CUDA_SUCCESS; }
CUresult cuEventQuery(CUevent) { return CUDA_SUCCESS; }
CUresult cuEventElapsedTime(float* ms, CUevent start, CUevent end) {
    auto* a = static_cast<Event*>(start);
    auto* b = static_cast<Event*>(end);
    if (!a->recorded || !b->recorded) return CUDA_ERROR_INVALID_HANDLE;
    *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
    return CUDA_SUCCESS;
}
CUresult cuEventElapsedTime_v2(float* ms, CUevent start, CUevent end) {
    return cuEventElapsedTime(ms, start, end);
}

CUresult cuGetErrorString(CUresult r, const char** s) {
    switch (r) {
        case CUDA_SUCCESS: *s = "no error"; break;
        case CUDA_ERROR_INVALID_VALUE: *s = "invalid argument"; break;
        case CUDA_ERROR_OUT_OF_MEMORY: *s = "out of memory"; break;
        case CUDA_ERROR_INVALID_DEVICE: *s = "invalid device ordinal"; break;
        case CUDA_ERROR_INVALID_IMAGE: *s = "device kernel image is invalid"; break;
        case CUDA_ERROR_INVALID_HANDLE: *s = "invalid resource handle"; break;
        case CUDA_ERROR_NOT_FOUND: *s = "named symbol not found"; break;
        case CUDA_ERROR_NOT_SUPPORTED: *s = "operation not supported (by the emulator)"; break;
        default: *s = "unknown error"; break;
    }
    return CUDA_SUCCESS;
}
CUresult cuGetErrorName(CUresult r, const char** s) { return cuGetErrorString(r, s); }

// Marks this object as the emulator (grail_cuda_check checks it after
// loading, so a real driver is never mistaken for it).
const char* grail_emu_identity() { return "grail CPU emulator of the CUDA driver"; }

}  // extern "C"
