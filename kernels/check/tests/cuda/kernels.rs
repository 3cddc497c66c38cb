//! Every kernel against its CPU twin, on the device `grail_cuda_check`
//! picks (the CPU emulation by default, GPU 0 with `--features cuda` as
//! scripts/gpu-check.sh runs it): fresh random inputs of several shapes,
//! output buffers poisoned with NaN before each launch, floats compared as
//! |gpu - cpu| <= atol + rtol |cpu|, sketches and sampled tokens exactly.
//! Then the whole forward pass against the CPU engine on stories260K.

use std::sync::Arc;

use grail_core::sketch::SketchPlanes;
use grail_engine::kernels::{Mat, WDtype};
use grail_engine::{LogitsFor, Model};
use grail_kernels::cuda::{CudaModel, DBuf, Gemm, Gpu, RopeKv};
use grail_kernels::twins::{self, random_inputs as rand_vec, AttnShape, Dt};

fn gpu() -> Arc<Gpu> {
    grail_cuda_check::device()
}

fn close(what: &str, gpu: &[f32], cpu: &[f32], atol: f32, rtol: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths");
    let mut worst = 0f32;
    for (i, (g, c)) in gpu.iter().zip(cpu).enumerate() {
        let err = (g - c).abs();
        assert!(
            err <= atol + rtol * c.abs(),
            "{what}[{i}]: gpu {g} vs cpu {c}"
        );
        worst = worst.max(err);
    }
    println!("{what}: {} values, max |gpu - cpu| {worst:.3e}", gpu.len());
}

fn poisoned(g: &Gpu, n: usize) -> cudarc::driver::CudaSlice<f32> {
    g.upload(&vec![f32::NAN; n], "poison").unwrap()
}

fn poisoned_dt(g: &Gpu, dt: Dt, n: usize) -> DBuf {
    match dt {
        Dt::F32 => DBuf::F32(poisoned(g, n)),
        Dt::Bf16 => DBuf::Bf16(g.upload(&vec![0x7fc0u16; n], "poison").unwrap()),
    }
}

fn upload_dt(g: &Gpu, dt: Dt, v: &[f32]) -> DBuf {
    match dt {
        Dt::F32 => DBuf::F32(g.upload(v, "input").unwrap()),
        Dt::Bf16 => DBuf::Bf16(
            g.upload(
                &v.iter()
                    .map(|&x| half::bf16::from_f32(x).to_bits())
                    .collect::<Vec<_>>(),
                "input",
            )
            .unwrap(),
        ),
    }
}

fn mat_bytes(dt: Dt, v: &[f32]) -> Vec<u8> {
    match dt {
        Dt::F32 => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        Dt::Bf16 => v
            .iter()
            .flat_map(|&x| half::bf16::from_f32(x).to_bits().to_le_bytes())
            .collect(),
    }
}

fn wdt(dt: Dt) -> WDtype {
    match dt {
        Dt::F32 => WDtype::F32,
        Dt::Bf16 => WDtype::BF16,
    }
}

