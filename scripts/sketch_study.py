#!/usr/bin/env python3
"""Soundness / honest-drift study of the grail hidden-state sketch on a real small Llama.

What it measures
----------------
Using the trained 260K-parameter TinyStories Llama in shared/fixtures/stories260K
(fp32 safetensors, parsed by hand), this script:

  0. validates its own numpy forward pass against expected_greedy.json
     (120 greedy tokens from [BOS] must match exactly, position-0 logits to ~1e-5);
  1. samples rollouts at temperature 1.0 (inverse-CDF sampling in token-id order,
     fixed seeds) from four story prompts and collects the final hidden state h
     (after the final RMSNorm incl. its weight, i.e. the LM-head input) at every
     generated position, via a teacher-forced fp32 prefill over the full sequence;
  2. implements the 128-bit sketch exactly as specified (k = ceil(d/16)-th largest
     |h_i| as reference, scale = f32(32)/f32(r), q = clip(rint(f32(h*scale)), +-127),
     128 random +-1 hyperplanes from one 128-bit word per hidden dim, bit j =
     (a_j > 0), Hamming distance, accept iff distance <= tau), for many keys;
  3. measures, per position and per rollout (32 opened positions; p^32 and an
     empirical 32-position check):
       (a) false accepts of unrelated vectors (other sequence, same sequence other
           position, random-initialised model of the same shape on the same tokens);
       (b) the best constant commitment an adversary can derive from observed honest
           sketches under the same key (bitwise majority, sketch of mean h, most
           frequent sketch, all-zeros, all-ones; fit on train sequences, scored on test);
       (b') extra: a per-position lookup-table forgery (mean train h keyed by the
           current / previous / next tokens, no forward pass over the real context);
       (c) honest drift: float64 vs float32, two bf16-emulating engines (A: HF-eager-like,
           B: fused-kernel/flash-attention-like) vs float32 and vs each other
           (teacher-forced), and fp32 KV-cache decode vs fp32 prefill: sketch distance
           distribution (+ a random-hyperplane binomial model of the tail), logprob drift
           of the sampled token, and inverse-CDF interval drift;
       (d) a nearby-but-different model: int8 per-row weights, int4 per-row weights,
           1% multiplicative weight noise: sketch distances, acceptance, and how often
           inverse-CDF sampling with the same u picks a different token;
       (e) massive-activation / concentration statistics of h and of the quantizer.
  The markdown report goes to stdout and to /tmp/sketch-study/report.md.

How to run
----------
    pip install numpy && python3 scripts/sketch_study.py
Optional flags: --seqs-per-prompt N (default 48, four prompts), --new-tokens N
(default 160), --keys N (default 128), --model DIR, --out DIR.  Runtime on 2 (shared)
cores is about 2-4 minutes; the wall time is printed at the end.

Provenance
----------
This is an independent numpy re-implementation written for this study (Llama
forward pass, safetensors parsing, bf16 emulation, sketch); it contains no code
from other projects.  It uses only numpy and the standard library.
"""

import argparse
import json
import math
import os
import struct
import time

import numpy as np

T_START = time.time()

# ----------------------------------------------------------------------------
# arguments / constants
# ----------------------------------------------------------------------------
HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL = os.path.normpath(os.path.join(HERE, "..", "..", "shared", "fixtures", "stories260K"))
if not os.path.isdir(DEFAULT_MODEL):
    DEFAULT_MODEL = "/work/shared/fixtures/stories260K"

ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
ap.add_argument("--model", default=DEFAULT_MODEL)
ap.add_argument("--out", default="/tmp/sketch-study")
ap.add_argument("--seqs-per-prompt", type=int, default=48)
ap.add_argument("--new-tokens", type=int, default=160)
ap.add_argument("--keys", type=int, default=128)
ap.add_argument("--rollout-draws", type=int, default=8,
                help="random 32-position subsets per (key, sequence) for empirical per-rollout rates")
args = ap.parse_args()

TAUS = [8, 12, 16, 20, 24, 28, 32]
OPEN = 32            # positions opened per rollout
NBITS = 128
CLAMP = 127
TARGET = 32.0
SEED_GEN = 20240601  # sampling
SEED_KEYS = 777      # sketch keys
SEED_MISC = 4242     # pairings, u draws, noise models
f32, f64 = np.float32, np.float64

os.makedirs(args.out, exist_ok=True)
REPORT = []


def out(s=""):
    REPORT.append(s)


