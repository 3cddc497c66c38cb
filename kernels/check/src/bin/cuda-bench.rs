//! `cuda-bench`: the CUDA backend's decode and prefill throughput against
//! the memory-bandwidth roofline and beside transformers (see
//! `grail_cuda_check::bench`). scripts/gpu-check.sh runs it on the GPU;
//! built without `--features cuda` it runs on the CPU emulation, which only
//! shows that it works.
//!
//! Exit codes: 0 measured, 1 validation or measurement failed, 2 usage.
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use grail_cuda_check::bench::{self, BenchConfig, TransformersFigures};
use grail_engine::kernels::WDtype;
use grail_engine::{synthetic, Model};
use grail_kernels::cuda::CudaModel;

/// Decode tokens/s at several batch sizes against the roofline ceiling,
/// prefill tokens/s, and transformers' figures for the same checkpoint.
#[derive(Debug, Parser)]
#[command(name = "cuda-bench", version, about)]
struct Args {
    /// Hugging Face model directory to measure.
    #[arg(long, value_name = "DIR", conflicts_with = "synthetic")]
    model: Option<PathBuf>,
    /// Measure a random bf16 checkpoint of this shape, written to a
    /// temporary directory (or --checkpoint-dir) first.
    #[arg(long, value_parser = ["0.5b", "1.5b"])]
    synthetic: Option<String>,
    /// Where --synthetic writes its checkpoint (kept afterwards); with
    /// --write-only, write it and exit (for scripts/bench_transformers.py).
    #[arg(long, value_name = "DIR")]
    checkpoint_dir: Option<PathBuf>,
    /// Write the --synthetic checkpoint to --checkpoint-dir and exit.
    #[arg(long, requires_all = ["synthetic", "checkpoint_dir"])]
    write_only: bool,
    /// Batch sizes (rollouts decoded together), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
    batches: Vec<usize>,
    /// Prompt tokens per group: the context decoding starts from.
    #[arg(long, default_value_t = 1024)]
    context: usize,
    /// Tokens decoded per rollout in the timed runs.
    #[arg(long, default_value_t = 32)]
    new_tokens: usize,
    /// Timed runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Bytes per buffer of the bandwidth measurement.
    #[arg(long, default_value_t = 1 << 30)]
    copy_bytes: usize,
    /// transformers' figures (scripts/bench_transformers.py --json).
    #[arg(long, value_name = "FILE")]
    transformers: Option<PathBuf>,
    /// Name of the model in the table (default: the directory or shape).
    #[arg(long)]
    label: Option<String>,
    /// Write the report as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the Markdown table here.
    #[arg(long, value_name = "FILE")]
    markdown: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err((code, e)) => {
            eprintln!("cuda-bench: {e}");
            ExitCode::from(code)
        }
    }
}

fn run(args: &Args) -> Result<(), (u8, String)> {
    let usage = |e: String| (2u8, e);
    let failed = |e: String| (1u8, e);
    let _temp;
    let dir = match (&args.model, &args.synthetic) {
        (Some(dir), _) => dir.clone(),
        (None, Some(shape)) => {
            let shape = match shape.as_str() {
                "0.5b" => synthetic::QWEN2_5_0_5B,
                _ => synthetic::QWEN2_5_1_5B,
            };
            let dir = match &args.checkpoint_dir {
                Some(d) => {
                    std::fs::create_dir_all(d)
                        .map_err(|e| usage(format!("creating {}: {e}", d.display())))?;
                    d.clone()
                }
                None => {
                    _temp = tempfile::tempdir()
                        .map_err(|e| usage(format!("temporary directory: {e}")))?;
                    _temp.path().to_path_buf()
                }
            };
            let t = std::time::Instant::now();
            synthetic::write_checkpoint(&dir, &shape, WDtype::BF16, 1)
                .map_err(|e| usage(format!("writing the checkpoint to {}: {e}", dir.display())))?;
            eprintln!(
                "{}: random bf16 checkpoint, {:.0}M parameters, written to {} in {:.1} s",
                shape.name,
                shape.parameters() as f64 / 1e6,
                dir.display(),
                t.elapsed().as_secs_f64()
            );
            if args.write_only {
                return Ok(());
            }
            dir
        }
        (None, None) => return Err(usage("give --model DIR or --synthetic SHAPE".into())),
    };
    if args.batches.is_empty()
        || args.batches.contains(&0)
        || args.context == 0
        || args.new_tokens == 0
    {
        return Err(usage(
            "--batches, --context and --new-tokens must be positive".into(),
        ));
    }
    let transformers: Option<TransformersFigures> = match &args.transformers {
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| usage(format!("{}: {e}", p.display())))?;
            Some(
                serde_json::from_slice(&bytes)
                    .map_err(|e| usage(format!("{}: {e}", p.display())))?,
            )
        }
        None => None,
    };
    let gpu = grail_cuda_check::device();
    let mut cpu = Model::load(&dir).map_err(|e| usage(format!("{}: {e}", dir.display())))?;
    let cap = args.context + args.new_tokens + 1;
    if cap > cpu.max_positions() {
        cpu.set_max_positions(cap)
            .map_err(|e| usage(e.to_string()))?;
    }
    let mut model =
        CudaModel::new(gpu, cpu).map_err(|e| failed(format!("uploading the model: {e}")))?;
    let cfg = BenchConfig {
        batches: args.batches.clone(),
        context: args.context,
        new_tokens: args.new_tokens,
        reps: args.reps,
        copy_bytes: args.copy_bytes,
    };
    let report = bench::run(&mut model, &cfg, transformers.as_ref()).map_err(failed)?;
    let label = match (&args.label, &args.synthetic) {
        (Some(l), _) => l.clone(),
        (None, Some(s)) => format!("random Qwen2.5-{}-shape checkpoint", s.to_uppercase()),
        (None, None) => dir.display().to_string(),
    };
    let table = bench::markdown(&report, &label, transformers.as_ref());
    println!("{table}");
    if let Some(p) = &args.markdown {
        std::fs::write(p, &table).map_err(|e| failed(format!("{}: {e}", p.display())))?;
    }
    if let Some(p) = &args.json {
        let json = serde_json::to_vec_pretty(&report).expect("plain data");
        std::fs::write(p, json).map_err(|e| failed(format!("{}: {e}", p.display())))?;
    }
    Ok(())
}