#[test]
fn embedding_norm_silu_and_gemm_match_their_twins() {
    let g = gpu();
    for dt in [Dt::F32, Dt::Bf16] {
        for &(rows, h, inter, vocab) in &[
            (1usize, 64usize, 172usize, 512usize),
            (7, 896, 4864, 1000),
            (33, 1536, 8960, 300),
            // more than 8 elements per thread of the norm's 256: several
            // batches of loads, the last one partial
            (2, 4100, 64, 50),
        ] {
            let seed = (rows * h) as u64;
            // embedding
            let table = rand_vec(vocab * h, seed);
            let tb = mat_bytes(dt, &table);
            let tm = Mat {
                data: &tb,
                dtype: wdt(dt),
                rows: vocab,
                cols: h,
            };
            let ids: Vec<u32> = (0..rows as u32).map(|i| (i * 37) % vocab as u32).collect();
            let mut out = poisoned(&g, rows * h);
            g.embedding(
                &upload_dt(&g, dt, &table),
                &g.upload(&ids, "ids").unwrap(),
                rows,
                h,
                &mut out,
            )
            .unwrap();
            let mut want = vec![0f32; rows * h];
            twins::embedding(&tm, &ids, &mut want);
            close(
                &format!("embedding {dt:?} {rows}x{h}"),
                &g.download(&out, "").unwrap(),
                &want,
                0.0,
                0.0,
            );

            // residual + norm
            let res = rand_vec(rows * h, seed + 1);
            let delta = rand_vec(rows * h, seed + 2);
            let bias = rand_vec(h, seed + 3);
            let w = rand_vec(h, seed + 4);
            let mut res_d = g.upload(&res, "").unwrap();
            let mut of = poisoned(&g, rows * h);
            let mut ot = poisoned_dt(&g, dt, rows * h);
            g.rms_norm_residual(
                &mut res_d,
                Some(&g.upload(&delta, "").unwrap()),
                Some(&g.upload(&bias, "").unwrap()),
                &g.upload(&w, "").unwrap(),
                None,
                rows,
                1e-6,
                Some(&mut of),
                Some(&mut ot),
                dt,
            )
            .unwrap();
            let (mut r2, mut f2, mut t2) =
                (res.clone(), vec![0f32; rows * h], vec![0f32; rows * h]);
            twins::rms_norm_residual(
                &mut r2,
                Some(&delta),
                Some(&bias),
                &w,
                None,
                1e-6,
                Some(&mut f2),
                Some(&mut t2),
                dt,
            );
            close("residual", &g.download(&res_d, "").unwrap(), &r2, 0.0, 0.0);
            close(
                &format!("rms_norm {dt:?} f32 out"),
                &g.download(&of, "").unwrap(),
                &f2,
                1e-6,
                1e-5,
            );
            close(
                &format!("rms_norm {dt:?} storage out"),
                &g.download_f32(&ot, "").unwrap(),
                &t2,
                1e-6,
                1e-2,
            );

            // silu * mul
            let gu = rand_vec(rows * 2 * inter, seed + 5);
            let gub = rand_vec(2 * inter, seed + 6);
            let mut act = poisoned_dt(&g, dt, rows * inter);
            g.silu_mul(
                &g.upload(&gu, "").unwrap(),
                Some(&g.upload(&gub, "").unwrap()),
                rows,
                inter,
                &mut act,
            )
            .unwrap();
            let mut want = vec![0f32; rows * inter];
            twins::silu_mul(&gu, Some(&gub), inter, &mut want, dt);
            close(
                &format!("silu_mul {dt:?}"),
                &g.download_f32(&act, "").unwrap(),
                &want,
                1e-6,
                1e-2,
            );

            // gemm: (rows x h) x (inter x h)^T
            let x = rand_vec(rows * h, seed + 7);
            let wv = rand_vec(inter * h, seed + 8);
            let wb = mat_bytes(dt, &wv);
            let wm = Mat {
                data: &wb,
                dtype: wdt(dt),
                rows: inter,
                cols: h,
            };
            let xd = upload_dt(&g, dt, &x.iter().map(|&v| dt.round(v)).collect::<Vec<_>>());
            let mut out = poisoned(&g, rows * inter);
            g.gemm(&xd, rows, &upload_dt(&g, dt, &wv), 0, inter, h, &mut out)
                .unwrap();
            let mut want = vec![0f32; rows * inter];
            twins::gemm(&x, rows, &wm, &mut want, dt);
            close(
                &format!("gemm {dt:?} {rows}x{inter}x{h}"),
                &g.download(&out, "").unwrap(),
                &want,
                1e-4,
                1e-4,
            );
        }
    }
}