def table(headers, rows):
    lines = ["| " + " | ".join(str(h) for h in headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


def log(msg):
    print(f"[{time.time() - T_START:7.1f}s] {msg}", flush=True)


# ----------------------------------------------------------------------------
# safetensors + model
# ----------------------------------------------------------------------------
def load_safetensors(path):
    with open(path, "rb") as fh:
        blob = fh.read()
    (hlen,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + hlen].decode("utf-8"))
    base = 8 + hlen
    tensors = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        assert meta["dtype"] == "F32", (name, meta["dtype"])
        s, e = meta["data_offsets"]
        n = (e - s) // 4
        assert n == int(np.prod(meta["shape"])), name
        tensors[name] = np.frombuffer(blob, dtype="<f4", count=n, offset=base + s).reshape(meta["shape"]).astype(f32)
    return tensors


with open(os.path.join(args.model, "config.json")) as fh:
    CFG = json.load(fh)
D = CFG["hidden_size"]
NL = CFG["num_hidden_layers"]
NH = CFG["num_attention_heads"]
NKV = CFG["num_key_value_heads"]
HD = CFG.get("head_dim", D // NH)
FF = CFG["intermediate_size"]
V = CFG["vocab_size"]
EPS = CFG["rms_norm_eps"]
THETA = CFG["rope_theta"]
assert CFG["tie_word_embeddings"] and CFG["hidden_act"] == "silu"
KTOP = math.ceil(D / 16)

RAW = load_safetensors(os.path.join(args.model, "model.safetensors"))

MATS = ["wq", "wk", "wv", "wo", "wg", "wu", "wd"]
HFNAME = {"wq": "self_attn.q_proj", "wk": "self_attn.k_proj", "wv": "self_attn.v_proj",
          "wo": "self_attn.o_proj", "wg": "mlp.gate_proj", "wu": "mlp.up_proj", "wd": "mlp.down_proj"}


def params_from_raw(raw):
    p = {"emb": raw["model.embed_tokens.weight"], "norm": raw["model.norm.weight"], "layers": []}
    for i in range(NL):
        pre = f"model.layers.{i}."
        L = {"ln1": raw[pre + "input_layernorm.weight"], "ln2": raw[pre + "post_attention_layernorm.weight"]}
        for m in MATS:
            L[m] = raw[pre + HFNAME[m] + ".weight"]
        p["layers"].append(L)
    return p


def map_params(p, mat_fn, norm_fn=lambda w: w):
    """Apply mat_fn to every weight matrix (incl. the tied embedding), norm_fn to norm weights."""
    q = {"emb": mat_fn(p["emb"]), "norm": norm_fn(p["norm"]), "layers": []}
    for L in p["layers"]:
        M = {"ln1": norm_fn(L["ln1"]), "ln2": norm_fn(L["ln2"])}
        for m in MATS:
            M[m] = mat_fn(L[m])
        q["layers"].append(M)
    return q


def bf16_round(x):
    """Round float32 values to the nearest bf16 (ties to even on the f32 bit pattern); returns float32."""
    x = np.ascontiguousarray(x, dtype=f32)
    b = x.view(np.uint32)
    b = (b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) & np.uint32(0xFFFF0000)
    return b.view(f32)


def ident(x):
    return x


def rope_tables(T, dt):
    inv = 1.0 / (THETA ** (np.arange(0, HD, 2, dtype=f64) / HD))
    if dt == f32:
        inv = inv.astype(f32)
        fr = np.arange(T, dtype=f32)[:, None] * inv[None, :]
    else:
        fr = np.arange(T, dtype=f64)[:, None] * inv[None, :]
    emb = np.concatenate([fr, fr], axis=-1)
    return np.cos(emb).astype(dt), np.sin(emb).astype(dt)


def rotate_half(x):
    h = x.shape[-1] // 2
    return np.concatenate([-x[..., h:], x[..., :h]], axis=-1)


def rmsnorm(x, w, R, dt, fused=False):
    var = np.mean(x * x, axis=-1, keepdims=True)
    y = x * (dt(1.0) / np.sqrt(var + dt(EPS)))
    if fused:                       # one fp32 kernel, single rounding of the output
        return R(w * y)
    return R(w * R(y))              # HF LlamaRMSNorm: normalise in fp32, cast, then weight * x


def forward(p, tokens, mode="f32", round_logits=True):
    """Teacher-forced causal prefill. tokens (B,T) -> h (B,T,D) [LM-head input], logits (B,T,V).

    mode 'f32': plain float32; 'f64': float64 everywhere;
    'bf16'  (engine A, HF-eager-like): weights bf16, every op output rounded to bf16
            (each matmul with fp32 accumulation, each norm step, each RoPE product/sum,
            attention scores, scaled scores, fp32 softmax -> bf16, P@V, SiLU, gate*up,
            residual adds, logits);
    'bf16f' (engine B, fused-kernel / flash-attention-like): weights bf16, fused fp32
            RMSNorm (one rounding), RoPE in fp32 with one rounding, attention with fp32
            scores/softmax and P rounded to bf16 before P@V (flash-attention), fused
            SiLU*up (one rounding), matmul outputs and residual adds rounded to bf16."""
    fused = mode == "bf16f"
    if mode == "f64":
        dt, R = f64, ident
    elif mode in ("bf16", "bf16f"):
        dt, R = f32, bf16_round
    else:
        dt, R = f32, ident
    B, T = tokens.shape
    cos, sin = rope_tables(T, dt)
    if not fused:
        cos, sin = R(cos), R(sin)
    mask = np.triu(np.full((T, T), -np.inf, dtype=dt), 1)
    scale = dt(HD ** -0.5)
    rep = NH // NKV
    x = p["emb"][tokens].astype(dt)
    for L in p["layers"]:
        xn = rmsnorm(x, L["ln1"], R, dt, fused)
        q = R(xn @ L["wq"].T).reshape(B, T, NH, HD).transpose(0, 2, 1, 3)
        k = R(xn @ L["wk"].T).reshape(B, T, NKV, HD).transpose(0, 2, 1, 3)
        v = R(xn @ L["wv"].T).reshape(B, T, NKV, HD).transpose(0, 2, 1, 3)
        if fused:
            q = R(q * cos + rotate_half(q) * sin)
            k = R(k * cos + rotate_half(k) * sin)
        else:
            q = R(R(q * cos) + R(rotate_half(q) * sin))
            k = R(R(k * cos) + R(rotate_half(k) * sin))
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        if fused:
            s = (q @ k.transpose(0, 1, 3, 2)) * scale + mask
        else:
            s = R(R(q @ k.transpose(0, 1, 3, 2)) * scale) + mask
        s = s - s.max(axis=-1, keepdims=True)
        pr = np.exp(s)
        pr = pr / pr.sum(axis=-1, keepdims=True)
        o = R(R(pr) @ v).transpose(0, 2, 1, 3).reshape(B, T, NH * HD)
        x = R(x + R(o @ L["wo"].T))
        xn = rmsnorm(x, L["ln2"], R, dt, fused)
        g = R(xn @ L["wg"].T)
        u = R(xn @ L["wu"].T)
        if fused:
            m = R((g / (dt(1.0) + np.exp(-g))) * u)
        else:
            m = R(R(g / (dt(1.0) + np.exp(-g))) * u)
        x = R(x + R(m @ L["wd"].T))
    h = rmsnorm(x, p["norm"], R, dt, fused)
    logits = h @ p["emb"].T
    if round_logits:
        logits = R(logits)
    return h, logits


def decode(p, prompts, n_new, rng=None):
    """fp32 KV-cache decode. prompts: (B,P) equal-length. Greedy if rng is None, else
    temperature-1 inverse-CDF sampling (token-id order). Returns tokens (B,P+n_new),
    the u used per sampled token (B,n_new), h at every position (B,P+n_new,D),
    logits at every position (B,P+n_new,V)."""
    B, P = prompts.shape
    T = P + n_new
    toks = np.zeros((B, T), dtype=np.int64)
    toks[:, :P] = prompts
    us = np.zeros((B, n_new))
    hs = np.zeros((B, T, D), dtype=f32)
    lg = np.zeros((B, T, V), dtype=f32)
    cos, sin = rope_tables(T, f32)
    kc = [np.zeros((B, NKV, T, HD), dtype=f32) for _ in range(NL)]
    vc = [np.zeros((B, NKV, T, HD), dtype=f32) for _ in range(NL)]
    scale = f32(HD ** -0.5)
    rep = NH // NKV
    for t in range(T):
        x = p["emb"][toks[:, t]]
        c, s_ = cos[t], sin[t]
        for li, L in enumerate(p["layers"]):
            xn = rmsnorm(x, L["ln1"], ident, f32)
            q = (xn @ L["wq"].T).reshape(B, NH, HD)
            k = (xn @ L["wk"].T).reshape(B, NKV, HD)
            v = (xn @ L["wv"].T).reshape(B, NKV, HD)
            q = q * c + rotate_half(q) * s_
            k = k * c + rotate_half(k) * s_
            kc[li][:, :, t] = k
            vc[li][:, :, t] = v
            K = kc[li][:, :, :t + 1]
            Vv = vc[li][:, :, :t + 1]
            qg = q.reshape(B, NKV, rep, HD)
            sc = np.einsum("bgrd,bgtd->bgrt", qg, K) * scale
            sc = sc - sc.max(axis=-1, keepdims=True)
            pr = np.exp(sc)
            pr = pr / pr.sum(axis=-1, keepdims=True)
            o = np.einsum("bgrt,bgtd->bgrd", pr, Vv).reshape(B, NH * HD)
            x = x + o @ L["wo"].T
            xn = rmsnorm(x, L["ln2"], ident, f32)
            g = xn @ L["wg"].T
            u_ = xn @ L["wu"].T
            x = x + ((g / (f32(1.0) + np.exp(-g))) * u_) @ L["wd"].T
        h = rmsnorm(x, p["norm"], ident, f32)
        logits = h @ p["emb"].T
        hs[:, t] = h
        lg[:, t] = logits
        if t + 1 < T and t + 1 >= P:
            if rng is None:
                nxt = np.argmax(logits, axis=-1)
            else:
                pr = softmax64(logits)
                cdf = np.cumsum(pr, axis=-1)
                u = rng.random(B)
                us[:, t + 1 - P] = u
                nxt = np.minimum((cdf <= u[:, None]).sum(axis=-1), V - 1)
            toks[:, t + 1] = nxt
    return toks, us, hs, lg


def softmax64(logits):
    z = logits.astype(f64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# ----------------------------------------------------------------------------
# sketch (normative)
# ----------------------------------------------------------------------------
def quantize(h):
    """h (N,D) -> int32 q (N,D), plus the reference r and scale (float32)."""
    h = np.asarray(h, dtype=f32)
    a = np.abs(h)
    r = np.partition(a, D - KTOP, axis=1)[:, D - KTOP].astype(f32)   # KTOP-th largest |h_i|
    with np.errstate(divide="ignore"):
        scale = (f32(TARGET) / r).astype(f32)                          # float32 division
    scale = np.where(r > 0, scale, f32(0.0)).astype(f32)
    prod = (h * scale[:, None]).astype(f32)
    q = np.clip(np.rint(prod), -CLAMP, CLAMP).astype(np.int32)       # rint = round-half-even
    return q, r, scale


def key_sigma(key_id):
    """One random 128-bit word per hidden dim; sigma[i, j] = -1 if bit j of word i is set else +1."""
    rng = np.random.default_rng([SEED_KEYS, key_id])
    words = rng.integers(0, 256, size=(D, NBITS // 8), dtype=np.uint8)
    bits = np.unpackbits(words, axis=1, bitorder="little")  # (D,128), bit j of word i
    return (1 - 2 * bits.astype(np.int32))


def sketch_packed(q, sigma):
    """q (N,D) int32, sigma (D,128) -> packed sketch (N,16) uint8. a = q @ sigma is exact in
    float64 (|a| <= 64*127)."""
    a = q.astype(f64) @ sigma.astype(f64)
    return np.packbits(a > 0, axis=1)


def hamming(a, b):
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(axis=-1, dtype=np.int32).astype(np.uint8)


# self-check of the sketch arithmetic against a direct integer implementation
def _sketch_selfcheck():
    rng = np.random.default_rng(1)
    h = (rng.standard_normal((50, D)) * rng.choice([1, 30], size=(50, D), p=[0.95, 0.05])).astype(f32)
    q, r, sc = quantize(h)
    for n in range(50):
        ab = sorted(abs(float(v)) for v in h[n])
        assert f32(ab[-KTOP]) == r[n]
    sig = key_sigma(0)
    a_int = q.astype(np.int64) @ sig.astype(np.int64)
    assert np.array_equal(np.packbits(a_int > 0, axis=1), sketch_packed(q, sig))
    return True


# ----------------------------------------------------------------------------
# statistics helpers
# ----------------------------------------------------------------------------
def fmt_pow(log10v):
    if log10v == -np.inf:
        return "0"
    if log10v > -4:
        return f"{10 ** log10v:.3g}"
    e = math.floor(log10v)
    m = 10 ** (log10v - e)
    if m >= 9.995:
        m, e = 1.0, e + 1
    return f"{m:.1f}e{e}"


def acc_counts(dist):
    """dist: uint8 array of distances -> (counts of d<=tau for each tau, n)."""
    h = np.bincount(dist.ravel(), minlength=NBITS + 1)
    c = np.cumsum(h)
    return [int(c[t]) for t in TAUS], int(dist.size)


def fmt_accept(count, n, power=1):
    """per-position acceptance count/n; power=32 -> per-rollout p^32. 0 counts -> <= (3/n)^power."""
    if count == 0:
        return "≤" + fmt_pow(power * math.log10(3.0 / n))
    return fmt_pow(power * math.log10(count / n))


def fmt_reject(count_over, n, power=OPEN):
    """count_over = positions failing (d>tau). per-rollout reject = 1-(1-f)^32."""
    if count_over == 0:
        f = 3.0 / n
        return "≤" + fmt_pow(math.log10(-math.expm1(power * math.log1p(-f))))
    f = count_over / n
    v = -math.expm1(power * math.log1p(-f))
    return fmt_pow(math.log10(v)) if v > 0 else "0"


def empirical_rollouts(dist, rng, draws):
    """dist (K,S,L): for each key/sequence/draw pick OPEN random positions; returns the max
    distance over the opened positions, flat."""
    K, S, L = dist.shape
    keys = rng.random((K, S, draws, L))
    idx = np.argsort(keys, axis=-1)[..., :OPEN]
    d = np.broadcast_to(dist[:, :, None, :], (K, S, draws, L))
    return np.take_along_axis(d, idx, axis=-1).max(axis=-1).ravel()


def emp_cells(maxd, accept=True):
    n = maxd.size
    cells = []
    for t in TAUS:
        c = int((maxd <= t).sum()) if accept else int((maxd > t).sum())
        cells.append(f"{c / n:.3g}" if c else f"0 (≤{3.0 / n:.1e})")
    return cells, n


# ============================================================================
# 0. validate forward pass
# ============================================================================
log("loading model")
assert _sketch_selfcheck()
P32 = params_from_raw(RAW)
with open(os.path.join(args.model, "expected_greedy.json")) as fh:
    EXP = json.load(fh)

exp_ids = EXP["generated_ids"]
g_toks, _, g_h, g_lg = decode(P32, np.array([EXP["prompt_ids"]]), len(exp_ids), rng=None)
greedy_ok = g_toks[0, len(EXP["prompt_ids"]):].tolist() == exp_ids
n_match = sum(int(a == b) for a, b in zip(g_toks[0, 1:].tolist(), exp_ids))
lg0_diff = float(np.max(np.abs(g_lg[0, 0, :8] - np.array(EXP["logits_pos0_first8"], dtype=f64))))
pf_h, pf_lg = forward(P32, g_toks[:, :-1], "f32")
pf_argmax_ok = np.array_equal(np.argmax(pf_lg[0], axis=-1), g_toks[0, 1:])
pf_vs_dec = float(np.max(np.abs(pf_lg[0] - g_lg[0, :-1])))
pf0_diff = float(np.max(np.abs(pf_lg[0, 0, :8] - np.array(EXP["logits_pos0_first8"], dtype=f64))))
log(f"greedy check: {n_match}/{len(exp_ids)} tokens match, pos0 logits max diff {lg0_diff:.2e}")
assert greedy_ok and lg0_diff < 1e-4 and pf_argmax_ok, "forward pass validation FAILED"

# ============================================================================
# 1. rollouts
# ============================================================================
greedy_prefix = EXP["generated_ids"][:15]   # "Once upon a time, there was a little girl named Lily."
PROMPTS = [
    ("[BOS]", [1]),
    ("'Once upon a time'", [1, 403, 407, 261, 378]),
    ("'Once upon a time, there was a little girl named Lily.'", [1] + greedy_prefix),
    ("'One day,'", [1, 385, 328, 432]),
]
NS, NNEW = args.seqs_per_prompt, args.new_tokens
gen_rng = np.random.default_rng(SEED_GEN)
groups = []   # each: dict(prompt_len, toks, us, h_dec)
for name, pids in PROMPTS:
    pr = np.tile(np.array(pids, dtype=np.int64), (NS, 1))
    toks, us, hdec, _ = decode(P32, pr, NNEW, rng=gen_rng)
    groups.append({"name": name, "P": len(pids), "toks": toks, "us": us, "h_dec": hdec})
log(f"sampled {len(PROMPTS) * NS} sequences x {NNEW} new tokens")

S = len(PROMPTS) * NS
L = NNEW
# train/test split by sequence: first half of each prompt group = train (adversary observes)
is_train = np.concatenate([np.arange(NS) < NS // 2 for _ in PROMPTS])
TOKENS_NEW = np.concatenate([g["toks"][:, g["P"]:] for g in groups])   # (S,L)
n_eos = int((TOKENS_NEW == 2).sum())
n_bos = int((TOKENS_NEW == 1).sum())


def run_variant(p, mode, round_logits=True):
    """Teacher-forced prefill over every sampled sequence. Returns h at generated positions
    (S,L,D) float32 and logits predicting each generated token (S,L,V) float64."""
    hs, lgs = [], []
    for g in groups:
        P = g["P"]
        h, lg = forward(p, g["toks"], mode, round_logits)
        hs.append(h[:, P:P + L].astype(f32))
        lgs.append(lg[:, P - 1:P - 1 + L].astype(f64))
    return np.concatenate(hs), np.concatenate(lgs)


misc_rng = np.random.default_rng(SEED_MISC)

VARIANTS = {}
VARIANTS["f32"] = run_variant(P32, "f32")
log("f32 prefill done")
P64 = map_params(P32, lambda w: w.astype(f64), lambda w: w.astype(f64))
VARIANTS["f64"] = run_variant(P64, "f64")
del P64
PBF = map_params(P32, bf16_round, bf16_round)
VARIANTS["bf16"] = run_variant(PBF, "bf16")
VARIANTS["bf16_f32head"] = (None, run_variant(PBF, "bf16", round_logits=False)[1])
VARIANTS["bf16f"] = run_variant(PBF, "bf16f")
del PBF
log("f64 / bf16 prefill done")
H_DEC = np.concatenate([g["h_dec"][:, g["P"]:g["P"] + L] for g in groups])


def quant_rows(w, levels):
    s = np.max(np.abs(w), axis=1, keepdims=True) / f32(levels)
    s = np.where(s > 0, s, f32(1.0)).astype(f32)
    return (np.clip(np.rint(w / s), -levels, levels) * s).astype(f32)


VARIANTS["int8"] = run_variant(map_params(P32, lambda w: quant_rows(w, 127)), "f32")
VARIANTS["int4"] = run_variant(map_params(P32, lambda w: quant_rows(w, 7)), "f32")
noise_rng = np.random.default_rng([SEED_MISC, 1])
VARIANTS["noise1"] = run_variant(
    map_params(P32, lambda w: (w * (1.0 + 0.01 * noise_rng.standard_normal(w.shape))).astype(f32)), "f32")
rand_rng = np.random.default_rng([SEED_MISC, 2])
PRAND = map_params(P32, lambda w: (0.02 * rand_rng.standard_normal(w.shape)).astype(f32),
                   lambda w: np.ones_like(w))
VARIANTS["randinit"] = run_variant(PRAND, "f32")
log("int8 / int4 / noise / random-init prefill done")

# ============================================================================
# 2. sketches for all keys
# ============================================================================
K = args.keys
SIGMAS = [key_sigma(k) for k in range(K)]
H_REF = VARIANTS["f32"][0]


def sketches_of(h):
    q, _, _ = quantize(h.reshape(-1, D))
    return np.stack([sketch_packed(q, sg) for sg in SIGMAS]).reshape(K, S, L, NBITS // 8)


SK = {"f32": sketches_of(H_REF)}
DIST = {}
for name in ["f64", "bf16", "bf16f", "int8", "int4", "noise1", "randinit"]:
    SK[name] = sketches_of(VARIANTS[name][0])
    DIST[name] = hamming(SK[name], SK["f32"])
DIST["bf16AB"] = hamming(SK["bf16"], SK["bf16f"])
DIST["dec"] = hamming(sketches_of(H_DEC), SK["f32"])
Q_OF = {n: quantize(VARIANTS[n][0].reshape(-1, D))[0] for n in ["f32", "f64", "bf16", "bf16f", "int8", "int4", "noise1"]}
Q_OF["dec"] = quantize(H_DEC.reshape(-1, D))[0]
log("sketches done")

# exact-context ids: two generated positions have identical h (same computation) iff they share
# prompt, position and every token up to and including that position
GROUP = np.repeat(np.arange(len(PROMPTS)), NS)
CTX = np.empty((S, L), dtype=np.int64)
_ctx_map = {}
for s_ in range(S):
    prev = ("g", int(GROUP[s_]))
    for p_ in range(L):
        key_ = (prev, int(TOKENS_NEW[s_, p_]))
        prev = _ctx_map.setdefault(key_, len(_ctx_map))
        CTX[s_, p_] = prev
_ctx_counts = np.bincount(CTX.ravel())
shared_ctx_frac = float((_ctx_counts[CTX] > 1).mean())
train_ctx = set(CTX[is_train].ravel().tolist())
test_in_train_frac = float(np.mean([c in train_ctx for c in CTX[~is_train].ravel().tolist()]))

# (a) unrelated: other sequence (random position), same sequence other position.
# Pairs with an identical context (identical h by construction) are redrawn.
other_seq = np.empty((K, S, L, 2), dtype=np.int64)
same_seq = np.empty((K, S, L), dtype=np.int64)
n_ident_redrawn = 0
for k in range(K):
    off = misc_rng.integers(1, S)
    perm_s = (np.arange(S) + off) % S
    other_seq[k, :, :, 0] = perm_s[:, None]
    pos = misc_rng.integers(0, L, size=(S, L))
    while True:
        bad = CTX[perm_s[:, None], pos] == CTX
        nb = int(bad.sum())
        if nb == 0:
            break
        n_ident_redrawn += nb
        pos[bad] = misc_rng.integers(0, L, size=nb)
    other_seq[k, :, :, 1] = pos
    for s in range(S):
        order = misc_rng.permutation(L)
        cyc = np.empty(L, dtype=np.int64)
        cyc[order] = order[(np.arange(L) + 1) % L]
        same_seq[k, s] = cyc
kidx = np.arange(K)[:, None, None]
sidx = np.arange(S)[None, :, None]
DIST["other_seq"] = hamming(SK["f32"][kidx, other_seq[..., 0], other_seq[..., 1]], SK["f32"])
DIST["same_seq"] = hamming(SK["f32"][kidx, sidx, same_seq], SK["f32"])

# angle-model estimate for unrelated pairs (random-hyperplane theory on q, binomial tail)
def binom_tail_model(qa, qb):
    qa = qa.astype(f64)
    qb = qb.astype(f64)
    cs = np.sum(qa * qb, axis=1) / (np.linalg.norm(qa, axis=1) * np.linalg.norm(qb, axis=1) + 1e-300)
    th = np.arccos(np.clip(cs, -1, 1)) / np.pi
    th = np.clip(th, 1e-12, 1 - 1e-12)
    ks = np.arange(0, max(TAUS) + 1)
    logc = np.array([math.lgamma(NBITS + 1) - math.lgamma(k + 1) - math.lgamma(NBITS - k + 1) for k in ks])
    lp = logc[None, :] + ks[None, :] * np.log(th)[:, None] + (NBITS - ks)[None, :] * np.log1p(-th)[:, None]
    cdf = np.cumsum(np.exp(lp), axis=1)
    return [float(np.mean(cdf[:, t])) for t in TAUS], cs


QREF = quantize(H_REF.reshape(-1, D))[0].reshape(S, L, D)


def binom_upper_model(qa, qb):
    """Per-position mean of P[Binom(128, theta/pi) > tau] (random-hyperplane model of the drift tail)."""
    qa = qa.astype(f64)
    qb = qb.astype(f64)
    cs = np.sum(qa * qb, axis=1) / (np.linalg.norm(qa, axis=1) * np.linalg.norm(qb, axis=1) + 1e-300)
    th = np.clip(np.arccos(np.clip(cs, -1, 1)) / np.pi, 1e-15, 1 - 1e-15)
    res = []
    for t in TAUS:
        ks = np.arange(t + 1, t + 40)   # terms beyond t+40 are negligible for the small angles here
        logc = np.array([math.lgamma(NBITS + 1) - math.lgamma(k + 1) - math.lgamma(NBITS - k + 1) for k in ks])
        lp = logc[None, :] + ks[None, :] * np.log(th)[:, None] + (NBITS - ks)[None, :] * np.log1p(-th)[:, None]
        res.append(float(np.mean(np.exp(lp).sum(axis=1))))
    return res, th
pair_a = QREF[other_seq[0, ..., 0], other_seq[0, ..., 1]].reshape(-1, D)
model_other, cos_other_q = binom_tail_model(pair_a, QREF.reshape(-1, D))
QRAND = quantize(VARIANTS["randinit"][0].reshape(-1, D))[0]
model_rand, _ = binom_tail_model(QRAND, QREF.reshape(-1, D))
pair_s = QREF[np.arange(S)[:, None], same_seq[0]].reshape(-1, D)
model_same, _ = binom_tail_model(pair_s, QREF.reshape(-1, D))

# (b) adversary constants: fit on train sequences, evaluate on test sequences, same key
train_idx = np.where(is_train)[0]
test_idx = np.where(~is_train)[0]
h_mean = H_REF[train_idx].reshape(-1, D).mean(axis=0, dtype=f64).astype(f32)[None, :]
q_mean = quantize(h_mean)[0]
ADV = {n: [] for n in ["bitwise majority", "sketch of mean h", "most frequent sketch", "all-zeros", "all-ones"]}
adv_train_acc24 = {n: [] for n in ADV}
n_unique = []
for k in range(K):
    tr = SK["f32"][k, train_idx].reshape(-1, NBITS // 8)
    te = SK["f32"][k, test_idx]
    bits = np.unpackbits(tr, axis=1)
    consts = {
        "bitwise majority": np.packbits(bits.mean(axis=0) > 0.5),
        "sketch of mean h": sketch_packed(q_mean, SIGMAS[k])[0],
        "all-zeros": np.zeros(NBITS // 8, dtype=np.uint8),
        "all-ones": np.full(NBITS // 8, 255, dtype=np.uint8),
    }
    uniq, cnt = np.unique(tr, axis=0, return_counts=True)
    n_unique.append(len(uniq))
    consts["most frequent sketch"] = uniq[np.argmax(cnt)]
    for n, c in consts.items():
        ADV[n].append(hamming(te, c[None, None, :]))
        adv_train_acc24[n].append(float((hamming(tr, c[None, :]) <= 24).mean()))
ADV = {n: np.stack(v) for n, v in ADV.items()}   # (K, S_test, L)

# (b', extra) per-position lookup-table forgery: the adversary knows its own rollout tokens and
# commits, at each position, the mean train h over train positions with the same token key
# (no forward pass over the real context).  Evaluated on test positions 1..L-2.
prev_tok = np.concatenate([np.stack([np.full(NS, g["toks"][0, g["P"] - 1])] * 1, axis=1) for g in groups])
PREV = np.concatenate([prev_tok, TOKENS_NEW[:, :-1]], axis=1)               # token before each position
NEXT = np.concatenate([TOKENS_NEW[:, 1:], np.full((S, 1), -1)], axis=1)      # token predicted from h
TABLE_KEYS = {
    "current token": TOKENS_NEW.astype(np.int64),
    "(previous, current) token": PREV * V + TOKENS_NEW,
    "(current, next) token": TOKENS_NEW * (V + 1) + (NEXT + 1),
    "(previous, current, next) token": (PREV * V + TOKENS_NEW) * (V + 1) + (NEXT + 1),
}
pos_sl = slice(1, L - 1)
Hd_train = H_REF[train_idx].reshape(-1, D).astype(f64)
TAB = {}
tab_cover = {}
fallback_key = TABLE_KEYS["current token"]
for tname, keys_ in TABLE_KEYS.items():
    ktr = keys_[train_idx].ravel()
    uk, inv = np.unique(ktr, return_inverse=True)
    sums = np.zeros((len(uk), D))
    np.add.at(sums, inv, Hd_train)
    means = (sums / np.bincount(inv)[:, None]).astype(f32)
    # fallback table on current token, then the global mean
    fk, finv = np.unique(fallback_key[train_idx].ravel(), return_inverse=True)
    fs = np.zeros((len(fk), D))
    np.add.at(fs, finv, Hd_train)
    fmeans = (fs / np.bincount(finv)[:, None]).astype(f32)
    kte = keys_[test_idx][:, pos_sl].ravel()
    j = np.clip(np.searchsorted(uk, kte), 0, len(uk) - 1)
    hit = uk[j] == kte
    fte = fallback_key[test_idx][:, pos_sl].ravel()
    fj = np.clip(np.searchsorted(fk, fte), 0, len(fk) - 1)
    fhit = fk[fj] == fte
    forged = np.where(hit[:, None], means[j], np.where(fhit[:, None], fmeans[fj], h_mean))
    tab_cover[tname] = float(hit.mean())
    fq = quantize(forged)[0]
    Lt = L - 2
    TAB[tname] = np.stack([hamming(sketch_packed(fq, SIGMAS[k]).reshape(len(test_idx), Lt, -1),
                                   SK["f32"][k, test_idx, 1:L - 1]) for k in range(K)])
log("adversary done")

# ============================================================================
# 3. report
# ============================================================================
out("# grail hidden-state sketch study — stories260K (numpy)")
out()
out(f"Model: `{args.model}` — d={D}, {NL} layers, {NH} heads / {NKV} KV heads, head_dim {HD}, FFN {FF}, vocab {V}. "
    f"Sketch: k=ceil(d/16)={KTOP}, target {TARGET:g}, clamp ±{CLAMP}, {NBITS} bits; {OPEN} positions opened per rollout; "
    f"{K} sketch keys.")
out()
out("## 0. Forward-pass validation (vs expected_greedy.json)")
out()
out(table(["check", "result"], [
    ["greedy tokens from [BOS] (KV-cache decode)", f"{n_match}/{len(exp_ids)} match — {'PASS' if greedy_ok else 'FAIL'}"],
    ["max abs diff, first 8 logits at pos 0 (decode)", f"{lg0_diff:.2e}"],
    ["max abs diff, first 8 logits at pos 0 (prefill)", f"{pf0_diff:.2e}"],
    ["prefill argmax == greedy tokens (all 120)", "PASS" if pf_argmax_ok else "FAIL"],
    ["max abs logit diff prefill vs decode (120 pos)", f"{pf_vs_dec:.2e}"],
]))
out()
out("## 1. Data")
out()
out(f"{S} sequences ({NS} per prompt; prompts: {', '.join(n for n, _ in PROMPTS)}) × {L} new tokens, temperature 1.0, "
    f"inverse-CDF sampling in token-id order, numpy seed {SEED_GEN}; {S * L} generated positions "
    f"(EOS id 2 sampled {n_eos} times, BOS id 1 (llama2.c story separator) {n_bos} times; generation "
    f"continues through both). h = teacher-forced fp32 prefill over the whole "
    f"sequence, at each generated token's position. {shared_ctx_frac:.3f} of generated positions share their exact "
    f"context (prompt + all tokens so far) with another sequence (identical h, mostly the first few tokens); "
    f"{test_in_train_frac:.3f} of test positions have an exact context that also occurs in train. Train (adversary observes) = first half of each prompt group "
    f"({len(train_idx)} seqs, {len(train_idx) * L} positions); test = the other {len(test_idx)} seqs. "
    f"Per-position trials = {K} keys × positions. `≤x` = zero observed, 95% upper bound 3/N (per rollout: (3/N)^32).")
out()

# ---- (a)+(b) acceptance tables
def acc_rows(entries):
    rows_p, rows_r = [], []
    for label, dist in entries:
        cnts, n = acc_counts(dist)
        md = float(dist.mean())
        rows_p.append([label, f"{md:.1f}", f"{n:,}"] + [fmt_accept(c, n) for c in cnts])
        rows_r.append([label] + [fmt_accept(c, n, OPEN) for c in cnts])
    return rows_p, rows_r


out("## (a) Unrelated vectors — false accept")
out()
entries_a = [("other sequence, random position", DIST["other_seq"]),
             ("same sequence, other position", DIST["same_seq"]),
             ("random-init model, same tokens", DIST["randinit"])]
rp, rr = acc_rows(entries_a)
out(f"Other-sequence pairs whose exact context was identical (identical h — a legitimately equal computation, not a "
    f"false accept) were redrawn: {n_ident_redrawn} of {K * S * L} draws.")
out()
out("Per-position acceptance rate (distance ≤ tau):")
out()
out(table(["source", "mean dist", "N"] + [f"τ={t}" for t in TAUS], rp))
out()
out("Per-rollout false accept, p^32 (independence assumption):")
out()
out(table(["source"] + [f"τ={t}" for t in TAUS], rr))
out()
out("Random-hyperplane model (per-position mean of P[Binom(128, θ/π) ≤ τ] with θ the angle between the two q "
    "vectors, key 0 pairs) — a smooth estimate of the tail where the empirical count is 0:")
out()
out(table(["source"] + [f"τ={t}" for t in TAUS], [
    ["other sequence (model)"] + [fmt_pow(math.log10(v)) if v > 0 else "0" for v in model_other],
    ["same sequence (model)"] + [fmt_pow(math.log10(v)) if v > 0 else "0" for v in model_same],
    ["random-init (model)"] + [fmt_pow(math.log10(v)) if v > 0 else "0" for v in model_rand],
    ["other sequence (model) ^32"] + [fmt_pow(32 * math.log10(v)) if v > 0 else "0" for v in model_other],
]))
out()
rng_emp = np.random.default_rng([SEED_MISC, 3])
rows = []
for label, dist in entries_a:
    cells, n = emp_cells(empirical_rollouts(dist, rng_emp, args.rollout_draws))
    rows.append([label, f"{n:,}"] + cells)
out("Empirical per-rollout acceptance (32 random opened positions per key × sequence × draw; the whole rollout "
    "committed from the unrelated source):")
out()
out(table(["source", "rollouts"] + [f"τ={t}" for t in TAUS], rows))
out()

out("## (b) Best constant commitment (fit on train sketches, same key, scored on test)")
out()
entries_b = list(ADV.items())
rp, rr = acc_rows(entries_b)
best_p, best_r = ["**best of these**", "", ""], ["**best of these**"]
for j, t in enumerate(TAUS):
    cn = [acc_counts(ADV[n])[0][j] for n in ADV]
    nn = ADV["all-zeros"].size
    best_p.append("**" + fmt_accept(max(cn), nn) + "**")
    best_r.append("**" + fmt_accept(max(cn), nn, OPEN) + "**")
rp.append(best_p)
rr.append(best_r)
out("Per-position acceptance rate:")
out()
out(table(["constant", "mean dist", "N"] + [f"τ={t}" for t in TAUS], rp))
out()
out("Per-rollout false accept, p^32:")
out()
out(table(["constant"] + [f"τ={t}" for t in TAUS], rr))
out()
rows = []
for label, dist in entries_b:
    cells, n = emp_cells(empirical_rollouts(dist, rng_emp, args.rollout_draws))
    rows.append([label, f"{n:,}"] + cells)
out("Empirical per-rollout acceptance (same constant at all 32 opened positions):")
out()
out(table(["constant", "rollouts"] + [f"τ={t}" for t in TAUS], rows))
out()
out(f"Train-set acceptance at τ=24 (what the adversary sees when choosing): "
    + ", ".join(f"{n} {np.mean(v):.3g}" for n, v in adv_train_acc24.items())
    + f". Distinct sketches among {len(train_idx) * L} train positions: mean {np.mean(n_unique):.0f} per key.")
out()

out("## (b') Extra: per-position lookup-table forgery (fit on train, scored on test positions 1..L-2)")
out()
out("The adversary knows the tokens of its own rollout and, without running the model on the real context, commits at "
    "each position the mean train h of all train positions with the same token key (fallback: current-token table, "
    "then global mean). Key coverage on test: "
    + ", ".join(f"{n} {c:.2f}" for n, c in tab_cover.items()) + ".")
out()
rp, rr = acc_rows(list(TAB.items()))
out(table(["table key", "mean dist", "N"] + [f"τ={t}" for t in TAUS], rp))
out()
out("Per-rollout, p^32:")
out()
out(table(["table key"] + [f"τ={t}" for t in TAUS], rr))
out()
rows = []
for label, dist in TAB.items():
    cells, n = emp_cells(empirical_rollouts(dist, rng_emp, args.rollout_draws))
    rows.append([label, f"{n:,}"] + cells)
out("Empirical per-rollout acceptance (32 random opened positions, all forged):")
out()
out(table(["table key", "rollouts"] + [f"τ={t}" for t in TAUS], rows))
out()

# ---- (c)/(d) drift tables
def drift_rows(entries):
    rows_d, rows_f = [], []
    for label, dist in entries:
        d = dist.ravel().astype(np.int32)
        n = d.size
        rows_d.append([label, f"{n:,}", f"{d.mean():.2f}", f"{np.percentile(d, 99):.0f}",
                       f"{np.percentile(d, 99.9):.0f}", f"{d.max()}"])
        cells = []
        for t in TAUS:
            c = int((d > t).sum())
            cells.append((f"{c / n:.3g}" if c else f"0 (≤{3.0 / n:.1e})") + " / " + fmt_reject(c, n))
        rows_f.append([label] + cells)
    return rows_d, rows_f


EPS_LIST = [0.0, 1e-3, 5e-3, 0.02, 0.05, 0.1, 0.15, 0.2]


def logprob_cdf_stats(name, rng, ref="f32"):
    lg_ref = VARIANTS[ref][1]
    lg_v = VARIANTS[name][1]
    p_ref = softmax64(lg_ref)
    p_v = softmax64(lg_v)
    x = TOKENS_NEW
    lp_ref = np.log(np.take_along_axis(p_ref, x[..., None], -1)[..., 0])
    lp_v = np.log(np.take_along_axis(p_v, x[..., None], -1)[..., 0])
    dlp = np.abs(lp_v - lp_ref).ravel()
    C_ref = np.cumsum(p_ref, axis=-1)
    C_v = np.cumsum(p_v, axis=-1)

    def interval(C):
        hi = np.take_along_axis(C, x[..., None], -1)[..., 0]
        lo = np.where(x > 0, np.take_along_axis(C, np.maximum(x - 1, 0)[..., None], -1)[..., 0], 0.0)
        return lo, hi

    a, b = interval(C_ref)
    a2, b2 = interval(C_v)
    shift = np.maximum(np.abs(a - a2), np.abs(b - b2)).ravel()
    u = a + rng.random(a.shape) * (b - a)                 # u uniform in the f32 interval
    outside = np.maximum(np.maximum(a2 - u, u - b2), 0.0)
    u_at_b2 = (u >= b2)                                     # half-open interval: u == b2 is outside
    frac = {}
    for eps in EPS_LIST:
        sim = ((outside > eps) | (u_at_b2 & (eps == 0.0))).mean()
        ov = np.maximum(0.0, np.minimum(b, b2 + eps) - np.maximum(a, a2 - eps))
        ana = np.mean(1.0 - ov / np.maximum(b - a, 1e-300))
        frac[eps] = (float(sim), float(ana))
    tok_v = np.minimum((C_v <= u[..., None]).sum(axis=-1), V - 1)
    flip = float((tok_v != x).mean())
    return dlp.reshape(x.shape), shift, frac, flip


out("## (c) Honest drift vs the fp32 prefill (same tokens, teacher-forced)")
out()
entries_c = [("(i) float64 vs float32", DIST["f64"]),
             ("(ii) bf16 engine A (HF-eager-like) vs float32", DIST["bf16"]),
             ("(ii') bf16 engine B (fused/flash-like) vs float32", DIST["bf16f"]),
             ("(ii'') bf16 engine A vs bf16 engine B", DIST["bf16AB"]),
             ("(iii) fp32 KV-cache decode vs fp32 prefill", DIST["dec"])]
model_pairs_c = [("f64", "f32"), ("bf16", "f32"), ("bf16f", "f32"), ("bf16", "bf16f"), ("dec", "f32")]
entries_d = [("(i) int8 per-row weights", DIST["int8"]),
             ("(ii) 1% rel. weight noise", DIST["noise1"]),
             ("(extra) int4 per-row weights", DIST["int4"])]
rd, rf = drift_rows(entries_c)
out("Sketch distance distribution (over keys × positions):")
out()
out(table(["comparison", "N", "mean", "p99", "p99.9", "max"], rd))
out()
out("Fraction of positions with distance > τ (honest false-reject per position / per rollout 1-(1-f)^32):")
out()
out(table(["comparison"] + [f"τ={t}" for t in TAUS], rf))
out()
rows = []
for label, dist in entries_c:
    cells, n = emp_cells(empirical_rollouts(dist, rng_emp, args.rollout_draws), accept=False)
    rows.append([label, f"{n:,}"] + cells)
out("Empirical per-rollout rejection (any of 32 opened positions over τ):")
out()
out(table(["comparison", "rollouts"] + [f"τ={t}" for t in TAUS], rows))
out()
rows = []
for (label, _), (na, nb) in zip(entries_c, model_pairs_c):
    mres, th = binom_upper_model(Q_OF[na], Q_OF[nb])
    rows.append([label, f"{128 * th.mean():.2f}", f"{128 * np.percentile(th, 99.9):.1f}"]
                + [fmt_pow(math.log10(v)) if v > 0 else "<1e-300" for v in mres])
out("Random-hyperplane model of the honest tail (θ = angle between the two quantized vectors q; per-position mean of "
    "P[Binom(128, θ/π) > τ]; a smooth extrapolation where the empirical count is 0):")
out()
out(table(["comparison", "mean 128θ/π", "p99.9 128θ/π"] + [f"τ={t}" for t in TAUS], rows))
out()

cdf_rng = np.random.default_rng([SEED_MISC, 4])
LPC = {n: logprob_cdf_stats(n, cdf_rng) for n in ["f64", "bf16", "bf16_f32head", "bf16f", "int8", "noise1", "int4"]}
LPC["bf16f|bf16"] = logprob_cdf_stats("bf16f", cdf_rng, ref="bf16")
lab = {"f64": "float64", "bf16": "bf16 engine A (bf16 logits)", "bf16_f32head": "bf16 engine A, logits kept fp32",
       "bf16f": "bf16 engine B (bf16 logits)", "bf16f|bf16": "bf16 engine B vs engine A (ref = A)",
       "int8": "int8 per-row", "noise1": "1% weight noise", "int4": "int4 per-row"}
out("Absolute logprob drift |logprob_variant − logprob_f32| of the sampled token (temperature 1), over all generated positions "
    "(int8 / noise / int4 rows belong to (d), shown here for comparison):")
out()
rows = []
for n, (dlp, shift, frac, flip) in LPC.items():
    rows.append([lab[n], f"{dlp.mean():.2e}", f"{np.percentile(dlp, 99):.2e}", f"{np.percentile(dlp, 99.9):.2e}",
                 f"{dlp.max():.2e}"])
out(table(["variant", "mean", "p99", "p99.9", "max"], rows))
out()
out("Inverse-CDF interval drift of the sampled token ([C_{x-1}, C_x) in token-id order): max endpoint shift, and "
    "fraction of positions where u ~ U(f32 interval) lands outside the variant's interval by more than ε "
    "(simulated, one u per position / analytic expectation):")
out()
rows = []
for n, (dlp, shift, frac, flip) in LPC.items():
    rows.append([lab[n], f"{shift.mean():.2e}", f"{np.percentile(shift, 99.9):.2e}", f"{shift.max():.2e}"]
                + [f"{frac[e][0]:.3g} / {frac[e][1]:.3g}" for e in EPS_LIST]
                + [f"{flip:.3g}"])
out(table(["variant", "mean shift", "p99.9 shift", "max shift"] + [f"ε={e:g}" for e in EPS_LIST]
          + ["token differs (same u)"], rows))
out()
out("Per-rollout sampling-check rejection 1-(1-f)^32 from the analytic per-position fraction f above "
    "(honest rows: false rejects; cheap-model rows: detection):")
out()
rows = []
for n, (dlp, shift, frac, flip) in LPC.items():
    rows.append([lab[n]] + [f"{1.0 - (1.0 - frac[e][1]) ** 32:.3g}" for e in EPS_LIST])
out(table(["variant"] + [f"ε={e:g}" for e in EPS_LIST], rows))
out()
LP_MED = [0.02, 0.05, 0.1, 0.2]
LP_CAP = [0.5, 1.0, 2.0]
lp_rng = np.random.default_rng([SEED_MISC, 5])
out("Rollout-level logprob statistic: median of |Δlogprob| over 32 random opened positions of one sequence "
    "(20,000 rollouts per variant), and the per-position maximum:")
out()
rows = []
for n, (dlp, shift, frac, flip) in LPC.items():
    nseq, npos = dlp.shape
    seqs = lp_rng.integers(0, nseq, 20000)
    pos = np.argsort(lp_rng.random((20000, npos)), axis=1)[:, :32]
    vals = dlp[seqs[:, None], pos]
    med = np.median(vals, axis=1)
    mx = vals.max(axis=1)
    rows.append([lab[n], f"{np.median(med):.3g}", f"{np.percentile(med, 99.9):.3g}", f"{med.max():.3g}"]
                + [f"{(med > t).mean():.3g}" for t in LP_MED]
                + [f"{(mx > c).mean():.3g}" for c in LP_CAP])
out(table(["variant", "median of medians", "p99.9 median", "max median"]
          + [f"P[median>{t:g}]" for t in LP_MED] + [f"P[max>{c:g}]" for c in LP_CAP], rows))
out()

out("## (d) Nearby but different model vs the fp32 model (same tokens)")
out()
rd, rf = drift_rows(entries_d)
out(table(["model", "N", "mean", "p99", "p99.9", "max"], rd))
out()
rp, rr = acc_rows(entries_d)
out("Acceptance (cheater passes) per position:")
out()
out(table(["model", "mean dist", "N"] + [f"τ={t}" for t in TAUS], rp))
out()
out("Acceptance per rollout, p^32:")
out()
out(table(["model"] + [f"τ={t}" for t in TAUS], rr))
out()
rows = []
for label, dist in entries_d:
    cells, n = emp_cells(empirical_rollouts(dist, rng_emp, args.rollout_draws))
    rows.append([label, f"{n:,}"] + cells)
out("Empirical per-rollout acceptance:")
out()
out(table(["model", "rollouts"] + [f"τ={t}" for t in TAUS], rows))
out()
out("Token disagreement with the fp32 model under inverse-CDF sampling with the same u (u uniform in the fp32 "
    "interval of the actually sampled token): "
    + ", ".join(f"{lab[n]} {LPC[n][3]:.3g}" for n in ["int8", "int4", "noise1", "bf16", "bf16f", "bf16f|bf16", "f64"]) + ".")
out()

# ---- (e) activation statistics
out("## (e) Massive activations / concentration of h (fp32, generated positions)")
out()
Hf = H_REF.reshape(-1, D).astype(f64)
mabs = np.abs(Hf).mean(axis=0)
order = np.argsort(-mabs)
sq = Hf ** 2
tot = sq.sum(axis=1)
top3 = np.sort(sq, axis=1)[:, -3:].sum(axis=1) / tot
top1 = sq.max(axis=1) / tot
fixed3 = sq[:, order[:3]].sum(axis=1) / tot
rng_e = np.random.default_rng([SEED_MISC, 5])
ia = rng_e.integers(0, Hf.shape[0], 20000)
ib = rng_e.integers(0, Hf.shape[0], 20000)
keep = ia != ib
cos_h = np.sum(Hf[ia] * Hf[ib], axis=1) / np.sqrt(tot[ia] * tot[ib])
cos_h = cos_h[keep]
seq_of = np.repeat(np.arange(S), L)
cos_adj = np.sum(H_REF[:, 1:].astype(f64) * H_REF[:, :-1], axis=-1) / np.sqrt(
    np.sum(H_REF[:, 1:].astype(f64) ** 2, -1) * np.sum(H_REF[:, :-1].astype(f64) ** 2, -1))
qf, rr_, sc_ = quantize(H_REF.reshape(-1, D))
aq = np.abs(qf)
clamped = (aq == CLAMP).sum(axis=1)
zeros = (qf == 0).sum(axis=1)
absH = np.abs(Hf)
ratio = np.sort(absH, axis=1)[:, -1] / rr_.astype(f64)
topk_dims = np.argsort(-absH, axis=1)[:, :KTOP]
dim_freq = np.bincount(topk_dims.ravel(), minlength=D) / Hf.shape[0]
fo = np.argsort(-dim_freq)[:6]
Hr = VARIANTS["randinit"][0].reshape(-1, D).astype(f64)
cos_r = np.sum(Hr * Hf, axis=1) / np.sqrt((Hr ** 2).sum(1) * tot)
out(table(["statistic", "value"], [
    ["‖h‖₂ mean (min, max)", f"{np.sqrt(tot).mean():.2f} ({np.sqrt(tot).min():.2f}, {np.sqrt(tot).max():.2f})"],
    ["per-dim mean \\|h\\|: top 8 dims (dim: value)", ", ".join(f"{i}: {mabs[i]:.2f}" for i in order[:8])],
    ["per-dim mean \\|h\\|: median dim / smallest dim", f"{np.median(mabs):.3f} / {mabs.min():.3f}"],
    ["share of ‖h‖² in the top-3 \\|h_i\\| of each position (mean, p10, p90)",
     f"{top3.mean():.3f} ({np.percentile(top3, 10):.3f}, {np.percentile(top3, 90):.3f})"],
    ["share of ‖h‖² in the single largest \\|h_i\\| (mean)", f"{top1.mean():.3f}"],
    [f"share of ‖h‖² in the 3 fixed dims with largest mean \\|h\\| ({', '.join(map(str, order[:3]))})", f"{fixed3.mean():.3f}"],
    ["uniform-spread reference for top-3 share", f"{3 / D:.3f}"],
    ["cosine(h_i, h_j), random pairs: mean (p1, p50, p99)",
     f"{cos_h.mean():.3f} ({np.percentile(cos_h, 1):.3f}, {np.percentile(cos_h, 50):.3f}, {np.percentile(cos_h, 99):.3f})"],
    ["cosine(q_i, q_j), random other-sequence pairs: mean (p99, max)",
     f"{cos_other_q.mean():.3f} ({np.percentile(cos_other_q, 99):.3f}, {cos_other_q.max():.3f})"],
    ["cosine of adjacent positions h_t, h_{t-1}: mean", f"{cos_adj.mean():.3f}"],
    ["cosine(h_randinit, h_true) same position: mean", f"{cos_r.mean():.3f}"],
    ["expected Hamming for mean random-pair angle, 128·θ/π", f"{128 * np.arccos(cos_h.mean()) / np.pi:.1f}"],
    [f"dims most often among the top-{KTOP} \\|h_i\\| (dim: freq)", ", ".join(f"{i}: {dim_freq[i]:.2f}" for i in fo)],
    [f"max\\|h\\| / r  (r = {KTOP}th largest \\|h\\|): mean (p99, max); clamp hit above {CLAMP / TARGET:.2f}",
     f"{ratio.mean():.2f} ({np.percentile(ratio, 99):.2f}, {ratio.max():.2f})"],
    ["positions with ≥1 coordinate clamped at ±127", f"{(clamped > 0).mean():.4f}"],
    ["clamped coordinates per position: mean", f"{clamped.mean():.3f}"],
    ["q_i == 0 per position: mean (min, max) of 64", f"{zeros.mean():.2f} ({zeros.min()}, {zeros.max()})"],
    ["mean \\|q_i\\| (all dims) / median \\|q_i\\|", f"{aq.mean():.2f} / {np.median(aq):.1f}"],
]))
out()
wall = time.time() - T_START
out(f"Wall time: {wall:.1f} s (numpy {np.__version__}, {os.cpu_count()} CPUs).")

text = "\n".join(REPORT)
with open(os.path.join(args.out, "report.md"), "w") as fh:
    fh.write(text + "\n")
print()
print(text)
