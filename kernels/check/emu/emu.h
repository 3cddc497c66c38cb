// What the emulated driver (driver.cpp) needs from the kernel table
// (kernels.cpp).
#pragma once
#include <cstddef>
#include <functional>

struct dim3;

namespace emu {
struct Kernel {
    const char* name;
    // runs the launch now
    void (*run)(dim3 grid, dim3 block, size_t smem, void** params);
    // the launch with its arguments copied, to run later (graph capture)
    std::function<void()> (*record)(dim3 grid, dim3 block, size_t smem, void** params);
};
// The kernel called `name`, or null.
const Kernel* find_kernel(const char* name);
}  // namespace emu