/// gemm.cu against the f32 twin, for every row-tile count, partial tiles of
/// rows and columns, k shorter than a warp's chunk, split unevenly over the
/// warps, or ending in a partial chunk, and weights from an offset; with k
/// in 1, 2, 3 and 8 splits (as many as it has chunks), one after another
/// over the same split scratch, and as many as the device gets. The rows
/// past m that the kernel reads hold NaN: they must change nothing. Sums of
/// bf16 products in another order (the tensor cores'): each value within
/// 2^-16 of the sum of its terms' magnitudes. The output past m x n stays
/// as poisoned.
#[test]
fn grail_gemm_matches_its_twin() {
    let g = gpu();
    let dt = Dt::Bf16;
    for &(m, n, k, w_off) in &[
        (1usize, 40usize, 64usize, 0usize),
        (5, 300, 1536, 8),
        (16, 33, 1040, 0),
        (17, 64, 256, 24),
        (33, 50, 384, 0),
        (64, 48, 2048, 16),
        (3, 16, 8960, 0),
    ] {
        assert!(twins::gemm_supported(dt, m, k, w_off));
        let seed = (m * 1000 + n * 10 + k) as u64;
        let x: Vec<f32> = rand_vec(m * k, seed).iter().map(|&v| dt.round(v)).collect();
        let mut padded = x.clone();
        padded.resize(twins::gemm_rows(m) * k, f32::NAN);
        let wv = rand_vec(w_off + n * k, seed + 1);
        let wb = mat_bytes(dt, &wv[w_off..]);
        let wm = Mat {
            data: &wb,
            dtype: wdt(dt),
            rows: n,
            cols: k,
        };
        let mut want = vec![0f32; m * n];
        twins::gemm(&x, m, &wm, &mut want, dt);
        let (xd, wd) = (upload_dt(&g, dt, &padded), upload_dt(&g, dt, &wv));
        let chunks = k.div_ceil(twins::GEMM_CHUNK);
        let splits = [1, 2, 3, 8].into_iter().filter(|&s| s <= chunks);
        for splits in splits.map(Some).chain([None]) {
            let mut out = poisoned(&g, m * n + 40);
            match splits {
                Some(s) => g.gemm_grail_split(&xd, m, &wd, w_off, n, k, &mut out, s),
                None => g.gemm_grail(&xd, m, &wd, w_off, n, k, &mut out),
            }
            .unwrap();
            let got = g.download(&out, "").unwrap();
            let what = format!("grail gemm {m}x{n}x{k} (weights from {w_off}, splits {splits:?})");
            let mut worst = 0f32;
            for (i, (&gv, &cv)) in got.iter().zip(&want).enumerate() {
                let (r, c) = (i / n, i % n);
                let w_row = &wv[w_off + c * k..w_off + (c + 1) * k];
                let terms: f32 = x[r * k..(r + 1) * k]
                    .iter()
                    .zip(w_row)
                    .map(|(a, b)| (a * dt.round(*b)).abs())
                    .sum();
                let err = (gv - cv).abs();
                assert!(
                    err <= terms / 65536.0,
                    "{what}[{r}, {c}]: gpu {gv} vs cpu {cv} (terms' magnitudes {terms})"
                );
                worst = worst.max(err);
            }
            assert!(
                got[m * n..].iter().all(|v| v.is_nan()),
                "{what}: wrote past its m x n outputs"
            );
            println!("{what}: max |gpu - cpu| {worst:.3e}");
        }
    }
}

/// gemm.cu's fused gate/up projection and activation equals, bit for bit,
/// its product with as many splits of k through silu_mul.cu (both tested
/// against their twins): 1, 2 and 3 splits, with and without biases, every
/// row-tile count, a partial column tile, and k ending in a partial chunk;
/// NaN in the padding rows of x, nothing written past m x inter.
#[test]
fn grail_gemm_swiglu_equals_gemm_then_silu_mul() {
    let g = gpu();
    let dt = Dt::Bf16;
    for &(m, inter, k, with_bias) in &[
        (1usize, 40usize, 64usize, false),
        (16, 96, 1040, true),
        (17, 64, 256, false),
        (33, 48, 384, true),
        (64, 32, 2048, false),
    ] {
        let seed = (m * 1000 + inter * 10 + k) as u64;
        let mut x: Vec<f32> = rand_vec(m * k, seed);
        x.resize(twins::gemm_rows(m) * k, f32::NAN);
        let (xd, wd) = (
            upload_dt(&g, dt, &x),
            upload_dt(&g, dt, &rand_vec(2 * inter * k, seed + 1)),
        );
        let bias = with_bias.then(|| g.upload(&rand_vec(2 * inter, seed + 2), "").unwrap());
        for splits in [1, 2, 3]
            .into_iter()
            .filter(|&s| s <= k.div_ceil(twins::GEMM_CHUNK))
        {
            let mut fused = poisoned_dt(&g, dt, m * inter + 24);
            g.gemm_grail_swiglu(&xd, m, &wd, inter, k, bias.as_ref(), &mut fused, splits)
                .unwrap();
            let mut gu = poisoned(&g, m * 2 * inter);
            g.gemm_grail_split(&xd, m, &wd, 0, 2 * inter, k, &mut gu, splits)
                .unwrap();
            let mut act = poisoned_dt(&g, dt, m * inter);
            g.silu_mul(&gu, bias.as_ref(), m, inter, &mut act).unwrap();
            let (DBuf::Bf16(f), DBuf::Bf16(a)) = (&fused, &act) else {
                unreachable!("bf16 buffers")
            };
            let (f, a) = (g.download(f, "").unwrap(), g.download(a, "").unwrap());
            let what = format!("gemm_swiglu {m}x{inter}x{k} (bias {with_bias}, {splits} splits)");
            assert_eq!(f[..m * inter], a[..], "{what}: fused vs gemm + silu_mul");
            assert!(
                f[m * inter..].iter().all(|&b| b == 0x7fc0),
                "{what}: wrote past its m x inter outputs"
            );
            println!("{what}: {} activations equal", m * inter);
        }
    }
}

