#!/usr/bin/env python3
"""Independent re-implementation of the grail v1 model weight fingerprint.

This script shares no code with the Rust implementation
(grail-core/src/fingerprint.rs and tensors.rs): it parses safetensors headers
itself with `json` and `struct` and hashes with the `blake3` package from
PyPI. It was used to produce the known-answer fingerprint of
tests/fixtures/stories260K that the Rust tests compare against, and can
cross-check any model directory:

    python3 -m venv scripts/.venv && scripts/.venv/bin/pip install blake3
    scripts/.venv/bin/python scripts/fingerprint_ref.py tests/fixtures/stories260K

Construction (PROTOCOL.md, "Model weight fingerprint"):

    data_hash = BLAKE3(tensor data bytes as stored)
    M = u64le(tensor_count) || for each tensor, sorted by UTF-8 name bytes:
          u64le(len(name)) || name || u64le(len(dtype)) || dtype
          || u32le(ndim) || u64le(dim)... || u64le(nbytes) || data_hash
    fingerprint = BLAKE3-derive_key("grail/v1/weight-fingerprint", M)

Files: the distinct shard files of model.safetensors.index.json's weight_map
if it exists (each tensor must be in the shard the map names, and the shards
hold exactly the map's tensors), otherwise model.safetensors.
"""

import json
import mmap
import os
import struct
import sys

import blake3

CONTEXT = "grail/v1/weight-fingerprint"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
BITS = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8,
    "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}


def no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ValueError(f"duplicate JSON key {k!r}")
        out[k] = v
    return out


def read_tensors(path):
    """Yields (name, dtype, shape, data memoryview) for one safetensors file."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(bytes(buf[8:8 + n]).decode("utf-8"), object_pairs_hook=no_duplicates)
    header.pop("__metadata__", None)
    start = 8 + n
    spans = sorted((info["data_offsets"][0], info["data_offsets"][1], name)
                   for name, info in header.items())
    pos = 0
    for b, e, name in spans:
        assert b == pos and e >= b, f"{path}: bad offsets for {name}"
        pos = e
    assert start + pos == len(buf), f"{path}: data does not end at end of file"
    view = memoryview(buf)
    for name, info in header.items():
        dtype, shape = info["dtype"], info["shape"]
        b, e = info["data_offsets"]
        count = 1
        for d in shape:
            count *= d
        assert count * BITS[dtype] == 8 * (e - b), f"{path}: size mismatch for {name}"
        yield name, dtype, shape, view[start + b:start + e]


def model_tensors(model_dir):
    index_path = os.path.join(model_dir, INDEX)
    if os.path.exists(index_path):
        with open(index_path, "rb") as f:
            weight_map = json.loads(f.read(), object_pairs_hook=no_duplicates)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            for name, dtype, shape, data in read_tensors(os.path.join(model_dir, shard)):
                assert name not in tensors, f"duplicate tensor {name}"
                assert weight_map.get(name) == shard, f"{name} not indexed in {shard}"
                tensors[name] = (dtype, shape, data)
        assert set(tensors) == set(weight_map), "index lists tensors missing from shards"
    else:
        tensors = {name: (dtype, shape, data)
                   for name, dtype, shape, data in read_tensors(os.path.join(model_dir, SINGLE))}
    return tensors


def fingerprint(model_dir):
    tensors = model_tensors(model_dir)
    h = blake3.blake3(derive_key_context=CONTEXT)
    h.update(struct.pack("<Q", len(tensors)))
    for name in sorted(tensors, key=lambda s: s.encode("utf-8")):
        dtype, shape, data = tensors[name]
        data_hash = blake3.blake3(data, max_threads=blake3.blake3.AUTO).digest()
        name_b, dtype_b = name.encode("utf-8"), dtype.encode("ascii")
        h.update(struct.pack("<Q", len(name_b)) + name_b)
        h.update(struct.pack("<Q", len(dtype_b)) + dtype_b)
        h.update(struct.pack("<I", len(shape)) + b"".join(struct.pack("<Q", d) for d in shape))
        h.update(struct.pack("<Q", len(data)) + data_hash)
    return h.hexdigest()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} MODEL_DIR")
    print(fingerprint(sys.argv[1]))
