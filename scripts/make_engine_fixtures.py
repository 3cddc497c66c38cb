#!/usr/bin/env python3
"""Write the engine parity fixtures under tests/fixtures/engine/.

Each fixture is a tiny random-initialized Hugging Face checkpoint plus what
transformers computes on it: the final hidden state (after the final norm, the
vector the LM head reads) and the logits at every position of a few token
sequences, and greedy continuations from `generate`. The Rust tests
(engine/tests/parity.rs) read only the committed output; CI never runs this.

Run by hand, once, after changing it:

    python3 -m venv /tmp/refvenv
    /tmp/refvenv/bin/pip install torch transformers safetensors numpy
    /tmp/refvenv/bin/python scripts/make_engine_fixtures.py

Models (all with the stories260K tokenizer, vocabulary 512):

* qwen2-tiny: Qwen2ForCausalLM, q/k/v bias, GQA 4:2, untied embeddings,
  rope_theta 1e6, f32, saved as two shards with model.safetensors.index.json,
  a ChatML chat template and two EOS ids in generation_config.json.
* llama-tiny: LlamaForCausalLM, tied embeddings, multi-query attention (one KV
  head), head_dim 24 != hidden/heads, llama3 rope scaling, f32.
* llama-tiny-bf16: llama-tiny's weights rounded to bf16 and stored as bf16;
  the reference is transformers in f32 on those same (rounded) weights, so it
  checks the bf16 loading path to the f32 tolerance.
* llama-bias-f16: LlamaForCausalLM with attention and MLP biases, untied,
  stored as f16 (reference in f32 on the rounded weights, as above).

Every parameter is drawn at random (norm weights and biases included; the
library's init leaves them at 1 and 0, which would hide a missing bias), with
scales that keep activations O(1), so logits are spread out. The script
checks that every greedy step has a top-1/top-2 logit gap of at least 1e-3,
so an implementation within the 1e-4 tolerance cannot legitimately pick a
different token.
"""

import json
import os
import shutil
import sys

import torch
import transformers
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "engine")
TOKENIZER_SRC = os.path.join(ROOT, "tests", "fixtures", "stories260K")

CHATML = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{% endif %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] | trim + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

SEQ_LENGTHS = [1, 9, 17]
GREEDY_PROMPTS = [[1], [1, 403, 407, 261, 378]]
GREEDY_NEW_TOKENS = 24
MIN_GAP = 1e-3


def randomize(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))
            else:
                fan_in = p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)


def randomize_with_margin(model, base_seed):
    """Randomizes with the first seed from base_seed whose greedy steps all
    have a top-2 gap of at least MIN_GAP (random models have near-ties)."""
    for seed in range(base_seed, base_seed + 100):
        randomize(model, seed)
        if all(greedy(model, p)[1] >= MIN_GAP for p in GREEDY_PROMPTS):
            return seed
    sys.exit(f"no seed in {base_seed}..+100 gives greedy gaps >= {MIN_GAP}")


def round_to(model, dtype):
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.to(dtype).to(torch.float32))


def sequences(seed, vocab):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(3, vocab, (n,), generator=g).tolist() for n in SEQ_LENGTHS]


def reference(model, seqs):
    tensors = {}
    for i, ids in enumerate(seqs):
        x = torch.tensor([ids])
        with torch.no_grad():
            out = model(input_ids=x, output_hidden_states=True)
            base = model.model(input_ids=x)
        hidden = base.last_hidden_state[0]
        # the last entry of hidden_states is the normed state; both must agree
        assert torch.equal(hidden, out.hidden_states[-1][0])
        tensors[f"seq{i}.hidden"] = hidden.contiguous().float()
        tensors[f"seq{i}.logits"] = out.logits[0].contiguous().float()
    return tensors


def greedy(model, prompt):
    x = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(
            input_ids=x,
            attention_mask=torch.ones_like(x),
            max_new_tokens=GREEDY_NEW_TOKENS,
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
        )
    new = out.sequences[0, len(prompt) :].tolist()
    gaps = []
    for scores in out.scores:
        top = torch.topk(scores[0], 2).values
        gaps.append(float(top[0] - top[1]))
    return new, min(gaps)