/// gemm.cu's fused q/k/v projection, rope and cache write equals, bit for
/// bit, its product with as many splits of k through rope.cu (both tested
/// against their twins): 1, 2 and 3 splits, with and without q/k/v biases,
/// head dimensions 32, 64 and 128, grouped and multi-query KV heads, every
/// row-tile count, rows in several slots at several positions. Compared:
/// the queries and both whole caches (what neither writes stays poisoned).
#[test]
fn grail_gemm_rope_equals_gemm_then_rope_kv_write() {
    let g = gpu();
    let dt = Dt::Bf16;
    for &(m, heads, kv_heads, head_dim, k, with_bias) in &[
        (1usize, 2usize, 1usize, 32usize, 64usize, true),
        (17, 4, 2, 64, 1040, false),
        (33, 3, 1, 128, 384, true),
        (64, 2, 2, 32, 256, false),
    ] {
        let (slots, cap) = (5usize, 24usize);
        let shape = AttnShape {
            heads,
            kv_heads,
            head_dim,
            cap,
        };
        let width = (heads + 2 * kv_heads) * head_dim;
        let seed = (m * 1000 + width + k) as u64;
        let mut x: Vec<f32> = rand_vec(m * k, seed);
        x.resize(twins::gemm_rows(m) * k, f32::NAN);
        let (xd, wd) = (
            upload_dt(&g, dt, &x),
            upload_dt(&g, dt, &rand_vec(width * k, seed + 1)),
        );
        let bias = with_bias.then(|| g.upload(&rand_vec(width, seed + 2), "").unwrap());
        let table = g.upload(&rand_vec(cap * head_dim, seed + 3), "").unwrap();
        // distinct (slot, position) per row
        let slot: Vec<u32> = (0..m as u32).map(|j| j % slots as u32).collect();
        let pos: Vec<u32> = (0..m as u32).map(|j| j / slots as u32 + 3).collect();
        let (slot_d, pos_d) = (g.upload(&slot, "").unwrap(), g.upload(&pos, "").unwrap());
        let cache_len = slots * kv_heads * cap * head_dim;
        for splits in [1, 2, 3]
            .into_iter()
            .filter(|&s| s <= k.div_ceil(twins::GEMM_CHUNK))
        {
            let what = format!(
                "gemm_rope {m}x{width}x{k} (head_dim {head_dim}, bias {with_bias}, {splits} splits)"
            );
            let run = |fused: bool| {
                let mut q = poisoned(&g, m * heads * head_dim);
                let (mut kc, mut vc) = (
                    poisoned_dt(&g, dt, cache_len),
                    poisoned_dt(&g, dt, cache_len),
                );
                let dst = RopeKv {
                    bias: bias.as_ref(),
                    table: &table,
                    pos: pos_d.slice(..),
                    slot: slot_d.slice(..),
                    shape,
                    q_out: &mut q,
                    k_cache: &mut kc,
                    v_cache: &mut vc,
                    layer_offset: 0,
                    slots,
                };
                if fused {
                    g.gemm_grail_rope(&xd, m, &wd, k, dst, splits).unwrap();
                } else {
                    let mut qkv = poisoned(&g, m * width);
                    g.gemm_grail_split(&xd, m, &wd, 0, width, k, &mut qkv, splits)
                        .unwrap();
                    g.rope_kv_write(&qkv, m, dst).unwrap();
                }
                let bits = |b: &DBuf| match b {
                    DBuf::Bf16(v) => g.download(v, "").unwrap(),
                    DBuf::F32(_) => unreachable!("bf16 caches"),
                };
                let q: Vec<u32> = g
                    .download(&q, "")
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect();
                (q, bits(&kc), bits(&vc))
            };
            let (fused, plain) = (run(true), run(false));
            assert_eq!(fused.0, plain.0, "{what}: queries");
            assert_eq!(fused.1, plain.1, "{what}: key cache");
            assert_eq!(fused.2, plain.2, "{what}: value cache");
            let written = fused.1.iter().filter(|&&b| b != 0x7fc0).count();
            assert!(
                written >= m * kv_heads * head_dim * 9 / 10,
                "{what}: {written} keys written"
            );
            println!("{what}: queries and caches equal");
        }
    }
}

