#!/usr/bin/env python3
"""PyTorch/transformers side of the text-encoder benchmark (issue 4).

Times one `Gemma2Model` forward (no LM head; what SanaVideoPipeline runs) over a (1, tokens)
prompt with random weights from the released Gemma-2-2B config
(tests/fixtures/configs/gemma_2_2b.json), bf16, eager attention (SDPA drops Gemma-2's logit
soft-capping; the pipeline's reference outputs use eager). CUDA events, median over --iters after
--warmup; peak = torch.cuda.max_memory_allocated over the timed loop, weights included.

Run from the repository root (one GPU):
  python3 tools/bench_text.py --config tests/fixtures/configs/gemma_2_2b.json --tokens 300
stdout: one JSON object.
"""

import argparse
import json
import statistics
import sys

import torch
import transformers
from transformers import Gemma2Config, Gemma2Model

GIB = 1024**3


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--tokens", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    args = ap.parse_args()
    device = torch.device("cuda")
    with open(args.config) as f:
        cfg = Gemma2Config(**{k: v for k, v in json.load(f).items() if not k.startswith("_")})
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    model = Gemma2Model(cfg).to(device, torch.bfloat16).eval()
    weights = torch.cuda.memory_allocated(device)
    ids = torch.randint(0, cfg.vocab_size, (1, args.tokens), device=device)
    mask = torch.ones_like(ids)
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name(device)}",
          file=sys.stderr)
    with torch.inference_mode():
        for _ in range(args.warmup):
            model(input_ids=ids, attention_mask=mask)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        times = []
        for _ in range(args.iters):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = model(input_ids=ids, attention_mask=mask).last_hidden_state
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end))
    print(json.dumps(dict(impl="transformers-eager-bf16", tokens=args.tokens, median_ms=statistics.median(times),
                          min_ms=min(times), peak_gib=torch.cuda.max_memory_allocated(device) / GIB,
                          weights_gib=weights / GIB, finite=bool(torch.isfinite(out).all()))), flush=True)


if __name__ == "__main__":
    main()
