// cuda_emu.h: just enough of CUDA C++ for kernels/cuda/*.cu to compile as
// ordinary C++20 and run on a CPU, so their logic (indexing, barriers,
// shuffles, shared memory, atomics) runs in CI, where there is no GPU.
// Force-included (g++ -include) by kernels/check/build.rs before every .cu
// file; nvcc never sees it.
//
// Execution model: the blocks of a launch run one after another on the
// calling OS thread, in a scrambled order (a fixed pseudo-random
// permutation per launch: a GPU promises no order, so a kernel whose blocks
// cooperate must not lean on one); the threads of a block are fibers scheduled round
// robin, each running until it reaches a barrier or returns. A switch
// between fibers saves the callee-saved registers, MXCSR and the x87
// control word and swaps stack pointers (emu_switch below, x86-64; a few
// nanoseconds, where ucontext's swapcontext makes a system call per switch).
// __syncthreads releases when every live thread of the block waits there,
// a warp collective when every lane of the warp does. Threads that wait at
// different barriers with nobody left to run is a deadlock, reported (on the
// device: a hang or undefined behaviour). `__shared__` variables are
// function-local statics (one block at a time uses them, and launches are
// serialized process-wide); dynamic shared memory is filled with 0xff bytes
// (NaN floats) before every block, so reading an unwritten element shows.
//
// Arithmetic: nvcc --fmad=false corresponds to -ffp-contract=off here;
// __f*_rn are single IEEE operations, __fmaf_rn is fmaf. expf and log are
// the C library's, which differ from CUDA's in the last bits: kernels that
// use them promise tolerances, not bits.
//
// Misuse the hardware would not forgive aborts with a message: a warp
// collective with a partial mask or with lanes that have exited, more than
// 1024 threads, a grid beyond the device's dimensions, more than 48 KiB of
// dynamic shared memory (the default limit, which grail never raises), an
// unaligned vector access, a fiber stack overflow (guard page).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <math.h>
#include <mutex>
#include <sys/mman.h>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define __align__(n) __attribute__((aligned(n)))

// `GRAIL_DYNAMIC_SMEM(T, name)` (common.cuh) declares the dynamic shared
// memory; on the device it is `extern __shared__ T name[]`.
#define GRAIL_DYNAMIC_SMEM(T, name) T* name = reinterpret_cast<T*>(emu::dynamic_smem())

struct dim3 {
    unsigned int x = 1, y = 1, z = 1;
};
struct __attribute__((aligned(16))) uint4 {
    unsigned int x, y, z, w;
};
struct __attribute__((aligned(16))) float4 {
    float x, y, z, w;
};
struct __attribute__((aligned(8))) uint2 {
    unsigned int x, y;
};
struct __attribute__((aligned(8))) float2 {
    float x, y;
};