#[test]
fn rope_and_attention_match_their_twins() {
    let g = gpu();
    for dt in [Dt::F32, Dt::Bf16] {
        for &(heads, kv_heads, head_dim, rows, cap) in &[
            (8usize, 4usize, 8usize, 3usize, 40usize),
            (12, 2, 128, 5, 1100),
            (14, 2, 64, 2, 600),
            // the largest group and head dimension (the most shared memory),
            // and a head dimension of 3 vectors (position groups of 42)
            (16, 2, 256, 2, 300),
            (4, 1, 24, 3, 129),
            // every other group size (one kernel each): 1, 3, 5, and a head
            // dimension of 5 vectors (3 idle threads in the value phase)
            (3, 3, 16, 2, 200),
            (6, 2, 32, 3, 260),
            (10, 2, 40, 2, 150),
            // more rope pairs and values than 8 per thread of 128
            (8, 8, 256, 2, 140),
        ] {
            let s = AttnShape {
                heads,
                kv_heads,
                head_dim,
                cap,
            };
            let slots = rows + 1;
            let width = (heads + 2 * kv_heads) * head_dim;
            let inv: Vec<f32> = (0..head_dim / 2)
                .map(|i| 1.0 / 10000f32.powf(2.0 * i as f32 / head_dim as f32))
                .collect();
            let table = twins::rope_table(&inv, cap);
            let seed = (heads * head_dim * rows) as u64;
            // fill the caches with random history, then write one new row per slot
            let n = slots * kv_heads * cap * head_dim;
            let kc: Vec<f32> = rand_vec(n, seed).iter().map(|&v| dt.round(v)).collect();
            let vc: Vec<f32> = rand_vec(n, seed + 1).iter().map(|&v| dt.round(v)).collect();
            let qkv = rand_vec(rows * width, seed + 2);
            let bias = rand_vec(width, seed + 3);
            let pos: Vec<u32> = (0..rows as u32)
                .map(|r| (cap as u32 - 1 - 7 * r) % cap as u32)
                .collect();
            let slot: Vec<u32> = (0..rows as u32).map(|r| (r + 1) % slots as u32).collect();
            let (mut kd, mut vd) = (upload_dt(&g, dt, &kc), upload_dt(&g, dt, &vc));
            let mut q = poisoned(&g, rows * heads * head_dim);
            let (pos_d, slot_d) = (g.upload(&pos, "").unwrap(), g.upload(&slot, "").unwrap());
            let (bias_d, table_d) = (g.upload(&bias, "").unwrap(), g.upload(&table, "").unwrap());
            let dst = RopeKv {
                bias: Some(&bias_d),
                table: &table_d,
                pos: pos_d.slice(..),
                slot: slot_d.slice(..),
                shape: s,
                q_out: &mut q,
                k_cache: &mut kd,
                v_cache: &mut vd,
                layer_offset: 0,
                slots,
            };
            g.rope_kv_write(&g.upload(&qkv, "").unwrap(), rows, dst)
                .unwrap();
            let (mut q2, mut k2, mut v2) =
                (vec![0f32; rows * heads * head_dim], kc.clone(), vc.clone());
            twins::rope_kv_write(
                &qkv,
                Some(&bias),
                &table,
                &pos,
                &slot,
                s,
                &mut q2,
                &mut k2,
                &mut v2,
                dt,
            );
            let qh = g.download(&q, "").unwrap();
            close(&format!("rope q {dt:?}"), &qh, &q2, 0.0, 0.0);
            close(
                &format!("rope k cache {dt:?}"),
                &g.download_f32(&kd, "").unwrap(),
                &k2,
                0.0,
                0.0,
            );
            close(
                &format!("rope v cache {dt:?}"),
                &g.download_f32(&vd, "").unwrap(),
                &v2,
                0.0,
                0.0,
            );

            // twice over one scratch, the second time over shorter
            // histories: a launch must leave the split counters ready for
            // the next, whatever its split count
            let mut scratch = g.attention_scratch(rows, heads, head_dim, cap).unwrap();
            for pass in 0..2u32 {
                let len: Vec<u32> = pos
                    .iter()
                    .map(|p| (p + 1) >> pass)
                    .map(|l| l.max(1))
                    .collect();
                let max_len = *len.iter().max().unwrap() as usize;
                let mut out = poisoned_dt(&g, dt, rows * heads * head_dim);
                scratch.poison(&g).unwrap();
                g.attention(
                    &q,
                    &kd,
                    &vd,
                    0,
                    slots,
                    &slot_d,
                    &g.upload(&len, "").unwrap(),
                    rows,
                    max_len,
                    s,
                    1.0 / (head_dim as f32).sqrt(),
                    &mut scratch,
                    &mut out,
                )
                .unwrap();
                let mut want = vec![0f32; rows * heads * head_dim];
                twins::attention(
                    &qh,
                    &k2,
                    &v2,
                    &slot,
                    &len,
                    s,
                    1.0 / (head_dim as f32).sqrt(),
                    &mut want,
                    dt,
                );
                let tol = if dt == Dt::Bf16 { 1e-2 } else { 1e-5 };
                close(
                    &format!(
                        "attention {dt:?} {heads}/{kv_heads}x{head_dim} len<={max_len} (launch {pass})"
                    ),
                    &g.download_f32(&out, "").unwrap(),
                    &want,
                    tol,
                    tol,
                );
            }
        }
    }
}

