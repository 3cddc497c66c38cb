//! With the `cuda` feature: compiles every `cuda/*.cu` with nvcc into a
//! fatbin (SASS for sm_80 and sm_90, plus compute_90 PTX for later GPUs) in
//! OUT_DIR, with the flags `scripts/check-kernels.sh` uses (warnings are
//! errors, no FMA contraction). With only `emulated`: a placeholder image
//! per file (`grail-emulated:<name>`), which only the CPU emulation of
//! kernels/check accepts. Without either: nothing, so the workspace builds
//! with no CUDA toolkit.
//!
//! nvcc is looked up in `NVCC`, then `CUDA_HOME`/`CUDA_PATH` `/bin/nvcc`,
//! then `.nvcc/` at the repository root (`scripts/install-nvcc.sh`), then
//! `PATH`. No nvcc is a build error that says how to get one.
use std::path::{Path, PathBuf};
use std::process::Command;

/// The kernel files, one op each (kernels/cuda/<name>.cu).
const KERNELS: &[&str] = &[
    "attention",
    "embedding",
    "gemm",
    "kv_fork",
    "logsoftmax",
    "rms_norm",
    "rope",
    "sampler",
    "silu_mul",
    "sketch",
];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    if std::env::var_os("CARGO_FEATURE_CUDA").is_none() {
        if std::env::var_os("CARGO_FEATURE_EMULATED").is_some() {
            for name in KERNELS {
                let image = format!("grail-emulated:{name}\0");
                std::fs::write(out.join(format!("{name}.fatbin")), image)
                    .expect("writing a placeholder kernel image to OUT_DIR");
            }
        } else if std::env::var_os("CARGO_FEATURE_HOST").is_some() {
            panic!("grail-kernels: the `host` feature needs `cuda` (nvcc-compiled kernels) or `emulated`");
        }
        return;
    }
    for var in ["NVCC", "CUDA_HOME", "CUDA_PATH", "PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let src = manifest.join("cuda");
    println!(
        "cargo:rerun-if-changed={}",
        src.join("common.cuh").display()
    );
    let nvcc = find_nvcc(&manifest).unwrap_or_else(|| {
        panic!(
            "the `cuda` feature compiles kernels/cuda/*.cu with nvcc, and none was found: \
             set NVCC or CUDA_HOME, put nvcc on PATH, or run scripts/install-nvcc.sh \
             (nvcc 13.0 from PyPI into .nvcc/)"
        )
    });
    for name in KERNELS {
        let cu = src.join(format!("{name}.cu"));
        println!("cargo:rerun-if-changed={}", cu.display());
        let fatbin = out.join(format!("{name}.fatbin"));
        let status = Command::new(&nvcc)
            .args(["-std=c++17", "--fmad=false", "-Werror", "all-warnings"])
            .args(["-Xptxas", "-warn-spills,-Werror"])
            .args(["-gencode", "arch=compute_80,code=sm_80"])
            .args(["-gencode", "arch=compute_90,code=sm_90"])
            .args(["-gencode", "arch=compute_90,code=compute_90"])
            .arg("-fatbin")
            .arg("-o")
            .arg(&fatbin)
            .arg(&cu)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", nvcc.display()));
        assert!(
            status.success(),
            "{} failed on {} ({status})",
            nvcc.display(),
            cu.display()
        );
    }
}

fn find_nvcc(manifest: &Path) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NVCC") {
        return Some(PathBuf::from(p));
    }
    for var in ["CUDA_HOME", "CUDA_PATH"] {
        if let Some(home) = std::env::var_os(var) {
            let p = Path::new(&home).join("bin/nvcc");
            if p.is_file() {
                return Some(p);
            }
        }
    }
    let local = manifest.join("../.nvcc/nvidia/cu13/bin/nvcc");
    if local.is_file() {
        return Some(local);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("nvcc"))
        .find(|p| p.is_file())
}
