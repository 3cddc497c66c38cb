//! Builds the CPU emulation of the CUDA driver and cuBLAS (emu/*.cpp, with
//! every kernels/cuda/*.cu compiled as C++ through emu/cuda_emu.h) into two
//! shared objects in OUT_DIR whose SONAMEs are the libraries cudarc loads,
//! libcuda.so and libcublas.so. The C++ compiler is $CXX, else `c++`.
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let emu = manifest.join("emu");
    let cuda = manifest.join("../cuda");
    for dir in [&emu, &cuda] {
        println!("cargo:rerun-if-changed={}", dir.display());
        for entry in std::fs::read_dir(dir).expect("reading the emulation sources") {
            println!(
                "cargo:rerun-if-changed={}",
                entry.expect("directory entry").path().display()
            );
        }
    }
    println!("cargo:rerun-if-env-changed=CXX");
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let libcuda = out.join("libcuda.so");
    compile(
        &cxx,
        &emu,
        &["driver.cpp", "kernels.cpp"],
        "libcuda.so",
        &libcuda,
    );
    let libcublas = out.join("libcublas.so");
    compile(&cxx, &emu, &["cublas.cpp"], "libcublas.so", &libcublas);
    println!("cargo:rustc-env=GRAIL_EMU_LIBCUDA={}", libcuda.display());
    println!(
        "cargo:rustc-env=GRAIL_EMU_LIBCUBLAS={}",
        libcublas.display()
    );
}

fn compile(cxx: &str, dir: &Path, sources: &[&str], soname: &str, out: &Path) {
    let status = Command::new(cxx)
        .current_dir(dir)
        .args(["-std=c++20", "-O2", "-g", "-fPIC", "-shared", "-pthread"])
        // the device code is compiled with --fmad=false: no contraction here either
        .arg("-ffp-contract=off")
        .args(["-Wall", "-Wextra", "-Wno-unknown-pragmas", "-Werror"])
        .args(["-I", ".", "-include", "cuda_emu.h"])
        .arg(format!("-Wl,-soname,{soname}"))
        .arg("-o")
        .arg(out)
        .args(sources)
        .status()
        .unwrap_or_else(|e| panic!("cannot run the C++ compiler {cxx:?}: {e} (set CXX)"));
    assert!(
        status.success(),
        "{cxx} failed building {soname} ({status})"
    );
}