#[test]
fn kv_fork_matches_its_twin_exactly() {
    let g = gpu();
    for dt in [Dt::F32, Dt::Bf16] {
        for &(layers, slots, kv_heads, head_dim, cap) in &[
            (3usize, 5usize, 2usize, 8usize, 37usize),
            (2, 4, 1, 24, 300),
        ] {
            let s = AttnShape {
                heads: kv_heads,
                kv_heads,
                head_dim,
                cap,
            };
            let n = layers * slots * kv_heads * cap * head_dim;
            let kc: Vec<f32> = rand_vec(n, 71).iter().map(|&v| dt.round(v)).collect();
            let vc: Vec<f32> = rand_vec(n, 72).iter().map(|&v| dt.round(v)).collect();
            // one source, distinct destinations (the launch copies in parallel);
            // a whole slot, a prefix, nothing
            let last = slots as u32 - 1;
            let pairs = [(0u32, 1u32, cap as u32), (0, 2, 5), (0, last, 0)];
            let (mut kd, mut vd) = (upload_dt(&g, dt, &kc), upload_dt(&g, dt, &vc));
            let col = |f: fn(&(u32, u32, u32)) -> u32| {
                g.upload(&pairs.iter().map(f).collect::<Vec<u32>>(), "")
                    .unwrap()
            };
            g.kv_fork(
                &mut kd,
                &mut vd,
                layers,
                slots,
                s,
                &col(|p| p.0),
                &col(|p| p.1),
                &col(|p| p.2),
            )
            .unwrap();
            let (mut k2, mut v2) = (kc.clone(), vc.clone());
            twins::kv_fork(&mut k2, layers, slots, s, &pairs);
            twins::kv_fork(&mut v2, layers, slots, s, &pairs);
            assert_ne!(k2, kc, "the pairs copy something");
            close(
                &format!("kv_fork k {dt:?} d={head_dim}"),
                &g.download_f32(&kd, "").unwrap(),
                &k2,
                0.0,
                0.0,
            );
            close(
                &format!("kv_fork v {dt:?} d={head_dim}"),
                &g.download_f32(&vd, "").unwrap(),
                &v2,
                0.0,
                0.0,
            );
        }
    }
}

