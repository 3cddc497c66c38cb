//! Where the CUDA backend's tests run: GPU 0 when built with the `cuda`
//! feature (nvcc-compiled kernels), otherwise a CPU emulation of the CUDA
//! driver, cuBLAS and every kernel of `kernels/cuda/` (`emu/`), so CI runs
//! the backend's host code and kernels on every commit without a GPU.
//!
//! The emulation is two shared objects built by `build.rs` with the
//! SONAMEs cudarc opens, `libcuda.so` and `libcublas.so`. [`device`] loads
//! them by path before cudarc's first `dlopen("libcuda.so")`, which the
//! dynamic loader then answers with the already-loaded object of that
//! SONAME: the process never touches a real driver. The choice follows the
//! build, never the machine: an emulated build on a GPU machine still
//! emulates, a `cuda` build without a GPU fails.
//!
//! What the emulation checks beyond a GPU: device copies and memsets stay
//! inside their allocations, vector accesses are aligned, warp collectives
//! have all 32 lanes, barriers cannot deadlock silently. What it cannot
//! show: speed, races between blocks (blocks run one after another), and
//! the last bits of `expf` / `log`, which are the C library's here.
pub mod bench;

use std::ffi::CString;
use std::sync::{Arc, OnceLock};

use grail_engine::kernels::WDtype;
use grail_engine::synthetic;
use grail_kernels::cuda::{Gpu, EMULATOR_NAME, REAL_KERNELS};

/// Writes a random bf16 Qwen2-shape checkpoint small enough for the
/// emulation into `dir` (hidden 128, 2 query heads of 64 over 1 KV head,
/// q/k/v biases, 2 layers, 512 tokens, its special tokens moved inside that
/// vocabulary): a shape where gemm.cu fuses both rope and the gate/up
/// activation into the products.
pub fn write_tiny_qwen_bf16(dir: &std::path::Path) -> std::io::Result<synthetic::Shape> {
    let shape = synthetic::Shape {
        name: "qwen2-bf16-hd64",
        hidden: 128,
        intermediate: 256,
        layers: 2,
        heads: 2,
        kv_heads: 1,
        vocab: 512,
        tied: true,
    };
    synthetic::write_checkpoint(dir, &shape, WDtype::BF16, 5)?;
    let config = dir.join("config.json");
    let mut c: serde_json::Value = serde_json::from_slice(&std::fs::read(&config)?)?;
    c["bos_token_id"] = 1.into();
    c["eos_token_id"] = 2.into();
    std::fs::write(&config, serde_json::to_vec_pretty(&c)?)?;
    Ok(shape)
}

/// Where the tests run, for their output.
pub fn describe() -> String {
    if REAL_KERNELS {
        "a CUDA GPU (feature cuda)".into()
    } else {
        format!("the {EMULATOR_NAME} (kernels/check/emu)")
    }
}

/// Loads the emulated driver and cuBLAS (once per process).
pub fn install_emulator() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        for path in [env!("GRAIL_EMU_LIBCUDA"), env!("GRAIL_EMU_LIBCUBLAS")] {
            let c = CString::new(path).map_err(|e| format!("{path}: {e}"))?;
            // SAFETY: a path to a shared object this crate's build script
            // compiled; its initializers only build static tables.
            let handle = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
            if handle.is_null() {
                // SAFETY: dlerror returns a C string or null.
                let err = unsafe { libc::dlerror() };
                let msg = if err.is_null() {
                    "unknown error".into()
                } else {
                    // SAFETY: non-null, NUL-terminated, valid until the next dl call.
                    unsafe { std::ffi::CStr::from_ptr(err) }
                        .to_string_lossy()
                        .into_owned()
                };
                return Err(format!("loading the emulator {path}: {msg}"));
            }
        }
        Ok(())
    })
    .clone()
}

/// The device the tests use: the emulator in a default build, GPU 0 with
/// the `cuda` feature.
pub fn device() -> Arc<Gpu> {
    if !REAL_KERNELS {
        install_emulator().unwrap_or_else(|e| panic!("{e}"));
    }
    let gpu = Gpu::new(0).unwrap_or_else(|e| panic!("opening {}: {e}", describe()));
    assert_eq!(
        gpu.describe().starts_with(EMULATOR_NAME),
        !REAL_KERNELS,
        "{} is not {}",
        gpu.describe(),
        describe()
    );
    gpu
}