namespace emu {

[[noreturn]] inline void fail(const char* fmt, ...) {
    std::va_list ap;
    va_start(ap, fmt);
    std::fputs("cuda_emu: ", stderr);
    std::vfprintf(stderr, fmt, ap);
    std::fputc('\n', stderr);
    va_end(ap);
    std::abort();
}

enum class State : uint8_t { Ready, AtBlock, AtWarp, Done };

#if !defined(__x86_64__)
#error "the CUDA emulation's fiber switch is written for x86-64"
#endif

// emu_switch(from, to): saves this fiber's callee-saved state on its stack,
// stores its stack pointer in *from and resumes the fiber whose stack
// pointer is `to` (System V x86-64 ABI: rbx, rbp, r12-r15, MXCSR and the x87
// control word are callee-saved).
extern "C" void emu_switch(void** from, void* to);  // defined in driver.cpp

// Bytes of stack per emulated thread, below a guard page.
constexpr size_t STACK_BYTES = 256 * 1024;
constexpr size_t GUARD_BYTES = 4096;
constexpr unsigned MAX_THREADS = 1024;
// the default per-block limit: grail never raises it (cuFuncSetAttribute)
constexpr size_t MAX_DYNAMIC_SMEM = 48 * 1024;

struct Fiber {
    void* sp = nullptr;  // saved stack pointer while switched out
    State state = State::Done;
    unsigned char* stack = nullptr;  // STACK_BYTES above a guard page
};

// The state of the block being run (one at a time, process-wide).
struct Machine {
    void* scheduler = nullptr;  // the scheduler's stack pointer while a fiber runs
    Fiber fibers[MAX_THREADS];
    unsigned threads = 0;
    unsigned live = 0, at_block = 0;
    unsigned warp_lanes[MAX_THREADS / 32], warp_live[MAX_THREADS / 32],
        at_warp[MAX_THREADS / 32], phase[MAX_THREADS / 32];
    // warp collectives: each lane's value, double buffered by phase
    uint64_t slot[MAX_THREADS / 32][2][32];
    dim3 thread, block, block_dim, grid_dim;
    std::vector<unsigned char> smem;
    const std::function<void()>* body = nullptr;
    uint64_t launches = 0;  // seeds each launch's block order
};

inline Machine& machine() {
    static Machine* m = new Machine();
    return *m;
}

inline std::mutex& launch_lock() {
    static std::mutex l;
    return l;
}

inline void* dynamic_smem() { return machine().smem.data(); }

inline void yield_to_scheduler() {
    Machine& m = machine();
    emu_switch(&m.fibers[m.thread.x].sp, m.scheduler);
}

// Where a fresh fiber starts (emu_switch "returns" into it); it ends by
// switching to the scheduler for good.
[[noreturn]] inline void fiber_main() {
    Machine& m = machine();
    (*m.body)();
    const unsigned t = m.thread.x;
    m.fibers[t].state = State::Done;
    m.live--;
    m.warp_live[t / 32]--;
    emu_switch(&m.fibers[t].sp, m.scheduler);
    fail("a finished fiber was resumed");
}

// The stack pointer of a fiber about to start: the frame emu_switch pops
// (MXCSR and x87 control word, six registers) under fiber_main's address,
// under a null return address for fiber_main itself (ABI alignment: the
// stack pointer is 8 mod 16 at a function's entry).
inline void* fresh_stack(unsigned char* stack) {
    auto* top = reinterpret_cast<uint64_t*>(stack + STACK_BYTES);  // 16-byte aligned
    top[-1] = 0;
    top[-2] = reinterpret_cast<uint64_t>(&fiber_main);
    for (int r = 3; r <= 8; r++) top[-r] = 0;  // rbp rbx r12 r13 r14 r15
    const uint32_t control[2] = {0x1f80u, 0x037fu};  // MXCSR, x87 control word defaults
    std::memcpy(&top[-9], control, 8);
    return &top[-9];
}

inline void run_block(dim3 block_idx) {
    Machine& m = machine();
    m.block = block_idx;
    std::memset(m.smem.data(), 0xff, m.smem.size());
    m.live = m.threads;
    m.at_block = 0;
    for (unsigned w = 0; w < (m.threads + 31) / 32; w++) {
        m.warp_lanes[w] = std::min(32u, m.threads - w * 32);
        m.warp_live[w] = m.warp_lanes[w];
        m.at_warp[w] = 0;
        m.phase[w] = 0;
    }
    for (unsigned t = 0; t < m.threads; t++) {
        Fiber& f = m.fibers[t];
        if (f.stack == nullptr) {
            void* p = mmap(nullptr, GUARD_BYTES + STACK_BYTES, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) fail("cannot map a fiber stack");
            if (mprotect(p, GUARD_BYTES, PROT_NONE) != 0) fail("cannot protect a guard page");
            f.stack = static_cast<unsigned char*>(p) + GUARD_BYTES;
        }
        f.sp = fresh_stack(f.stack);
        f.state = State::Ready;
    }
    for (;;) {
        bool ran = false;
        for (unsigned t = 0; t < m.threads; t++) {
            if (m.fibers[t].state != State::Ready) continue;
            m.thread = dim3{t, 0, 0};
            emu_switch(&m.scheduler, m.fibers[t].sp);
            ran = true;
        }
        if (m.live == 0) return;
        bool released = false;
        if (m.at_block > 0 && m.at_block == m.live) {
            for (unsigned t = 0; t < m.threads; t++) {
                if (m.fibers[t].state == State::AtBlock) m.fibers[t].state = State::Ready;
            }
            m.at_block = 0;
            released = true;
        }
        for (unsigned w = 0; w < (m.threads + 31) / 32; w++) {
            if (m.at_warp[w] > 0 && m.at_warp[w] == m.warp_live[w]) {
                for (unsigned t = w * 32; t < w * 32 + m.warp_lanes[w]; t++) {
                    if (m.fibers[t].state == State::AtWarp) m.fibers[t].state = State::Ready;
                }
                m.at_warp[w] = 0;
                m.phase[w] ^= 1u;
                released = true;
            }
        }
        if (!ran && !released) {
            fail("deadlock in block (%u, %u, %u): %u live threads, %u at __syncthreads, the "
                 "rest at warp collectives of partly waiting warps",
                 m.block.x, m.block.y, m.block.z, m.live, m.at_block);
        }
    }
}

// Runs `body` as a grid of blocks of `block.x` threads.
inline void run_grid(dim3 grid, dim3 block, size_t smem_bytes, const std::function<void()>& body) {
    std::lock_guard<std::mutex> guard(launch_lock());
    Machine& m = machine();
    if (block.y != 1 || block.z != 1) fail("only one-dimensional blocks are emulated");
    if (block.x == 0 || block.x > MAX_THREADS) fail("block of %u threads", block.x);
    if (grid.x == 0 || grid.y == 0 || grid.z == 0) fail("empty grid");
    if (grid.x > 2147483647u || grid.y > 65535u || grid.z > 65535u) {
        fail("grid (%u, %u, %u) beyond the device's limits (2^31-1, 65535, 65535)", grid.x, grid.y, grid.z);
    }
    if (smem_bytes > MAX_DYNAMIC_SMEM) fail("%zu bytes of dynamic shared memory", smem_bytes);
    m.threads = block.x;
    m.block_dim = block;
    m.grid_dim = grid;
    m.smem.assign(smem_bytes + 16, 0xff);
    m.body = &body;
    // Fisher-Yates over the block indices, driven by splitmix64
    const uint64_t blocks = (uint64_t)grid.x * grid.y * grid.z;
    std::vector<uint64_t> order(blocks);
    for (uint64_t i = 0; i < blocks; i++) order[i] = i;
    uint64_t state = 0x9e3779b97f4a7c15ull * ++m.launches;
    auto next = [&state]() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    };
    for (uint64_t i = blocks; i > 1; i--) std::swap(order[i - 1], order[next() % i]);
    for (const uint64_t i : order) {
        run_block(dim3{(unsigned)(i % grid.x), (unsigned)(i / grid.x % grid.y),
                       (unsigned)(i / grid.x / grid.y)});
    }
    m.body = nullptr;
}

