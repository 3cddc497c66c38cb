//! `cuda-bench`'s measurement on stories260K at a small size: it runs the
//! miner's generation path, validates against the CPU engine, and takes a
//! decode step apart, with every kind of forward launch in the breakdown
//! and the markdown report. What it measures is only meaningful on a GPU
//! (scripts/gpu-check.sh runs the 1.5B-shape benchmark there).
use grail_cuda_check::bench::{self, BenchConfig};
use grail_engine::Model;
use grail_kernels::cuda::{CudaModel, ForwardOp};

#[test]
fn bench_measures_and_takes_a_decode_step_apart() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/stories260K");
    let mut model = CudaModel::new(grail_cuda_check::device(), Model::load(&dir).unwrap()).unwrap();
    let cfg = BenchConfig {
        batches: vec![1, 16],
        context: 12,
        new_tokens: 3,
        reps: 1,
        copy_bytes: 1 << 20,
    };
    let report = bench::run(&mut model, &cfg, None).unwrap();
    assert!(report.validation_logits_relative_error <= 1e-4);
    let layers = model.config().num_layers;
    for b in &report.batches {
        let k = &b.breakdown;
        assert!(b.decode_tokens_per_sec > 0.0 && b.roofline_tokens_per_sec > 0.0);
        assert!(
            k.step_us > 0.0 && k.forward_graph_us > 0.0 && k.sample_us > 0.0 && k.sketch_us > 0.0
        );
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
