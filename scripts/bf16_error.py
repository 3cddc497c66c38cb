#!/usr/bin/env python3
"""How far a correct bf16 forward pass of a checkpoint lands from its f32
logits: the error `cuda-bench` must accept when it validates the CUDA
backend's bf16 path against the CPU engine (f32 arithmetic), measured in
PyTorch on the CPU, no GPU needed.

Two figures, relative logits error ||bf16 - f32|| / ||f32|| over a prompt:
- "grail's rounding points": the f32 model with values rounded to bf16
  where the CUDA backend stores them in bf16 (kernels/src/cuda/model.rs's
  workspace): the normed inputs of the q/k/v and gate/up products, the
  keys and values (the KV cache; keys here before rope, the backend rounds
  them after), the attention output, the activation before the down
  product and the final normed hidden states; residual stream, q, and
  every product's output stay f32;
- "all bf16": transformers' own bf16 model (weights, residual, every
  output in bf16), for comparison.

    /tmp/refvenv/bin/python scripts/bf16_error.py --model DIR

Needs torch and transformers (see scripts/make_engine_fixtures.py). The
prompt is token i = (stride i + offset) mod vocab: by default cuda-bench's
validation prompt; `--tokens 37 --stride 13 --offset 5` is the CUDA forward
test's (kernels/check/tests/cuda/kernels.rs), whose emulated figures it
can be held against.
"""
import argparse

import torch
import transformers

PRODUCTS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head")


def to_bf16(t):
    return t.to(torch.bfloat16).to(torch.float32)


def logits(model, ids, rounding):
    hooks = []
    if rounding:
        for name, module in model.named_modules():
            leaf = name.rsplit(".", 1)[-1]
            if leaf in PRODUCTS:
                hooks.append(module.register_forward_pre_hook(
                    lambda _m, args: (to_bf16(args[0]),) + tuple(args[1:])))
            if leaf in ("k_proj", "v_proj"):
                hooks.append(module.register_forward_hook(lambda _m, _a, out: to_bf16(out)))
    try:
        with torch.no_grad():
            return model(input_ids=ids).logits[0].double()
    finally:
        for h in hooks:
            h.remove()


def relative(a, b):
    return ((a - b).norm() / b.norm()).item()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="Hugging Face model directory")
    ap.add_argument("--tokens", type=int, default=16, help="prompt length (cuda-bench validates 16)")
    ap.add_argument("--stride", type=int, default=7919)
    ap.add_argument("--offset", type=int, default=13)
    a = ap.parse_args()
    model = transformers.AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    ids = torch.tensor([[(i * a.stride + a.offset) % vocab for i in range(a.tokens)]])
    want = logits(model, ids, False)
    ours = relative(logits(model, ids, True), want)
    del model
    full = transformers.AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.bfloat16).eval()
    with torch.no_grad():
        all_bf16 = relative(full(input_ids=ids).logits[0].double(), want)
    print(f"{a.model}, {a.tokens} tokens: relative logits error vs f32: "
          f"grail's rounding points {ours:.3e}, all bf16 (transformers) {all_bf16:.3e}")


if __name__ == "__main__":
    main()