#[test]
fn sampler_logprob_and_sketch_match_their_twins_exactly() {
    let g = gpu();
    // `peaked`: logits spread over thousands at temperature 0.25, so that
    // nearly every weight is exactly zero (whole chunks of them), with
    // uniforms at the ends of [0, 1], 1 included: no uniform below 1 puts
    // the target at Z (u Z rounds below Z), but rounding in the running
    // sums could, and then the sampler takes the last token of non-zero
    // weight, found by every thread scanning its chunk from the end
    for &(rows, vocab, peaked) in &[
        (1usize, 512usize, false),
        (17, 32_000, false),
        (64, 151_936, false),
        (6, 151_936, true),
    ] {
        let scale = |i: usize| {
            if peaked {
                3000.0
            } else {
                [1.0, 8.0, 30.0][i % 3]
            }
        };
        let mut logits: Vec<f32> = rand_vec(rows * vocab, vocab as u64 + u64::from(peaked))
            .iter()
            .enumerate()
            .map(|(i, v)| v * scale(i))
            .collect();
        if peaked {
            // the last three tokens of each row tie at its max: the last of
            // them is the last token of non-zero weight
            for row in logits.chunks_mut(vocab) {
                let m = row.iter().copied().fold(f32::MIN, f32::max);
                row[vocab - 3..].fill(m);
            }
        }
        let u: Vec<f64> = if peaked {
            let edges = [1.0, 1.0 - f64::EPSILON / 2.0, 0.0, 0.5, 1e-300, 1.0 - 1e-9];
            (0..rows).map(|r| edges[r % edges.len()]).collect()
        } else {
            rand_vec(rows, 9)
                .iter()
                .map(|v| f64::from(v.abs()))
                .collect()
        };
        let temp = |r: usize| {
            if peaked {
                0.25
            } else {
                [0.7f32, 1.0, 1.3][r % 3]
            }
        };
        let temps: Vec<f32> = (0..rows).map(temp).collect();
        let ld = g.upload(&logits, "").unwrap();
        let (mut tok, mut lp, mut st) = (
            g.upload(&vec![u32::MAX; rows], "").unwrap(),
            g.upload(&vec![f64::NAN; rows], "").unwrap(),
            g.upload(&vec![u32::MAX; rows], "").unwrap(),
        );
        let td = g.upload(&temps, "").unwrap();
        g.sample(
            &ld,
            &g.upload(&u, "").unwrap(),
            rows,
            vocab,
            &td,
            &mut tok,
            &mut lp,
            &mut st,
        )
        .unwrap();
        let (tok, lp, st) = (
            g.download(&tok, "").unwrap(),
            g.download(&lp, "").unwrap(),
            g.download(&st, "").unwrap(),
        );
        let (mut lp2, mut st2) = (
            g.upload(&vec![f64::NAN; rows], "").unwrap(),
            g.upload(&vec![u32::MAX; rows], "").unwrap(),
        );
        g.logprob(
            &ld,
            &g.upload(&tok, "").unwrap(),
            rows,
            vocab,
            &td,
            &mut lp2,
            &mut st2,
        )
        .unwrap();
        let lp2 = g.download(&lp2, "").unwrap();
        for r in 0..rows {
            let z = &logits[r * vocab..(r + 1) * vocab];
            let (t, l) = twins::sample(z, u[r], temps[r]).unwrap();
            assert_eq!(st[r], 0);
            assert_eq!(tok[r], t, "row {r}: sampled token");
            assert!(
                (lp[r] - l).abs() <= 1e-12 + 1e-12 * l.abs(),
                "row {r}: logprob {} vs {l}",
                lp[r]
            );
            assert!(
                (lp2[r] - twins::logprob(z, t, temps[r]).unwrap()).abs() <= 1e-12 + 1e-12 * l.abs()
            );
        }
        println!(
            "sampler: {rows} rows of {vocab}{}: tokens equal, logprobs within 1e-12",
            if peaked { " (peaked)" } else { "" }
        );
    }
    // a non-finite logit is reported with its index
    let mut z = rand_vec(1000, 3);
    z[417] = f32::INFINITY;
    let (mut tok, mut lp, mut st) = (
        g.zeros::<u32>(1, "").unwrap(),
        g.zeros::<f64>(1, "").unwrap(),
        g.zeros::<u32>(1, "").unwrap(),
    );
    g.sample(
        &g.upload(&z, "").unwrap(),
        &g.upload(&[0.5f64], "").unwrap(),
        1,
        1000,
        &g.upload(&[1.0f32], "").unwrap(),
        &mut tok,
        &mut lp,
        &mut st,
    )
    .unwrap();
    assert_eq!(g.download(&st, "").unwrap(), vec![418]);

    for &(rows, dim) in &[(1usize, 64usize), (9, 896), (40, 1536), (3, 8192)] {
        let planes = SketchPlanes::new(&[dim as u8; 32], dim).unwrap();
        let mut hidden: Vec<f32> = rand_vec(rows * dim, dim as u64)
            .iter()
            .map(|v| v * 20.0)
            .collect();
        hidden[5] = 0.0; // ties and zeros
        hidden[6] = -0.0;
        let (mut out, mut st) = (
            g.upload(&vec![0xdeadbeefu32; rows * 4], "").unwrap(),
            g.upload(&vec![u32::MAX; rows], "").unwrap(),
        );
        g.sketch(
            &g.upload(&hidden, "").unwrap(),
            rows,
            &g.upload(&twins::plane_words(&planes), "").unwrap(),
            &mut out,
            &mut st,
        )
        .unwrap();
        let (out, st) = (g.download(&out, "").unwrap(), g.download(&st, "").unwrap());
        for r in 0..rows {
            assert_eq!(st[r], 0);
            let want = twins::sketch(&hidden[r * dim..(r + 1) * dim], &planes).unwrap();
            let got: Vec<u8> = out[4 * r..4 * r + 4]
                .iter()
                .flat_map(|w| w.to_le_bytes())
                .collect();
            assert_eq!(got, want.0, "sketch row {r} dim {dim}");
        }
        println!("sketch: {rows} rows of {dim}: bit-identical");
    }
}

