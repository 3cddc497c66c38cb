#!/usr/bin/env python3
"""Hugging Face transformers' decode throughput on a checkpoint, the baseline
`cuda-bench` (kernels/check) compares the CUDA backend with.

For each batch size B: B random prompts of --context tokens, `generate` in
bf16 on the GPU (sdpa attention, greedy, the default dynamic cache), once
with 1 new token and once with 1 + --new-tokens (min_new_tokens forces the
length); decode tokens/s = B * new_tokens / (t_long - t_short), the median of
--reps runs each, after a warm-up. The same method as cuda-bench, so the two
figures are comparable. Writes JSON for `cuda-bench --transformers FILE`.

Run by scripts/gpu-check.sh on the GPU machine (torch + transformers there;
no network needed): python3 scripts/bench_transformers.py --model DIR --json OUT
"""
import argparse
import json
import statistics
import sys
import time


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="Hugging Face model directory")
    ap.add_argument("--batches", default="1,16,64,256")
    ap.add_argument("--context", type=int, default=1024)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", required=True, help="where to write the figures")
    ap.add_argument("--device", default="cuda",
                    help="torch device (cpu only to try the script without a GPU)")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    dev = torch.device(args.device)
    cuda = dev.type == "cuda"
    if cuda and not torch.cuda.is_available():
        sys.exit("bench_transformers: no CUDA device visible to torch")

    def sync():
        if cuda:
            torch.cuda.synchronize()
    model = AutoModelForCausalLM.from_pretrained(
        args.model, dtype=torch.bfloat16, attn_implementation="sdpa"
    ).to(dev)
    model.eval()
    vocab = model.config.vocab_size
    gen = torch.Generator().manual_seed(0)

    def timed(ids, new_tokens):
        sync()
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=new_tokens,
                min_new_tokens=new_tokens,
                do_sample=False,
                pad_token_id=0,
            )
        sync()
        secs = time.perf_counter() - t
        assert out.shape == (ids.shape[0], ids.shape[1] + new_tokens), out.shape
        return secs

    # first use: kernels, allocator and cuBLAS handles
    timed(torch.randint(0, vocab, (1, args.context), generator=gen).to(dev), 4)
    results = []
    for batch in [int(b) for b in args.batches.split(",")]:
        ids = torch.randint(0, vocab, (batch, args.context), generator=gen).to(dev)
        timed(ids, 4)  # warm-up
        short = statistics.median(timed(ids, 1) for _ in range(args.reps))
        long = statistics.median(timed(ids, 1 + args.new_tokens) for _ in range(args.reps))
        tps = batch * args.new_tokens / (long - short)
        results.append(
            {
                "batch": batch,
                "decode_tokens_per_sec": tps,
                "prefill_secs": short,
                "long_secs": long,
            }
        )
        print(f"transformers batch {batch}: {tps:.0f} decode tokens/s "
              f"(t(1) {short:.3f} s, t({1 + args.new_tokens}) {long:.3f} s)", flush=True)
    report = {
        "device": torch.cuda.get_device_name(0) if cuda else str(dev),
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "context": args.context,
        "new_tokens": args.new_tokens,
        "results": results,
    }
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
