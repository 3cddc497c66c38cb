#!/usr/bin/env python3
"""Independent reference implementation of the grail v1 protocol constructions.

Written from PROTOCOL.md (and the known-answer vectors in tests/vectors/*.json)
alone, without reading the Rust implementation, as an interoperability check of
the specification. It recomputes every vector case's `output` from its `input`:

  hash.json         §2   derive(label, parts)  (BLAKE3 derive_key over enc(parts))
  fingerprint.json  §3   weight fingerprint from in-line tensors, and from a
                         model directory (safetensors / index.json) relative to tests/
  window.json       §4   window start, deadline block, drand rounds g and c
  seeds.json        §4.1-4.5 problem seed, window randomness, rollout seed,
                         sketch key, challenge randomness
  uniforms.json     §5.1 per-position uniforms from ChaCha20(rollout_seed)
  sampling.json     §5.2-5.3 inverse-CDF token, logprob, CDF interval
  sketch.json       §6.4 quantization, plane words, SimHash sketch
  commit.json       §6.1-6.3 commitment encoding, commit root, commit binding
  challenge.json    §7.1 opened positions
  window_file.json  §8   window file decoding (all decoding rules), per-rollout
                         commit root and signed message
  keys.json         §9   SURI -> sr25519 public key and SS58; signature verification
  challenges.json   §13  challenge_assignment: seed -> kind and difficulty (§13.2);
                         challenge, SAT: the §13.1 stream and the §13.3 generator
                         (parameters, dimacs, reference_answer); the user/system
                         `messages` are NOT compared (§13.5 pins their text only
                         by the vectors);
                         challenge, math: SKIPPED (the templates, draws and answer
                         formulas are normative only in the challenges::math module);
                         only their reference_answer is checked to parse under
                         §13.5's math-answer rules and round-trip to canonical text;
                         challenge_score, SAT: extraction, SAT parsing, correctness
                         (any satisfying assignment), format and total (§13.5-13.6);
                         challenge_score, math: computed only where the completion
                         alone decides the score (no block, unparsable block, or a
                         parsed 0, which §13.4's "every answer is nonzero" makes
                         wrong); where the block holds the unknown reference answer,
                         SKIPPED, with format alone checked (assuming a well-formed
                         reference);
                         advantages: GRPO advantages bit for bit (advantage_bits is
                         the f64 bit pattern as big-endian hex) (§13.6)

ChaCha20 (RFC 8439 block function, zero nonce, counter from 0), base58, SS58 and
the f32 arithmetic of the sketch, and §13's draws and answer parsers are written
here. Two things the key vectors
need were missing from the first draft of PROTOCOL.md and were taken from
Substrate's public conventions (both are now specified in §9): the development
phrase behind //Alice, //Bob (DEV_PHRASE below) and the SURI grammar (`//hard`
and `/soft` junctions, SCALE-encoded junction chain codes, `0x` hex mini
secrets, `///password`). BLAKE3 comes from the `blake3` package,
sr25519 (schnorrkel) from `py-sr25519-bindings`, the BIP-39 English word
list from `mnemonic`. Without the latter two, the key cases are reported as
skipped (with the reason) instead of failing.

Comparison: integers, strings, booleans and lists exactly; non-integer numbers to
1e-12 relative. For window_file / verify cases that expect an error, only `valid`
is compared; the rule this implementation found violated is printed beside the
Rust implementation's error variant name.

Run (from the repository root):

    python3 -m venv scripts/.venv
    scripts/.venv/bin/pip install blake3 py-sr25519-bindings mnemonic
    scripts/.venv/bin/python scripts/protocol_ref.py [-v]

It prints one line per vector file, `file: N/N cases agree` (plus skip counts,
each skip with its reason, and a note naming output fields not compared),
then `N passed, N failed` (`, N skipped` when any were), and exits 0 iff no case disagrees.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import sys

try:
    import blake3  # type: ignore
except ImportError:  # pragma: no cover - the whole script needs it
    sys.stderr.write("protocol_ref.py needs the `blake3` package (see the docstring)\n")
    sys.exit(2)

try:
    import sr25519  # type: ignore  (py-sr25519-bindings)
except ImportError:
    sr25519 = None

try:
    import mnemonic as _mnemonic  # type: ignore
except ImportError:
    _mnemonic = None

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")
VECTORS = os.path.join(TESTS, "vectors")

# §10 parameters
PROTOCOL_VERSION = 1
WINDOW_LENGTH = 30
CHALLENGE_REVEAL_DELAY_SECS = 6
MAX_PROMPT_TOKENS = 4096
MAX_COMPLETION_TOKENS = 8192
MAX_TEMPERATURE_MILLI = 4000
MAX_WINDOW_FILE_BYTES = 512 * 1024 * 1024
MAX_ROLLOUTS_PER_FILE = 65536
SKETCH_REF_RANK_DIVISOR = 16
SKETCH_SCALE = 32.0
SKETCH_CLAMP = 127
SKETCH_MIN_REFERENCE = 2.0 ** -64
SKETCH_MAX_HAMMING = 20
CHALLENGE_POSITIONS = 32
SAMPLING_CDF_EPSILON = 0.15
RECORD_FIXED = 102
RECORD_MIN = RECORD_FIXED + 4 + 24
RECORD_MAX = RECORD_FIXED + 4 * MAX_PROMPT_TOKENS + 24 * MAX_COMPLETION_TOKENS
assert RECORD_MIN == 130 and RECORD_MAX == 213094

MASK32 = 0xFFFFFFFF
MASK64 = (1 << 64) - 1


class Skip(Exception):
    """A case this implementation cannot check (missing library)."""


class Reject(Exception):
    """A decoding / verification rule was violated; the message names it."""


# ---------------------------------------------------------------- encodings (§0)

def u16(x: int) -> bytes:
    return struct.pack("<H", x)


def u32(x: int) -> bytes:
    return struct.pack("<I", x)


def u64(x: int) -> bytes:
    return struct.pack("<Q", x)


def f32(x: float) -> bytes:
    return struct.pack("<f", x)


def f64(x: float) -> bytes:
    return struct.pack("<d", x)


def to_f32(x: float) -> float:
    """Round a double to the nearest binary32 (ties to even), as a double."""
    return struct.unpack("<f", struct.pack("<f", x))[0]


# ---------------------------------------------------------------- hashing (§2)

def blake3_derive_key(context: str, material: bytes) -> bytes:
    return blake3.blake3(material, derive_key_context=context).digest()


def enc(parts: list[bytes]) -> bytes:
    return b"".join(u64(len(p)) + p for p in parts)


def derive(label: str, parts: list[bytes]) -> bytes:
    return blake3_derive_key(label, enc(parts))


# ---------------------------------------------------------------- ChaCha20 (§0)

def _rotl(v: int, c: int) -> int:
    return ((v << c) & MASK32) | (v >> (32 - c))


def _quarter(s: list[int], a: int, b: int, c: int, d: int) -> None:
    s[a] = (s[a] + s[b]) & MASK32; s[d] = _rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & MASK32; s[b] = _rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & MASK32; s[d] = _rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & MASK32; s[b] = _rotl(s[b] ^ s[c], 7)


def chacha20_block(key: bytes, counter: int) -> bytes:
    """RFC 8439 block function with a zero nonce (counter < 2^32)."""
    assert len(key) == 32 and 0 <= counter < 2 ** 32
    init = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    init += list(struct.unpack("<8I", key))
    init += [counter, 0, 0, 0]
    s = list(init)
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12); _quarter(s, 1, 5, 9, 13)
        _quarter(s, 2, 6, 10, 14); _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15); _quarter(s, 1, 6, 11, 12)
        _quarter(s, 2, 7, 8, 13); _quarter(s, 3, 4, 9, 14)
    return struct.pack("<16I", *[(x + y) & MASK32 for x, y in zip(s, init)])


class ChaCha20Stream:
    """The keystream of ChaCha20(key), with random access by byte offset."""

    def __init__(self, key: bytes):
        self.key = key
        self.cache: dict[int, bytes] = {}

    def block(self, i: int) -> bytes:
        b = self.cache.get(i)
        if b is None:
            b = self.cache[i] = chacha20_block(self.key, i)
        return b

    def bytes_at(self, offset: int, n: int) -> bytes:
        out = bytearray()
        while n > 0:
            blk, off = divmod(offset, 64)
            take = min(n, 64 - off)
            out += self.block(blk)[off:off + take]
            offset += take
            n -= take
        return bytes(out)

    def u64(self, i: int) -> int:
        """The i-th u64: keystream bytes 8i .. 8i+8, little-endian."""
        return int.from_bytes(self.bytes_at(8 * i, 8), "little")


# Self-test against RFC 8439 §2.3.2's block-function vector (its nonce is not
# zero, so test the block function with the general state here).
def _rfc8439_selftest() -> None:
    key = bytes(range(32))
    init = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    init += list(struct.unpack("<8I", key)) + [1, 0x09000000, 0x4A000000, 0x00000000]
    s = list(init)
    for _ in range(10):
        _quarter(s, 0, 4, 8, 12); _quarter(s, 1, 5, 9, 13)
        _quarter(s, 2, 6, 10, 14); _quarter(s, 3, 7, 11, 15)
        _quarter(s, 0, 5, 10, 15); _quarter(s, 1, 6, 11, 12)
        _quarter(s, 2, 7, 8, 13); _quarter(s, 3, 4, 9, 14)
    out = struct.pack("<16I", *[(x + y) & MASK32 for x, y in zip(s, init)])
    assert out[:16].hex() == "10f1e7e4d13b5915500fdd1fa32071c4", out[:16].hex()


_rfc8439_selftest()


# ---------------------------------------------------------------- §3 fingerprint

FP_LABEL = "grail/v1/weight-fingerprint"


def fingerprint_of(tensors: list[tuple[str, str, list[int], bytes]]) -> bytes:
    names = [t[0] for t in tensors]
    if len(set(names)) != len(names):
        raise Reject("§3: a tensor name occurs twice")
    out = bytearray(u64(len(tensors)))
    for name, dtype, shape, data in sorted(tensors, key=lambda t: t[0].encode("utf-8")):
        nb, db = name.encode("utf-8"), dtype.encode("utf-8")
        out += u64(len(nb)) + nb + u64(len(db)) + db + u32(len(shape))
        for dim in shape:
            out += u64(dim)
        out += u64(len(data)) + blake3.blake3(data).digest()
    return blake3_derive_key(FP_LABEL, bytes(out))


def _no_dup_object(pairs):
    d = {}
    for k, v in pairs:
        if k in d:
            raise Reject(f"§3: tensor name {k!r} occurs twice in one header")
        d[k] = v
    return d


def read_safetensors(path: str) -> list[tuple[str, str, list[int], bytes]]:
    with open(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 8:
        raise Reject(f"§3: {path}: shorter than the header length")
    n = struct.unpack("<Q", raw[:8])[0]
    if 8 + n > len(raw):
        raise Reject(f"§3: {path}: header length {n} past end of file")
    header = json.loads(raw[8:8 + n].decode("utf-8"), object_pairs_hook=_no_dup_object)
    data = raw[8 + n:]
    out = []
    for name, info in header.items():
        if name == "__metadata__":  # not a tensor (safetensors convention; not in §3)
            continue
        begin, end = info["data_offsets"]
        if not (0 <= begin <= end <= len(data)):
            raise Reject(f"§3: {path}: tensor {name} offsets out of range")
        out.append((name, info["dtype"], list(info["shape"]), data[begin:end]))
    return out


def fingerprint_dir(d: str) -> bytes:
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as fh:
            wmap = json.load(fh)["weight_map"]
        tensors = []
        for fname in sorted(set(wmap.values())):
            for t in read_safetensors(os.path.join(d, fname)):
                if wmap.get(t[0]) != fname:
                    raise Reject(f"§3: tensor {t[0]} in {fname}, index says {wmap.get(t[0])}")
                tensors.append(t)
        if set(t[0] for t in tensors) != set(wmap):
            raise Reject("§3: index weight_map names tensors not in the files")
    else:
        tensors = read_safetensors(os.path.join(d, "model.safetensors"))
    return fingerprint_of(tensors)


# ---------------------------------------------------------------- §4 windows

def window_start(b: int) -> int:
    return b - b % WINDOW_LENGTH


def round_at(t: int, genesis: int, period: int) -> int:
    return (t - genesis) // period + 1 if t >= genesis else 0


def first_round_after(t_ms: int, genesis: int, period: int) -> int:
    return round_at(t_ms // 1000, genesis, period) + 1


# ---------------------------------------------------------------- §5 sampling

def uniform_int(stream: ChaCha20Stream, t: int) -> int:
    return stream.u64(t) >> 11


def sample(logits: list[float], temperature_milli: int, u: float):
    if not (1 <= temperature_milli <= MAX_TEMPERATURE_MILLI):
        raise Reject("§5.2: temperature_milli out of range")
    if not all(math.isfinite(z) for z in logits):
        raise Reject("§5.2: non-finite logit")
    T = temperature_milli / 1000
    m = max(logits)
    w = [math.exp((z - m) / T) for z in logits]
    C = []
    acc = 0.0
    for wi in w:
        acc += wi
        C.append(acc)
    Z = C[-1]
    token = None
    uz = u * Z
    for i, c in enumerate(C):
        if uz < c:
            token = i
            break
    if token is None:
        token = max(i for i, wi in enumerate(w) if wi > 0)
    logprob = (logits[token] - m) / T - math.log(Z)
    lo = (C[token - 1] if token > 0 else 0.0) / Z
    hi = C[token] / Z
    return token, logprob, lo, hi


# ---------------------------------------------------------------- §6 commitments

def commitment(token: int, logprob: float, sketch: bytes) -> bytes:
    assert len(sketch) == 16
    return u32(token) + f32(logprob) + sketch


def commit_root(commitments: list[bytes]) -> bytes:
    return derive("grail/v1/commit-root", [b"".join(commitments)])


def commit_binding(netuid, window, hotkey, problem_index, rollout_index, fingerprint,
                   prompt, completion, root, temperature_milli, max_new_tokens,
                   reward, advantage) -> bytes:
    return derive("grail/v1/commit-binding", [
        u16(PROTOCOL_VERSION), u16(netuid), u64(window), hotkey,
        u32(problem_index), u32(rollout_index), fingerprint,
        b"".join(u32(t) for t in prompt), b"".join(u32(t) for t in completion), root,
        u16(temperature_milli) + u32(max_new_tokens),
        f64(reward), f64(advantage)])


def plane_words(key: bytes, d: int) -> list[int]:
    s = ChaCha20Stream(key)
    return [int.from_bytes(s.bytes_at(16 * i, 16), "little") for i in range(d)]


def quantize(h: list[float]) -> list[int]:
    d = len(h)
    h = [to_f32(x) for x in h]  # inputs are f32 values
    if not all(math.isfinite(x) for x in h):
        raise Reject("§6.4: non-finite hidden state")
    k = -(-d // SKETCH_REF_RANK_DIVISOR)
    r = sorted((abs(x) for x in h), reverse=True)[k - 1]
    if r < SKETCH_MIN_REFERENCE:
        raise Reject("§6.4: degenerate state (reference below SKETCH_MIN_REFERENCE)")
    s = to_f32(to_f32(SKETCH_SCALE) / r)  # f64 quotient of f32s, rounded once: exact IEEE f32 div
    q = []
    for x in h:
        v = round(to_f32(x * s))  # f32 product; Python round() is half-to-even
        q.append(max(-SKETCH_CLAMP, min(SKETCH_CLAMP, v)))
    return q


def sketch_of(h: list[float], key: bytes):
    q = quantize(h)
    words = plane_words(key, len(q))
    bits = 0
    for j in range(128):
        a = 0
        for i, qi in enumerate(q):
            a += -qi if (words[i] >> j) & 1 else qi
        if a > 0:
            bits |= 1 << j
    return q, words, bits.to_bytes(16, "little")


# ---------------------------------------------------------------- §7 positions

def challenge_positions(randomness: bytes, root: bytes, n: int, k: int) -> list[int]:
    if n <= k:
        return list(range(n))
    seed = derive("grail/v1/challenge-positions", [randomness, root])
    stream = ChaCha20Stream(seed)
    limit = n * (MASK64 // n)
    chosen: set[int] = set()
    i = 0
    while len(chosen) < k:
        x = stream.u64(i)
        i += 1
        if x >= limit:
            continue
        chosen.add(x % n)
    return sorted(chosen)


# ---------------------------------------------------------------- §8 window file

class Reader:
    def __init__(self, buf: bytes, start: int = 0, end: int | None = None,
                 short: str = "truncated"):
        self.buf, self.pos = buf, start
        self.end = len(buf) if end is None else end
        self.short = short

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > self.end:
            raise Reject(f"{self.short}: {what} needs {n} bytes, {self.end - self.pos} left")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def u16(self, what): return struct.unpack("<H", self.take(2, what))[0]
    def u32(self, what): return struct.unpack("<I", self.take(4, what))[0]
    def u64(self, what): return struct.unpack("<Q", self.take(8, what))[0]
    def f32(self, what): return struct.unpack("<f", self.take(4, what))[0]
    def f64(self, what): return struct.unpack("<d", self.take(8, what))[0]


def decode_window_file(buf: bytes) -> dict:
    if len(buf) > MAX_WINDOW_FILE_BYTES:
        raise Reject("file size > MAX_WINDOW_FILE_BYTES")
    r = Reader(buf)
    magic = r.take(8, "magic")
    if magic != b"GRAILWIN":
        raise Reject(f"magic: {magic!r} != b'GRAILWIN'")
    version = r.u16("version")
    if version != 1:
        raise Reject(f"version: {version} != 1")
    netuid = r.u16("netuid")
    window = r.u64("window")
    hotkey = r.take(32, "hotkey")
    fingerprint = r.take(32, "model_fingerprint")
    count = r.u32("rollout_count")
    if count > MAX_ROLLOUTS_PER_FILE:
        raise Reject(f"rollout_count {count} > MAX_ROLLOUTS_PER_FILE")
    rollouts = []
    prev = None
    for idx in range(count):
        rlen = r.u32(f"record {idx} record_len")
        if not (RECORD_MIN <= rlen <= RECORD_MAX):
            raise Reject(f"record {idx}: record_len {rlen} outside {RECORD_MIN}..={RECORD_MAX}")
        if rlen > r.end - r.pos:
            raise Reject(f"truncated: record {idx}: record_len {rlen} > remaining {r.end - r.pos}")
        body = Reader(buf, r.pos, r.pos + rlen, short=f"record_len {rlen} too short")
        r.pos += rlen
        w = f"record {idx}"
        pi = body.u32(w + " problem_index")
        ri = body.u32(w + " rollout_index")
        temp = body.u16(w + " temperature_milli")
        mnt = body.u32(w + " max_new_tokens")
        plen = body.u32(w + " prompt_len")
        if not (1 <= plen <= MAX_PROMPT_TOKENS):
            raise Reject(f"{w}: prompt_len {plen} outside 1..={MAX_PROMPT_TOKENS}")
        prompt = list(struct.unpack(f"<{plen}I", body.take(4 * plen, w + " prompt")))
        clen = body.u32(w + " completion_len")
        if not (1 <= clen <= MAX_COMPLETION_TOKENS):
            raise Reject(f"{w}: completion_len {clen} outside 1..={MAX_COMPLETION_TOKENS}")
        comms, completion = [], []
        for t in range(clen):
            c = body.take(24, f"{w} commitment {t}")
            tok, lp = struct.unpack("<If", c[:8])
            if not (math.isfinite(lp) and lp <= 0):
                raise Reject(f"{w}: logprob {lp} at position {t} not finite and <= 0")
            comms.append(c)
            completion.append(tok)
        reward = body.f64(w + " reward")
        advantage = body.f64(w + " advantage")
        body.take(64, w + " signature")
        if body.pos != body.end:
            raise Reject(f"{w}: fields take {body.pos - (r.pos - rlen)} bytes, record_len {rlen}")
        if not (1 <= temp <= MAX_TEMPERATURE_MILLI):
            raise Reject(f"{w}: temperature_milli {temp} outside 1..={MAX_TEMPERATURE_MILLI}")
        if not (1 <= mnt <= MAX_COMPLETION_TOKENS):
            raise Reject(f"{w}: max_new_tokens {mnt} outside 1..={MAX_COMPLETION_TOKENS}")
        if clen > mnt:
            raise Reject(f"{w}: completion_len {clen} > max_new_tokens {mnt}")
        if not (math.isfinite(reward) and math.isfinite(advantage)):
            raise Reject(f"{w}: reward/advantage not finite")
        key = (pi, ri)
        if prev is not None and key <= prev:
            raise Reject(f"{w}: (problem_index, rollout_index) {key} not after {prev}")
        prev = key
        root = commit_root(comms)
        rollouts.append({
            "problem_index": pi, "rollout_index": ri,
            "prompt_len": plen, "completion_len": clen,
            "commit_root": root.hex(),
            "signed_message": commit_binding(netuid, window, hotkey, pi, ri, fingerprint,
                                             prompt, completion, root, temp, mnt,
                                             reward, advantage).hex(),
        })
    body_end = r.pos
    checksum = r.take(32, "checksum")
    if r.pos != len(buf):
        raise Reject(f"trailing bytes: {len(buf) - r.pos}")
    want = derive("grail/v1/window-file-checksum", [buf[:body_end]])
    if checksum != want:
        raise Reject(f"checksum: stored {checksum.hex()[:16]}.., computed {want.hex()[:16]}..")
    return {"valid": True, "netuid": netuid, "window": window,
            "hotkey": hotkey.hex(), "model_fingerprint": fingerprint.hex(),
            "rollouts": rollouts}


# ---------------------------------------------------------------- §9 keys

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58encode(b: bytes) -> str:
    n = int.from_bytes(b, "big")
    s = ""
    while n:
        n, r = divmod(n, 58)
        s = B58[r] + s
    return "1" * (len(b) - len(b.lstrip(b"\0"))) + s


def b58decode(s: str) -> bytes:
    n = 0
    for ch in s:
        if ch not in B58:
            raise Reject(f"SS58: bad base58 character {ch!r}")
        n = n * 58 + B58.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(s) - len(s.lstrip("1"))) + body


def ss58_checksum(prefix_and_key: bytes) -> bytes:
    return hashlib.blake2b(b"SS58PRE" + prefix_and_key, digest_size=64).digest()[:2]


def ss58_encode(pub: bytes) -> str:
    body = b"\x2a" + pub
    return b58encode(body + ss58_checksum(body))


def ss58_decode(s: str) -> bytes:
    raw = b58decode(s)
    if len(raw) != 35:
        raise Reject(f"SS58: length {len(raw)} != 35")
    if raw[0] != 42:
        raise Reject(f"SS58: prefix {raw[0]} != 42")
    if ss58_checksum(raw[:33]) != raw[33:]:
        raise Reject("SS58: checksum mismatch")
    return raw[1:33]


# Not in PROTOCOL.md: Substrate's DEV_PHRASE and SURI grammar (see the report).
DEV_PHRASE = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"


def _scale_compact(n: int) -> bytes:
    if n < 1 << 6:
        return bytes([n << 2])
    if n < 1 << 14:
        return struct.pack("<H", (n << 2) | 1)
    if n < 1 << 30:
        return struct.pack("<I", (n << 2) | 2)
    b = n.to_bytes((n.bit_length() + 7) // 8, "little")
    return bytes([((len(b) - 4) << 2) | 3]) + b


def _junction_chain_code(j: str) -> bytes:
    try:
        v = int(j)
        enc_j = u64(v) if 0 <= v <= MASK64 and str(v) == j else None
    except ValueError:
        enc_j = None
    if enc_j is None:
        jb = j.encode("utf-8")
        enc_j = _scale_compact(len(jb)) + jb
    if len(enc_j) > 32:
        return hashlib.blake2b(enc_j, digest_size=32).digest()
    return enc_j + bytes(32 - len(enc_j))


def keypair_from_suri(suri: str):
    if sr25519 is None:
        raise Skip("py-sr25519-bindings not installed (sr25519 key expansion/derivation)")
    password = ""
    if "///" in suri:
        suri, password = suri.split("///", 1)
    cut = suri.find("/")
    phrase, path = (suri, "") if cut < 0 else (suri[:cut], suri[cut:])
    phrase = phrase.strip() or DEV_PHRASE
    if phrase.startswith("0x"):
        mini = bytes.fromhex(phrase[2:])
        if len(mini) != 32:
            raise Reject("SURI: hex seed is not 32 bytes")
    else:
        if _mnemonic is None:
            raise Skip("`mnemonic` not installed (BIP-39 English word list)")
        entropy = bytes(_mnemonic.Mnemonic("english").to_entropy(phrase))
        mini = hashlib.pbkdf2_hmac("sha512", entropy, ("mnemonic" + password).encode(), 2048)[:32]
    pub, sec = sr25519.pair_from_seed(mini)  # MiniSecretKey expanded in Ed25519 mode
    # junctions: "//x" hard, "/x" soft
    i = 0
    while i < len(path):
        hard = path.startswith("//", i)
        i += 2 if hard else 1
        j_end = path.find("/", i)
        j_end = len(path) if j_end < 0 else j_end
        cc = _junction_chain_code(path[i:j_end])
        i = j_end
        if hard:
            _, pub, sec = sr25519.hard_derive_keypair((cc, pub, sec), b"")
        else:
            _, pub, sec = sr25519.derive_keypair((cc, pub, sec), b"")
    return pub, sec


def verify_sig(ss58: str, message: bytes, sig: bytes) -> bool:
    pub = ss58_decode(ss58)
    if sr25519 is None:
        raise Skip("py-sr25519-bindings not installed (sr25519 verification)")
    try:
        ok = sr25519.verify(sig, message, pub)
    except ValueError as e:
        raise Reject(f"signature: structurally invalid ({e})")
    if not ok:
        raise Reject("signature: does not verify under the hotkey (context 'substrate')")
    return True


# ---------------------------------------------------------------- §13 challenges

CHALLENGE_KINDS = {"sat": 0, "math": 1}


class ChallengeStream:
    """§13.1: ChaCha20(derive("grail/v1/challenge-stream", [seed, u8(kind), u8(difficulty)]))
    read as consecutive u64s; every draw consumes whole u64s."""

    def __init__(self, seed: bytes, kind: int, difficulty: int):
        key = derive("grail/v1/challenge-stream", [seed, bytes([kind]), bytes([difficulty])])
        self.stream = ChaCha20Stream(key)
        self.i = 0

    def next_u64(self) -> int:
        x = self.stream.u64(self.i)
        self.i += 1
        return x

    def below(self, n: int) -> int:
        assert n >= 1
        limit = n * (MASK64 // n)
        while True:
            x = self.next_u64()
            if x < limit:
                return x % n

    def range(self, lo: int, hi: int) -> int:
        return lo + self.below(hi - lo + 1)

    def pick(self, items):
        return items[self.below(len(items))]

    def coin(self) -> bool:
        return self.below(2) == 1

    def shuffle(self, v: list) -> None:
        for i in range(len(v) - 1, 0, -1):
            j = self.below(i + 1)
            v[i], v[j] = v[j], v[i]


def challenge_assignment(seed: bytes) -> tuple[str, int]:
    """§13.2."""
    a = derive("grail/v1/challenge-assignment", [seed])
    return ("sat" if a[0] % 2 == 0 else "math"), 1 + a[1] % 10


def sat_problem(seed: bytes, level: int):
    """§13.3: (n, planted assignment as bools, clauses as DIMACS literal triples)."""
    if not (1 <= level <= 10):
        raise Reject(f"§13.2: difficulty {level} outside 1..=10")
    n = 5 + 3 * level
    num = n * (300 + 14 * (level - 1))
    m = -(-num // 100)  # ceil, exact integer arithmetic
    s = ChallengeStream(seed, CHALLENGE_KINDS["sat"], level)
    planted = [s.coin() for _ in range(n)]  # x1 .. xn, true = 1
    clauses: list[list[int]] = []
    seen: set[tuple[int, ...]] = set()
    while len(clauses) < m:
        vs: list[int] = []
        for _ in range(3):
            v = s.below(n)
            while v in vs:
                v = s.below(n)
            vs.append(v)
        vs.sort()
        while True:
            neg = [s.coin() for _ in range(3)]  # true = negated, in sorted-variable order
            # literal (v, neg) is true under the planted assignment iff planted[v] != neg
            if any(planted[v] != ng for v, ng in zip(vs, neg)):
                break
        clause = [-(v + 1) if ng else (v + 1) for v, ng in zip(vs, neg)]
        if tuple(clause) in seen:
            continue  # identical to an earlier clause: redraw whole
        seen.add(tuple(clause))
        clauses.append(clause)
    return n, planted, clauses


def sat_dimacs(n: int, clauses: list[list[int]]) -> str:
    return f"p cnf {n} {len(clauses)}\n" + "".join(
        " ".join(str(l) for l in c) + " 0\n" for c in clauses)


# §13.5: the only characters ever classified are ASCII and U+2212.
WS = " \t\n\f\r"


def extract_answer(completion: str) -> str | None:
    """§13.5 extraction: between the last <SOLUTION> and the first </SOLUTION> after it."""
    i = completion.rfind("<SOLUTION>")
    if i < 0:
        return None
    i += len("<SOLUTION>")
    j = completion.find("</SOLUTION>", i)
    if j < 0:
        return None
    return completion[i:j]


def parse_sat_answer(content: str, n: int) -> list[bool]:
    """§13.5 SAT answer rules (1)-(4)."""
    if len(content.encode("utf-8")) > 4 * n + 64:
        raise Reject("§13.5 SAT (1): content longer than 4n+64 bytes")
    t = content.strip(WS)
    if not t:
        raise Reject("§13.5 SAT (2): empty")
    tokens, cur = [], ""
    for ch in t:
        if ch in WS or ch == ",":
            if cur:
                tokens.append(cur)
            cur = ""
        else:
            cur += ch
    if cur:
        tokens.append(cur)
    # NOTE: after trimming, a leading/trailing ',' leaves no empty token here (a
    # run of separators is one separator); §13.5 does not say otherwise.
    for tok in tokens:
        if tok not in ("0", "1"):
            raise Reject(f"§13.5 SAT (3): token {tok[:20]!r} is not 0 or 1")
    if len(tokens) != n:
        raise Reject(f"§13.5 SAT (4): {len(tokens)} tokens, expected {n}")
    return [tok == "1" for tok in tokens]


I128_MAX = (1 << 127) - 1
DIGITS = "0123456789"


def _int_literal(t: str, p: int) -> tuple[int, int]:
    """§13.5 (6) integer literal at t[p] (a digit): plain digits, or ','-grouped
    thousands. Returns (value, end). A ',' right after the leading digits makes it
    a grouped literal, and a malformed grouping is an error."""
    q = p
    while q < len(t) and t[q] in DIGITS:
        q += 1
    if q == p:
        raise Reject("§13.5 math (6): digit expected")
    if q < len(t) and t[q] == ",":
        first = t[p:q]
        if not (1 <= len(first) <= 3) or first[0] == "0":
            raise Reject("§13.5 math (6): bad first thousands group")
        digits = first
        while q < len(t) and t[q] == ",":
            g = q + 1
            e = g
            while e < len(t) and t[e] in DIGITS:
                e += 1
            if e - g != 3:
                raise Reject("§13.5 math (6): thousands group not exactly 3 digits")
            digits += t[g:e]
            q = e
    else:
        digits = t[p:q]
    if len(digits) > 39:
        raise Reject("§13.5 math (6): literal longer than 39 digits")
    v = int(digits)
    if v > I128_MAX:
        raise Reject("§13.5 math (6): literal does not fit in i128")
    return v, q


def parse_math_answer(content: str) -> tuple[int, int]:
    """§13.5 math answer rules (1)-(7). Returns the reduced rational (p, q), q > 0."""
    if len(content.encode("utf-8")) > 256:
        raise Reject("§13.5 math (1): content longer than 256 bytes")
    t = content.strip(WS)
    if len(t) >= 2 and t.startswith("$") and t.endswith("$"):
        t = t[1:-1]
    elif len(t) >= 4 and t.startswith("\\(") and t.endswith("\\)"):
        t = t[2:-2]
    t = t.strip(WS)
    if t.startswith("\\boxed{") and t.endswith("}"):
        t = t[len("\\boxed{"):-1].strip(WS)
    if not t:
        raise Reject("§13.5 math (4): empty")
    p = 0
    negative = False
    if t[p] in "+-\u2212":
        negative = t[p] != "+"
        p += 1
    if t.startswith("$", p):
        p += 1
    elif t.startswith("\\$", p):
        p += 2
    if p >= len(t) or t[p] not in DIGITS:
        raise Reject("§13.5 math (5): no digit after the sign / currency sign")
    num, p = _int_literal(t, p)
    den = 1
    if p + 1 < len(t) and t[p] == "." and t[p + 1] in DIGITS:
        e = p + 1
        while e < len(t) and t[e] in DIGITS:
            e += 1
        frac = t[p + 1:e]
        if len(frac) > 18:
            raise Reject("§13.5 math (6): more than 18 decimal digits")
        den = 10 ** len(frac)
        num = num * den + int(frac)
        p = e
    else:
        e = p
        while e < len(t) and t[e] == " ":
            e += 1
        if e < len(t) and t[e] == "/":
            e += 1
            while e < len(t) and t[e] == " ":
                e += 1
            if e >= len(t) or t[e] not in DIGITS:
                raise Reject("§13.5 math (6): fraction without a denominator")
            den, p = _int_literal(t, e)
            if den == 0:
                raise Reject("§13.5 math (6): zero denominator")
    for ch in t[p:]:
        if not (("a" <= ch <= "z") or ("A" <= ch <= "Z") or ch in WS or ch in "%."):
            raise Reject(f"§13.5 math (7): {ch!r} after the number")
    g = math.gcd(num, den)
    num, den = num // g, den // g
    return (-num if negative else num), den


def math_answer_text(r: tuple[int, int]) -> str:
    p, q = r
    return str(p) if q == 1 else f"{p}/{q}"


def score_total(correctness: float, fmt: float) -> float:
    return 1.0 * correctness + 0.1 * fmt  # §13.6, f64


def grpo_advantages(rewards: list[float]) -> list[float]:
    """§13.6, every step one IEEE-754 double operation."""
    n = len(rewards)
    if all(r == rewards[0] for r in rewards):
        return [0.0] * n
    acc = 0.0
    for r in rewards:
        acc += r
    mean = acc / float(n)
    sq = 0.0
    for r in rewards:
        d = r - mean
        sq += d * d
    var = sq / float(n)
    denom = math.sqrt(var) + 1e-6
    return [(r - mean) / denom for r in rewards]


# ---------------------------------------------------------------- vectors

def H(s: str) -> bytes:
    return bytes.fromhex(s)


def case_derive(i):
    return {"digest": derive(i["label"], [H(p) for p in i["parts"]]).hex()}


def case_fingerprint(i):
    ts = [(t["name"], t["dtype"], list(t["shape"]), H(t["data"])) for t in i["tensors"]]
    return {"fingerprint": fingerprint_of(ts).hex()}


def case_fingerprint_dir(i):
    d = os.path.join(TESTS, i["dir"])
    if not os.path.isdir(d):
        raise Skip(f"model directory {d} not present")
    return {"fingerprint": fingerprint_dir(d).hex()}


def case_window(i):
    g, p = i["drand_genesis_time"], i["drand_period"]
    w = window_start(i["block"])
    return {
        "window_start": w,
        "deadline_block": w + WINDOW_LENGTH,
        "generation_round": first_round_after(i["window_block_timestamp_ms"], g, p),
        "challenge_round": first_round_after(
            i["deadline_block_timestamp_ms"] + 1000 * CHALLENGE_REVEAL_DELAY_SECS, g, p),
    }


def case_seeds(i):
    hk = H(i["hotkey"])
    wbh = H(i["window_block_hash"])
    wr = derive("grail/v1/window-randomness", [wbh, H(i["generation_beacon_randomness"])])
    return {
        "problem_seed": derive("grail/v1/problem-seed",
                               [u16(i["netuid"]), hk, wbh, u32(i["problem_index"])]).hex(),
        "window_randomness": wr.hex(),
        "rollout_seed": derive("grail/v1/rollout-seed",
                               [wr, hk, u32(i["problem_index"]), u32(i["rollout_index"])]).hex(),
        "sketch_key": derive("grail/v1/sketch-key", [wr]).hex(),
        "challenge_randomness": derive("grail/v1/challenge-randomness",
                                       [H(i["deadline_block_hash"]),
                                        H(i["challenge_beacon_randomness"])]).hex(),
    }


def case_uniforms(i):
    s = ChaCha20Stream(H(i["rollout_seed"]))
    out = []
    for t in i["positions"]:
        ui = uniform_int(s, t)
        out.append({"position": t, "u_int": ui, "u": ui * 2.0 ** -53})
    return {"uniforms": out}


def case_sample(i):
    logits = [to_f32(z) for z in i["logits"]]
    u = i["u_int"] * 2.0 ** -53
    tok, lp, lo, hi = sample(logits, i["temperature_milli"], u)
    # §5.3: a verifier with the same logits must accept the sampler's own pick
    if not (lo - SAMPLING_CDF_EPSILON <= u < hi + SAMPLING_CDF_EPSILON):
        raise Reject(f"§5.3: own pick {tok} not accepted: u={u} outside [{lo}, {hi})")
    return {"token": tok, "logprob": lp, "cdf_lo": lo, "cdf_hi": hi}


def case_sketch(i):
    q, words, sk = sketch_of(i["hidden"], H(i["sketch_key"]))
    return {"quantized": q,
            "first_plane_words_le": [w.to_bytes(16, "little").hex() for w in words[:2]],
            "sketch": sk.hex()}


def case_commit(i):
    comms = [commitment(c["token"], c["logprob"], H(c["sketch"])) for c in i["commitments"]]
    root = commit_root(comms)
    completion = [c["token"] for c in i["commitments"]]
    b = commit_binding(i["netuid"], i["window"], H(i["hotkey"]), i["problem_index"],
                       i["rollout_index"], H(i["model_fingerprint"]), i["prompt"],
                       completion, root, i["temperature_milli"], i["max_new_tokens"],
                       i["reward"], i["advantage"])
    return {"encoded_commitments": [c.hex() for c in comms],
            "commit_root": root.hex(), "binding_message": b.hex()}


def case_challenge(i):
    return {"positions": challenge_positions(H(i["challenge_randomness"]), H(i["commit_root"]),
                                             i["n"], i["k"])}


def case_window_file(i):
    return decode_window_file(H(i["file"]))


def case_keys(i):
    pub, _ = keypair_from_suri(i["suri"])
    return {"public_key": pub.hex(), "ss58": ss58_encode(pub)}


def case_verify(i):
    return {"valid": verify_sig(i["ss58"], H(i["message"]), H(i["signature"]))}


def case_challenge_assignment(i):
    kind, difficulty = challenge_assignment(H(i["seed"]))
    return {"kind": kind, "difficulty": difficulty}


MATH_SKIP = "math templates are specified by the challenges::math module, not in prose"


def case_challenge_problem(i):
    seed, kind, level = H(i["seed"]), i["kind"], i["difficulty"]
    if kind == "math":
        raise Skip(MATH_SKIP)  # the round-trip check of reference_answer: math_partial()
    if kind != "sat":
        raise Reject(f"unknown challenge kind {kind!r}")
    n, planted, clauses = sat_problem(seed, level)
    return {
        "parameters": {"num_vars": n, "num_clauses": len(clauses), "clauses": clauses},
        "dimacs": sat_dimacs(n, clauses),
        "reference_answer": " ".join("1" if b else "0" for b in planted),
    }


def case_challenge_score(i):
    kind, template = i["kind"], i["completion"]
    if kind == "sat":
        n, planted, clauses = sat_problem(H(i["seed"]), i["difficulty"])
        reference = " ".join("1" if b else "0" for b in planted)
        content = extract_answer(template.replace("{reference}", reference))
        correct = fmt = 0.0
        if content is not None:
            try:
                x = parse_sat_answer(content, n)
            except Reject:
                pass
            else:
                fmt = 1.0
                sat = all(any(x[abs(l) - 1] != (l < 0) for l in c) for c in clauses)
                correct = 1.0 if sat else 0.0
        return {"correctness": correct, "format": fmt, "total": score_total(correct, fmt)}
    if kind != "math":
        raise Reject(f"unknown challenge kind {kind!r}")
    # math: the problem (and its answer) cannot be generated from the prose. Score
    # only what the completion alone decides.
    content = extract_answer(template)
    if content is None:
        return {"correctness": 0.0, "format": 0.0, "total": 0.0}
    if "{reference}" in content:
        raise Skip(f"{MATH_SKIP}; the scored answer is the unknown reference")
    try:
        r = parse_math_answer(content)
    except Reject:
        # a correct answer is always well-formed (§13.6)
        return {"correctness": 0.0, "format": 0.0, "total": 0.0}
    if r[0] == 0:
        # §13.4: every answer is nonzero, so 0 is never correct
        return {"correctness": 0.0, "format": 1.0, "total": score_total(0.0, 1.0)}
    raise Skip(f"{MATH_SKIP}; parsed {math_answer_text(r)}, correctness unknown")


def math_partial(case) -> tuple[str | None, str | None]:
    """For a skipped math case, what its output alone still lets us check:
    (disagreement or None, description of the check made or None)."""
    kind, inp, want = case["kind"], case["input"], case["output"]
    if inp.get("kind") != "math":
        return None, None
    if kind == "challenge":
        ref = want.get("reference_answer")
        try:
            r = parse_math_answer(ref)
        except Reject as e:
            return f"reference_answer {ref!r} does not parse: {e}", None
        if math_answer_text(r) != ref:
            return (f"reference_answer {ref!r} parses to {r[0]}/{r[1]}, whose canonical "
                    f"text is {math_answer_text(r)!r}"), None
        return None, f"reference_answer {ref!r} parses (§13.5) and round-trips"
    if kind == "challenge_score":
        # The scored content is the reference answer with only whitespace around it.
        # The reference answer is not generated here; every math reference_answer in
        # the vectors parses (checked above), so predict format 1 and compare.
        content = extract_answer(inp["completion"])
        if content is not None and content.strip(WS) == "{reference}":
            if want.get("format") != 1.0:
                return f"format: expected {want.get('format')}, predicted 1.0", None
            return None, ("format agrees (1.0, assuming the unknown reference answer is "
                          "well-formed); correctness and total not checked")
    return None, None


def case_advantages(i):
    adv = grpo_advantages([float(r) for r in i["rewards"]])
    return {"advantages": adv, "advantage_bits": [struct.pack(">d", a).hex() for a in adv]}


HANDLERS = {
    "derive": case_derive,
    "fingerprint": case_fingerprint,
    "fingerprint_model_dir": case_fingerprint_dir,
    "window": case_window,
    "seeds": case_seeds,
    "uniforms": case_uniforms,
    "sample": case_sample,
    "sketch": case_sketch,
    "commit": case_commit,
    "challenge_positions": case_challenge,
    "window_file": case_window_file,
    "keys": case_keys,
    "verify": case_verify,
    "challenge_assignment": case_challenge_assignment,
    "challenge": case_challenge_problem,
    "challenge_score": case_challenge_score,
    "advantages": case_advantages,
}

# output fields not compared, per kind: §13.5 pins the user-message text only by
# the vectors themselves, so it is not recomputed here
NOT_COMPARED = {"challenge": ("messages",)}

# kinds whose expected `error` is a Rust variant name: compare `valid` only
ERROR_KINDS = {"window_file", "verify"}


def agree(want, got, path="output") -> list[str]:
    """Differences between expected and computed values (keys of `want` only)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected object, got {got!r}"]
        diffs = []
        for k, v in want.items():
            if k not in got:
                diffs.append(f"{path}.{k}: not computed by this implementation")
            else:
                diffs += agree(v, got[k], f"{path}.{k}")
        return diffs
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return [f"{path}: expected {want!r}, got {got!r}"]
        diffs = []
        for n, (a, b) in enumerate(zip(want, got)):
            diffs += agree(a, b, f"{path}[{n}]")
        return diffs
    if isinstance(want, bool) or isinstance(want, (str, int)) and not isinstance(want, float):
        if type(got) is not type(want) or got != want:
            return [f"{path}: expected {want!r}, got {got!r}"]
        return []
    if isinstance(want, float):
        if not isinstance(got, (int, float)) or isinstance(got, bool):
            return [f"{path}: expected {want!r}, got {got!r}"]
        if want == got or abs(want - got) <= 1e-12 * max(abs(want), abs(got)):
            return []
        return [f"{path}: expected {want!r}, got {got!r}"]
    if want != got:
        return [f"{path}: expected {want!r}, got {got!r}"]
    return []