/// The forward pass over `prompt` in two passes (the second attends to the
/// cached first), on the device and on the CPU engine: final hidden states
/// and logits of every position, (device, CPU).
fn forward_both(
    dir: &std::path::Path,
    prompt: &[u32],
    split: usize,
    gemm: Gemm,
) -> ([Vec<f32>; 2], [Vec<f32>; 2], Dt) {
    let cpu = Model::load(dir).unwrap();
    let mut seq = cpu.new_sequence();
    let want = cpu
        .forward(&mut [&mut seq], &[prompt], LogitsFor::All)
        .unwrap();
    let mut model = CudaModel::new(gpu(), Model::load(dir).unwrap()).unwrap();
    model.set_gemm(gemm);
    let mut kv = model
        .new_cache(1, prompt.len().next_power_of_two())
        .unwrap();
    let n = prompt.len() as u32;
    let rows: Vec<u32> = (0..split as u32).collect();
    let f1 = model
        .forward(
            &mut kv,
            &prompt[..split],
            &vec![0; split],
            &rows,
            &rows,
            true,
        )
        .unwrap();
    let rows2: Vec<u32> = (split as u32..n).collect();
    let outs2: Vec<u32> = (0..n - split as u32).collect();
    let f2 = model
        .forward(
            &mut kv,
            &prompt[split..],
            &vec![0; outs2.len()],
            &rows2,
            &outs2,
            true,
        )
        .unwrap();
    let g = model.gpu();
    let mut hidden = g.download(&f1.hidden, "").unwrap();
    hidden.extend(g.download(&f2.hidden, "").unwrap());
    let mut logits = g.download(f1.logits.as_ref().unwrap(), "").unwrap();
    logits.extend(g.download(f2.logits.as_ref().unwrap(), "").unwrap());
    ([hidden, want.hidden], [logits, want.logits], model.dt())
}

#[test]
fn forward_matches_the_cpu_engine_on_stories260k() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/stories260K");
    let prompt: Vec<u32> = (0..200u32).map(|i| (i * 7 + 1) % 512).collect();
    let ([hidden, want_hidden], [logits, want_logits], _) =
        forward_both(&dir, &prompt, 150, Gemm::Cublas);
    close(
        "stories260K final hidden states",
        &hidden,
        &want_hidden,
        1e-4,
        1e-4,
    );
    close("stories260K logits", &logits, &want_logits, 1e-4, 1e-4);
}

/// The engine's test checkpoints (tests/fixtures/engine): Qwen2 with q/k/v
/// biases, GQA and two shards; Llama with MQA, head_dim != hidden / heads
/// and llama3 rope scaling, in f32, bf16 and f16 with attention and MLP
/// biases. f32 and f16 checkpoints run in f32 on the device (summation order
/// apart, the CPU's arithmetic); bf16 ones in bf16 with activations rounded
/// to bf16 before every product, so they are held to a relative error; those
/// run with either GEMM (gemm.cu serves all of their products: dimensions
/// that are multiples of 16, passes of 29 and 8 rows; with the gate/up
/// activation fused in, and rope too where head_dim is a multiple of 32).
#[test]
fn forward_matches_the_cpu_engine_on_every_test_checkpoint() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/engine");
    // and a random bf16 Qwen2-shape checkpoint with head_dim 64 (q/k/v
    // biases), where gemm.cu also fuses rope into the q/k/v projection
    let qwen_bf16 = tempfile::tempdir().unwrap();
    let shape = grail_cuda_check::write_tiny_qwen_bf16(qwen_bf16.path()).unwrap();
    for (name, dir) in [
        "qwen2-tiny",
        "llama-tiny",
        "llama-tiny-bf16",
        "llama-bias-f16",
    ]
    .map(|n| (n, root.join(n)))
    .into_iter()
    .chain([(shape.name, qwen_bf16.path().to_path_buf())])
    {
        let vocab = Model::load(&dir).unwrap().config().vocab_size as u32;
        let prompt: Vec<u32> = (0..37u32).map(|i| (i * 13 + 5) % vocab).collect();
        let ([hidden, want_hidden], [logits, want_logits], dt) =
            forward_both(&dir, &prompt, 29, Gemm::Cublas);
        let grail = (dt == Dt::Bf16).then(|| {
            let ([hidden, _], [logits, _], _) = forward_both(&dir, &prompt, 29, Gemm::Grail);
            (hidden, logits)
        });
        match dt {
            Dt::F32 => {
                close(
                    &format!("{name} final hidden states"),
                    &hidden,
                    &want_hidden,
                    1e-4,
                    1e-4,
                );
                close(&format!("{name} logits"), &logits, &want_logits, 1e-4, 1e-4);
            }
            Dt::Bf16 => {
                let (grail_hidden, grail_logits) = grail.expect("bf16: run with gemm.cu");
                for (what, got, want) in [
                    ("final hidden states", &hidden, &want_hidden),
                    ("logits", &logits, &want_logits),
                    ("final hidden states (gemm.cu)", &grail_hidden, &want_hidden),
                    ("logits (gemm.cu)", &grail_logits, &want_logits),
                ] {
                    assert!(
                        got.iter().all(|x| x.is_finite()),
                        "{name} {what}: not finite"
                    );
                    let e = grail_cuda_check::bench::relative_error(got, want);
                    assert!(
                        e <= 2e-2,
                        "{name} {what}: relative error {e:.3e} (bf16 activations)"
                    );
                    println!("{name} {what} (bf16 on the device): relative error {e:.3e}");
                }
            }
        }
    }
}