// The calling lane's warp, after checking that the collective is legal.
inline unsigned collective_warp(unsigned mask) {
    Machine& m = machine();
    const unsigned w = m.thread.x / 32;
    if (mask != 0xffffffffu) fail("warp collective with mask %#x (only full warps)", mask);
    if (m.warp_lanes[w] != 32 || m.warp_live[w] != 32) {
        fail("warp collective in warp %u with %u of 32 lanes live", w, m.warp_live[w]);
    }
    return w;
}

// Every lane publishes `v`; returns the buffer holding all 32 values.
inline const uint64_t* exchange(unsigned mask, uint64_t v) {
    Machine& m = machine();
    const unsigned w = collective_warp(mask);
    const unsigned ph = m.phase[w];
    m.slot[w][ph][m.thread.x % 32] = v;
    m.fibers[m.thread.x].state = State::AtWarp;
    m.at_warp[w]++;
    yield_to_scheduler();
    return m.slot[w][ph];
}

template <typename T>
uint64_t to_bits(T v) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>);
    uint64_t b = 0;
    std::memcpy(&b, &v, sizeof(T));
    return b;
}

template <typename T>
T from_bits(uint64_t b) {
    T v;
    std::memcpy(&v, &b, sizeof(T));
    return v;
}

// The launcher the C entry point uses: unpacks cuLaunchKernel-style
// parameters (an array of pointers to each argument) by the kernel's own
// parameter types.
template <typename... P, size_t... I>
void call_unpacked(void (*k)(P...), void** params, std::index_sequence<I...>) {
    k(*static_cast<std::remove_cv_t<P>*>(params[I])...);
}

