//! `cuda-bench`'s measurement on stories260K at a small size: it runs the
//! miner's generation path, validates against the CPU engine, and takes a
//! decode step apart, with every kind of forward launch in the breakdown
//! and the markdown report. What it measures is only meaningful on a GPU
//! (scripts/gpu-check.sh runs the 1.5B-shape benchmark there).
use grail_cuda_check::bench::{self, BenchConfig};
use grail_engine::Model;
use grail_kernels::cuda::{CudaModel, ForwardOp};

/// Held by each benchmark test: on the CPU emulation, launches from
/// concurrent tests queue behind one another (one emulated device), and two
/// benchmarks at once would time each other's launches.
static ONE_BENCH_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The benchmark of the checkpoint in `dir` at `batches`, at a size the
/// emulation runs in seconds: 12 tokens of context, 3 decoded, one run.
fn small_bench(dir: &std::path::Path, batches: &[usize]) -> (CudaModel, bench::BenchReport) {
    let mut model = CudaModel::new(grail_cuda_check::device(), Model::load(dir).unwrap()).unwrap();
    let cfg = BenchConfig {
        batches: batches.to_vec(),
        context: 12,
        new_tokens: 3,
        reps: 1,
        copy_bytes: 1 << 20,
    };
    let report = bench::run(&mut model, &cfg, None).unwrap();
    (model, report)
}

#[test]
fn bench_measures_and_takes_a_decode_step_apart() {
    let _one = ONE_BENCH_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/stories260K");
    let (model, report) = small_bench(&dir, &[1, 16]);
    assert!(report.validation_logits_relative_error <= 1e-4);
    let layers = model.config().num_layers;
    for b in &report.batches {
        let k = &b.breakdown;
        assert!(b.decode_tokens_per_sec > 0.0 && b.roofline_tokens_per_sec > 0.0);
        assert!(
            k.step_us > 0.0 && k.forward_graph_us > 0.0 && k.sample_us > 0.0 && k.sketch_us > 0.0
        );
        // the emulated cuBLAS records one node per product, like a kernel
        let launches: usize = ForwardOp::ALL.iter().map(|op| op.per_pass(layers)).sum();
        assert_eq!(k.forward_graph_nodes, launches);
        let ops: Vec<(&str, usize)> = k.ops.iter().map(|o| (o.op.as_str(), o.launches)).collect();
        let want: Vec<(String, usize)> = ForwardOp::ALL
            .iter()
            .map(|op| (format!("{op:?}"), op.per_pass(layers)))
            .collect();
        assert_eq!(
            ops,
            want.iter()
                .map(|(o, n)| (o.as_str(), *n))
                .collect::<Vec<_>>()
        );
        for o in &k.ops {
            assert!(o.us_per_step > 0.0, "{o:?}");
            let read = matches!(
                o.op.as_str(),
                "Qkv" | "OProj" | "GateUp" | "Down" | "LmHead" | "Attention"
            );
            assert_eq!(o.gb_per_sec.is_some(), read, "{o:?}");
        }
    }
    let md = bench::markdown(&report, "stories260K", None);
    for line in [
        "| decode step, end to end |",
        "| - Attention x5 |",
        "| - LmHead x1 |",
        "| host: transfers",
    ] {
        assert!(md.contains(line), "no {line:?} in\n{md}");
    }
    println!("{md}");
}

/// On a bf16 checkpoint the benchmark also measures gemm.cu's products:
/// validated, decode, the forward graph and every GEMM kind of launch (the
/// gate/up projection fused with its activation, the q/k/v projection with
/// rope: two launches per layer fewer), at the batch sizes gemm.cu serves
/// (up to 64 rows), and says so in both tables; at larger batches those
/// cells are empty.
#[test]
fn bench_measures_gemm_cu_beside_cublas_on_bf16() {
    let _one = ONE_BENCH_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let shape = grail_cuda_check::write_tiny_qwen_bf16(dir.path()).unwrap();
    let (model, report) = small_bench(dir.path(), &[16, 80]);
    let v = report.grail_gemm_validation_relative_error.unwrap();
    assert!(v <= bench::validation_tolerance(model.dt()), "{v}");
    assert_eq!(model.gemm(), grail_kernels::cuda::Gemm::Cublas, "restored");
    for b in &report.batches {
        let k = &b.breakdown;
        if b.batch <= 64 {
            assert!(b.grail_gemm_decode_tokens_per_sec.unwrap() > 0.0);
            assert!(k.grail_gemm_forward_graph_us.unwrap() > 0.0);
            let ops: Vec<&str> = k.grail_gemm_ops.iter().map(|o| o.op.as_str()).collect();
            assert_eq!(ops, bench::GEMM_OPS);
            assert!(k
                .grail_gemm_ops
                .iter()
                .all(|o| o.us_per_step > 0.0 && o.gb_per_sec.is_some()));
            assert!(k.grail_gemm_fused_swiglu && k.grail_gemm_fused_rope);
            // two launches per layer fewer: SiluMul's and RopeKv's
            assert_eq!(
                k.grail_gemm_forward_graph_nodes.unwrap() + 2 * shape.layers,
                k.forward_graph_nodes
            );
        } else {
            assert!(b.grail_gemm_decode_tokens_per_sec.is_none());
            assert!(k.grail_gemm_forward_graph_us.is_none() && k.grail_gemm_ops.is_empty());
        }
    }
    let md = bench::markdown(&report, shape.name, None);
    for line in [
        "with gemm.cu's products",
        "| decode with gemm.cu |",
        "- batch 16, gemm.cu:",
        "| forward pass with gemm.cu (one graph replay) |",
        "| - GateUp+SiluMul x2, gemm.cu |",
        "| - Qkv+RopeKv x2, gemm.cu |",
    ] {
        assert!(md.contains(line), "no {line:?} in\n{md}");
    }
    println!("{md}");
}