def write(name, model, seqs, dtype, note, chat_template=None, gen_eos=None, shard=None):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    ref = reference(model, seqs)
    greedy_out = []
    for prompt in GREEDY_PROMPTS:
        new, gap = greedy(model, prompt)
        if gap < MIN_GAP:
            sys.exit(f"{name}: greedy top-2 gap {gap:.2e} < {MIN_GAP}; change the seed")
        greedy_out.append({"prompt": prompt, "generated": new, "min_top2_gap": gap})

    store = model.to(dtype)
    if shard:
        store.save_pretrained(d, max_shard_size=shard, safe_serialization=True)
    else:
        store.save_pretrained(d, safe_serialization=True)
    model.to(torch.float32)
    # generation_config.json: what generate() used, with our EOS override
    if gen_eos is not None:
        path = os.path.join(d, "generation_config.json")
        with open(path) as f:
            gc = json.load(f)
        gc["eos_token_id"] = gen_eos
        with open(path, "w") as f:
            json.dump(gc, f, indent=2)
    for f in ("tokenizer.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(TOKENIZER_SRC, f), d)
    with open(os.path.join(TOKENIZER_SRC, "tokenizer_config.json")) as f:
        tc = json.load(f)
    if chat_template:
        tc["chat_template"] = chat_template
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump(tc, f, indent=2)
    save_file(ref, os.path.join(d, "reference.safetensors"))
    with open(os.path.join(d, "reference.json"), "w") as f:
        json.dump(
            {
                "note": note,
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "sequences": seqs,
                "greedy": greedy_out,
            },
            f,
            indent=1,
        )
    print(name, "written:", sorted(os.listdir(d)))


def main():
    torch.manual_seed(0)
    common = dict(
        vocab_size=512,
        hidden_size=64,
        max_position_embeddings=256,
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
        hidden_act="silu",
    )

    # generate() stops at any id of generation_config.eos_token_id; set it
    # before generating so the committed generation_config.json is what ran.
    cfg = transformers.Qwen2Config(
        intermediate_size=160,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        rope_theta=1e6,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        use_sliding_window=False,
        **common,
    )
    m = transformers.Qwen2ForCausalLM(cfg).eval()
    seed = randomize_with_margin(m, 11)
    m.generation_config.eos_token_id = [2, 5]
    write(
        "qwen2-tiny",
        m,
        sequences(12, 512),
        torch.float32,
        f"Qwen2: q/k/v bias, GQA 4:2, untied, rope_theta 1e6, f32, 2 shards; seed {seed}",
        chat_template=CHATML,
        gen_eos=[2, 5],
        shard="500KB",
    )

    cfg = transformers.LlamaConfig(
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=24,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 32,
        },
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        attention_bias=False,
        mlp_bias=False,
        **common,
    )
    m = transformers.LlamaForCausalLM(cfg).eval()
    seed = randomize_with_margin(m, 21)
    seqs = sequences(22, 512)
    write("llama-tiny", m, seqs, torch.float32,
          f"Llama: tied, MQA, head_dim 24, llama3 rope scaling, f32; seed {seed}")
    round_to(m, torch.bfloat16)
    write("llama-tiny-bf16", m, seqs, torch.bfloat16,
          "llama-tiny rounded to bf16, stored bf16; reference in f32 on the rounded weights")

    cfg = transformers.LlamaConfig(
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=8,
        num_key_value_heads=2,
        rope_theta=10000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=False,
        attention_bias=True,
        mlp_bias=True,
        **common,
    )
    m = transformers.LlamaForCausalLM(cfg).eval()
    seed = randomize_with_margin(m, 31)
    round_to(m, torch.float16)
    write("llama-bias-f16", m, sequences(32, 512), torch.float16,
          f"Llama: attention and MLP biases, untied, stored f16; reference in f32 on the rounded weights; seed {seed}")


if __name__ == "__main__":
    main()