template <typename... P>
void launch(void (*k)(P...), dim3 grid, dim3 block, size_t smem, void** params) {
    const std::function<void()> body = [&] {
        call_unpacked(k, params, std::index_sequence_for<P...>{});
    };
    run_grid(grid, block, smem, body);
}

}  // namespace emu

#define threadIdx (emu::machine().thread)
#define blockIdx (emu::machine().block)
#define blockDim (emu::machine().block_dim)
#define gridDim (emu::machine().grid_dim)

inline void __syncthreads() {
    emu::Machine& m = emu::machine();
    m.fibers[m.thread.x].state = emu::State::AtBlock;
    m.at_block++;
    emu::yield_to_scheduler();
}

inline void __syncwarp(unsigned mask = 0xffffffffu) { (void)emu::exchange(mask, 0); }

template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    if (width != 32) emu::fail("shuffle width %d", width);
    const uint64_t* all = emu::exchange(mask, emu::to_bits(v));
    return emu::from_bits<T>(all[(emu::machine().thread.x % 32) ^ ((unsigned)lane_mask & 31u)]);
}

template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    if (width != 32) emu::fail("shuffle width %d", width);
    const uint64_t* all = emu::exchange(mask, emu::to_bits(v));
    return emu::from_bits<T>(all[(unsigned)src_lane & 31u]);
}

template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    if (width != 32) emu::fail("shuffle width %d", width);
    const unsigned lane = emu::machine().thread.x % 32;
    const uint64_t* all = emu::exchange(mask, emu::to_bits(v));
    return emu::from_bits<T>(all[lane + delta < 32 ? lane + delta : lane]);
}

inline unsigned __ballot_sync(unsigned mask, int pred) {
    const uint64_t* all = emu::exchange(mask, pred ? 1 : 0);
    unsigned bits = 0;
    for (unsigned l = 0; l < 32; l++) bits |= (unsigned)(all[l] & 1u) << l;
    return bits;
}

// Atomics on shared or global memory (one block runs at a time, on one OS
// thread: plain read-modify-write is atomic here).
template <typename T>
T atomicAdd(T* p, T v) {
    const T old = *p;
    *p = old + v;
    return old;
}
template <typename T>
T atomicMin(T* p, T v) {
    const T old = *p;
    if (v < old) *p = v;
    return old;
}
template <typename T>
T atomicMax(T* p, T v) {
    const T old = *p;
    if (old < v) *p = v;
    return old;
}

// Memory ordering: blocks run one at a time, so every write is visible to
// every later block; a fence orders nothing further, and an L2-only load
// (ld.global.cg) is a plain load.
inline void __threadfence() {}
template <typename T>
T __ldcg(const T* p) {
    return *p;
}

// Single IEEE operations (the translation unit is built with
// -ffp-contract=off, so nothing here is fused behind our back).
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return std::sqrt(a); }
inline float __fmaf_rn(float a, float b, float c) { return std::fmaf(a, b, c); }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __fma_rn(double a, double b, double c) { return std::fma(a, b, c); }

inline unsigned int __float_as_uint(float f) { return emu::from_bits<unsigned int>(emu::to_bits(f)); }
inline float __uint_as_float(unsigned int u) { return emu::from_bits<float>(u); }
inline int __float_as_int(float f) { return (int)__float_as_uint(f); }
inline float __int_as_float(int i) { return __uint_as_float((unsigned int)i); }

using std::isfinite;
using std::isnan;
using std::max;
using std::min;

// Kernels check a pointer before reading it as a 16- or 8-byte vector
// (GRAIL_CHECK_ALIGNED, common.cuh): misaligned vector accesses fault on the
// device.
#define GRAIL_CHECK_ALIGNED(p, bytes)                                                    \
    do {                                                                                 \
        if (reinterpret_cast<uintptr_t>(p) % (bytes) != 0)                               \
            emu::fail("%s:%d: unaligned %d-byte access at %p", __FILE__, __LINE__,       \
                      (int)(bytes), (const void*)(p));                                   \
    } while (0)
