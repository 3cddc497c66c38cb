#!/usr/bin/env python3
"""Check `grail model forward` against transformers on checkpoints no test
has seen: random-initialized Llama and Qwen2 models with a fresh seed and
shape (or a model directory you give), f32 weights.

    /tmp/refvenv/bin/python scripts/check_forward.py [--seed N] [--model DIR]

Needs torch and transformers (see scripts/make_engine_fixtures.py) and a
built `grail` (cargo build --release -p grail-validator). Prints the max
absolute error of hidden states and logits per model and exits 1 if any
exceeds 1e-4.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import torch
import transformers

from make_engine_fixtures import randomize  # same parameter scales as the fixtures

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRAIL = os.path.join(ROOT, "target", "release", "grail")
TOL = 1e-4


def random_models(seed):
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: int(torch.randint(lo, hi, (1,), generator=g))
    heads = r(2, 7)
    kv = [h for h in range(1, heads + 1) if heads % h == 0][r(0, 100) % len([h for h in range(1, heads + 1) if heads % h == 0])]
    common = dict(
        vocab_size=r(300, 1200), hidden_size=heads * 2 * r(4, 12), intermediate_size=r(50, 300),
        num_hidden_layers=r(1, 4), num_attention_heads=heads, num_key_value_heads=kv,
        max_position_embeddings=512, rms_norm_eps=1e-5, bos_token_id=1, eos_token_id=2,
    )
    yield "Qwen2", transformers.Qwen2ForCausalLM(transformers.Qwen2Config(
        rope_theta=float(r(1000, 2_000_000)), tie_word_embeddings=bool(r(0, 2)), **common))
    yield "Llama", transformers.LlamaForCausalLM(transformers.LlamaConfig(
        rope_theta=float(r(1000, 600_000)), tie_word_embeddings=bool(r(0, 2)),
        attention_bias=bool(r(0, 2)), mlp_bias=bool(r(0, 2)), **common))


def check(name, model, d, seed):
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(seed + 1)
    ids = torch.randint(0, vocab, (int(torch.randint(5, 40, (1,), generator=g)),), generator=g).tolist()
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]))
        hidden = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
    res = subprocess.run([GRAIL, "model", "forward", "--model", d, "--tokens", ",".join(map(str, ids)), "--json"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        print(f"{name}: grail exited {res.returncode}: {res.stderr}")
        return False
    got = json.loads(res.stdout)
    eh = (torch.tensor(got["hidden"]) - hidden).abs().max().item()
    el = (torch.tensor(got["logits"]) - out.logits[0]).abs().max().item()
    ok = eh <= TOL and el <= TOL
    print(f"{name}: {len(ids)} tokens, hidden max abs err {eh:.2e}, logits max abs err {el:.2e}: {'ok' if ok else 'FAIL'}")
    return ok


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=int.from_bytes(os.urandom(2), "little"))
    ap.add_argument("--model", help="an existing model directory to check instead")
    a = ap.parse_args()
    ok = True
    if a.model:
        model = transformers.AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
        ok = check(a.model, model, a.model, a.seed)
    else:
        print(f"seed {a.seed}")
        for name, model in random_models(a.seed):
            randomize(model, a.seed)
            model.eval()
            with tempfile.TemporaryDirectory() as d:
                model.save_pretrained(d, safe_serialization=True)
                c = model.config
                print(f"{name}: hidden {c.hidden_size}, heads {c.num_attention_heads}/{c.num_key_value_heads}, "
                      f"layers {c.num_hidden_layers}, vocab {c.vocab_size}, tied {c.tie_word_embeddings}")
                ok &= check(name, model, d, a.seed)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
