//! The CUDA backend's rollouts against the CPU engine's, on the device
//! `grail_cuda_check` picks (the CPU emulation in CI, GPU 0 with
//! `--features cuda`): the same prompts, seeds and options through
//! `CudaModel::generate_groups` and `grail_engine::generate_groups` on
//! stories260K (f32: the two differ only in summation order). Groups of
//! different prompt lengths and sizes share one batch, one group is greedy,
//! and EOS ends some rollouts early, so prefill packing, cache forking, the
//! shrinking decode batch, the sampler and sketch kernels and the host
//! bookkeeping all have to agree with the reference.
use grail_core::hash::{derive, Digest};
use grail_core::sketch::SketchPlanes;
use grail_engine::{generate_groups, GenerateOptions, GroupRequest, Model, Sampler};
use grail_kernels::cuda::{decode_graph_rows, CudaModel, REAL_KERNELS};

fn stories() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/stories260K")
}

fn prompt(len: usize, salt: u32) -> Vec<u32> {
    (0..len as u32)
        .map(|i| (i * 37 + salt * 11 + 1) % 512)
        .collect()
}

fn seeds(n: usize, salt: u8) -> Vec<Digest> {
    (0..n as u32)
        .map(|r| {
            derive(
                "grail/v1/test-cuda-generation",
                &[&[salt], &r.to_le_bytes()],
            )
        })
        .collect()
}

#[test]
fn generation_matches_the_cpu_engine() {
    let dir = stories();
    let gpu = grail_cuda_check::device();
    let cpu = Model::load(&dir).unwrap();
    let mut model = CudaModel::new(gpu, Model::load(&dir).unwrap()).unwrap();
    // the emulation runs every CUDA thread as a fiber: keep it short there
    let (lens, new_tokens) = if REAL_KERNELS {
        ([300usize, 17, 120], 96)
    } else {
        ([21usize, 6, 13], 10)
    };
    let prompts: Vec<Vec<u32>> = lens
        .iter()
        .enumerate()
        .map(|(i, &l)| prompt(l, i as u32))
        .collect();
    let (s0, s1) = (seeds(16, 0), seeds(3, 1));
    let groups = [
        GroupRequest {
            prompt: &prompts[0],
            sampler: Sampler::Verifiable {
                temperature: 1.0,
                seeds: &s0,
            },
        },
        GroupRequest {
            prompt: &prompts[1],
            sampler: Sampler::Greedy { n: 2 },
        },
        GroupRequest {
            prompt: &prompts[2],
            sampler: Sampler::Verifiable {
                temperature: 0.7,
                seeds: &s1,
            },
        },
    ];
    let planes = SketchPlanes::new(&[5u8; 32], cpu.config().hidden_size).unwrap();
    // stories260K's EOS, and a frequent token, so that rollouts end at
    // different steps and the decode batch shrinks
    let stop = [cpu.config().eos_token_ids[0], 13];
    let opts = GenerateOptions {
        max_new_tokens: new_tokens,
        stop_tokens: &stop,
        keep_hidden: true,
        sketch: Some(&planes),
        cancel: None,
    };
    let want = generate_groups(&cpu, &groups, &opts).unwrap();
    // decode steps replaying CUDA graphs (the default), then launching
    // every kernel
    for graphs in [true, false] {
        model.set_decode_graphs(graphs);
        let before = model.decode_graph_captures();
        let got = model.generate_groups(&groups, &opts).unwrap();
        compare(&got, &want, cpu.config().hidden_size, new_tokens, graphs);
        // one recording per padded row count, and some steps padded (rows
        // of finished rollouts' slots riding along without disturbing the
        // live ones, which `compare` checked)
        let lens: Vec<usize> = want.iter().flatten().map(|c| c.tokens.len()).collect();
        let live: Vec<usize> = (1..new_tokens)
            .map(|t| lens.iter().filter(|&&l| l > t).count())
            .take_while(|&n| n > 0)
            .collect();
        let rows: std::collections::BTreeSet<usize> = live
            .iter()
            .map(|&n| decode_graph_rows(n, lens.len()))
            .collect();
        let captures = model.decode_graph_captures() - before;
        if graphs {
            assert_eq!(captures, rows.len(), "live counts {live:?}");
            assert!(
                live.iter().any(|&n| decode_graph_rows(n, lens.len()) > n),
                "no padded step: live counts {live:?}"
            );
        } else {
            assert_eq!(captures, 0);
        }
    }
}