def run_case(case) -> tuple[str, str]:
    """('pass' | 'fail' | 'skip', detail)."""
    kind, inp, want = case["kind"], case["input"], case["output"]
    handler = HANDLERS.get(kind)
    if handler is None:
        return "skip", f"unknown kind {kind!r}"
    try:
        got = handler(inp)
    except Skip as e:
        bad, checked = math_partial(case)
        if bad:
            return "fail", f"{e}; partial check DISAGREES: {bad}"
        return "skip", f"{e}" + (f"; partial check: {checked}" if checked else "")
    except Reject as e:
        if kind in ERROR_KINDS and want.get("valid") is False:
            return "pass", f"rejected ({e}); Rust says {want.get('error')}"
        return "fail", f"rejected: {e}"
    except Exception as e:  # malformed case or a bug here: a disagreement, not a crash
        return "fail", f"{type(e).__name__}: {e}"
    if kind in ERROR_KINDS and want.get("valid") is False:
        return "fail", f"accepted, expected rejection {want.get('error')}"
    dropped = [k for k in NOT_COMPARED.get(kind, ()) if k in want]
    if dropped:
        want = {k: v for k, v in want.items() if k not in dropped}
    diffs = agree(want, got)
    if diffs:
        return "fail", "; ".join(diffs[:5])
    return "pass", f"{', '.join(dropped)} not compared" if dropped else ""


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    files = sorted(f for f in os.listdir(VECTORS) if f.endswith(".json"))
    passed = failed = skipped = 0
    for fname in files:
        with open(os.path.join(VECTORS, fname)) as fh:
            cases = json.load(fh)["cases"]
        p = f_ = s = 0
        notes = []
        uncompared: dict[str, int] = {}
        for n, case in enumerate(cases):
            status, detail = run_case(case)
            if status == "pass":
                p += 1
                if detail.endswith("not compared"):
                    uncompared[detail] = uncompared.get(detail, 0) + 1
                if verbose and detail:
                    notes.append(f"  case {n} ({case['kind']}): {detail}")
            elif status == "fail":
                f_ += 1
                notes.append(f"  case {n} ({case['kind']}): DISAGREES: {detail}")
            else:
                s += 1
                notes.append(f"  case {n} ({case['kind']}): skipped: {detail}")
        checked = p + f_
        line = f"{fname}: {p}/{checked} cases agree"
        if s:
            line += f" ({s} skipped)"
        print(line)
        for what, count in uncompared.items():
            print(f"  note: {what} in {count} agreeing cases")
        for note in notes:
            print(note)
        passed, failed, skipped = passed + p, failed + f_, skipped + s
    tail = f"{passed} passed, {failed} failed"
    if skipped:
        tail += f", {skipped} skipped"
    print(tail)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