#[test]
fn decode_graph_rows_are_few_and_waste_little() {
    assert_eq!(
        (1..=40)
            .map(|n| decode_graph_rows(n, 40))
            .collect::<Vec<_>>(),
        [
            1, 2, 3, 4, 5, 6, 7, 8, 10, 10, 12, 12, 14, 14, 16, 16, 20, 20, 20, 20, 24, 24, 24, 24,
            28, 28, 28, 28, 32, 32, 32, 32, 40, 40, 40, 40, 40, 40, 40, 40
        ]
    );
    for slots in 1..=1024usize {
        let mut distinct = std::collections::BTreeSet::new();
        for n in 1..=slots {
            let rows = decode_graph_rows(n, slots);
            assert!(n <= rows && rows <= slots, "{n} of {slots}: {rows}");
            assert!(4 * (rows - n) < rows, "{n} of {slots}: {rows}");
            distinct.insert(rows);
        }
        let doublings = slots.next_power_of_two().trailing_zeros() as usize;
        assert!(
            distinct.len() <= 8 + 4 * doublings.saturating_sub(3),
            "{slots} slots: {} row counts",
            distinct.len()
        );
    }
}

/// `got` against the CPU engine's `want`: tokens and finish reasons equal,
/// logprobs and hidden states within 1e-4, sketches within 2 bits.
fn compare(
    got: &[Vec<grail_engine::Completion>],
    want: &[Vec<grail_engine::Completion>],
    h: usize,
    new_tokens: usize,
    graphs: bool,
) {
    assert_eq!(got.len(), want.len());
    let (mut rollouts, mut tokens, mut early) = (0, 0, 0);
    let (mut worst_lp, mut worst_hidden, mut worst_sketch) = (0f64, 0f32, 0u32);
    for (g, (gg, wg)) in got.iter().zip(want).enumerate() {
        assert_eq!(gg.len(), wg.len(), "group {g}: rollouts");
        for (r, (a, b)) in gg.iter().zip(wg).enumerate() {
            assert_eq!(a.tokens, b.tokens, "group {g} rollout {r}: tokens");
            assert_eq!(a.finish, b.finish, "group {g} rollout {r}: finish");
            for (t, (x, y)) in a.logprobs.iter().zip(&b.logprobs).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-4,
                    "group {g} rollout {r} position {t}: logprob {x} vs {y}"
                );
                worst_lp = worst_lp.max((x - y).abs());
            }
            let (ha, hb) = (a.hidden.as_ref().unwrap(), b.hidden.as_ref().unwrap());
            assert_eq!(
                ha.len(),
                a.tokens.len() * h,
                "group {g} rollout {r}: hidden"
            );
            for (i, (x, y)) in ha.iter().zip(hb).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-4 + 1e-4 * y.abs(),
                    "group {g} rollout {r} hidden[{i}]: {x} vs {y}"
                );
                worst_hidden = worst_hidden.max((x - y).abs());
            }
            let (ka, kb) = (a.sketches.as_ref().unwrap(), b.sketches.as_ref().unwrap());
            assert_eq!(ka.len(), a.tokens.len());
            for (t, (x, y)) in ka.iter().zip(kb).enumerate() {
                let d = x.hamming(y);
                assert!(
                    d <= 2,
                    "group {g} rollout {r} position {t}: sketch distance {d}"
                );
                worst_sketch = worst_sketch.max(d);
            }
            rollouts += 1;
            tokens += a.tokens.len();
            early += usize::from(a.tokens.len() < new_tokens);
        }
    }
    assert!(
        early > 0 && early < rollouts,
        "{early} of {rollouts} rollouts ended early"
    );
    println!(
        "{}, decode graphs {graphs}: {rollouts} rollouts, {tokens} tokens ({early} ended early) equal the CPU engine's; max |logprob diff| {worst_lp:.2e}, max |hidden diff| {worst_hidden:.2e}, max sketch distance {worst_sketch}",
        grail_cuda_check::describe()
    );
}
