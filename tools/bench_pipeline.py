#!/usr/bin/env python3
"""diffusers side of the end-to-end Base benchmark (issue 6): `SanaVideoPipeline` at the released
configs with random weights — Gemma-2-2B (bf16, eager attention), the 2B transformer (bf16), and
for --config 480p the Wan2.1 VAE (fp32, as the SANA-Video docs run it) at 832×480, for 720p the
LTX-2 VAE (bf16) at 1280×704 — 81 frames, 50 steps, guidance 6, output_type="pt". The tokenizer is the bundled tiny model's (ids only index the random embedding
table; `sana bench generate` uses the same one, so prompt lengths match). One 2-step warmup,
then one timed call (CUDA synchronised wall clock); peak = torch.cuda.max_memory_allocated.

Run from the repository root (one GPU):
  python3 tools/bench_pipeline.py --config 480p|720p --frames 81 --steps 50
stdout: one JSON object.
"""

import argparse
import json
import os
import sys
import time

import diffusers
import torch
from diffusers import (AutoencoderKLLTX2Video, AutoencoderKLWan, DPMSolverMultistepScheduler, SanaVideoPipeline,
                       SanaVideoTransformer3DModel)
from transformers import Gemma2Config, Gemma2Model, PreTrainedTokenizerFast

GIB = 1024**3
ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
diffusers.utils.logging.set_verbosity_error()


def config(name):
    with open(os.path.join(ROOT, "configs", name)) as f:
        return {k: v for k, v in json.load(f).items() if not k.startswith("_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", choices=["480p", "720p"], default="480p")
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--steps", type=int, default=50)
    args = ap.parse_args()
    device = torch.device("cuda")
    torch.manual_seed(0)
    gemma_cfg = Gemma2Config(**config("gemma_2_2b.json"))
    gemma_cfg._attn_implementation = "eager"
    text_encoder = Gemma2Model(gemma_cfg).to(device, torch.bfloat16).eval()
    transformer = SanaVideoTransformer3DModel(**config(f"sana_video_2b_{args.config}.json")).to(device, torch.bfloat16)
    transformer.eval()
    if args.config == "480p":
        vae = AutoencoderKLWan(**config("wan2.1_vae.json")).to(device, torch.float32).eval()
        height, width = 480, 832
    else:
        vae = AutoencoderKLLTX2Video(**config("ltx2_vae.json")).to(device, torch.bfloat16).eval()
        height, width = 704, 1280
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=os.path.join(ROOT, "pipeline", "tiny-sana-video", "tokenizer", "tokenizer.json"),
        bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>", padding_side="right")
    scheduler = DPMSolverMultistepScheduler(flow_shift=8.0, use_flow_sigmas=True, prediction_type="flow_prediction")
    pipe = SanaVideoPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                             scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    weights = torch.cuda.memory_allocated(device)
    negative = ("A chaotic sequence with misshapen, deformed limbs in heavy motion blur, sudden disappearance, jump "
                "cuts, jerky movements, rapid shot changes, frames out of sync, inconsistent character shapes, "
                "temporal artifacts, jitter, and ghosting effects, creating a disorienting visual experience.")
    call = lambda steps: pipe(prompt="a cat sleeping on a warm windowsill motion score: 30.", negative_prompt=negative,
                              height=height, width=width, frames=args.frames, num_inference_steps=steps, guidance_scale=6.0,
                              output_type="pt", generator=torch.Generator(device).manual_seed(42)).frames
    print(f"torch {torch.__version__}, diffusers {diffusers.__version__}, {torch.cuda.get_device_name(device)}",
          file=sys.stderr)
    with torch.inference_mode():
        call(2)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        t0 = time.perf_counter()
        video = call(args.steps)
        torch.cuda.synchronize()
        total = (time.perf_counter() - t0) * 1e3
    print(json.dumps(dict(impl="diffusers-SanaVideoPipeline", config=args.config, frames=args.frames, steps=args.steps, total_ms=total,
                          peak_gib=torch.cuda.max_memory_allocated(device) / GIB, weights_gib=weights / GIB,
                          finite=bool(torch.isfinite(video).all()), out_shape=list(video.shape))), flush=True)


if __name__ == "__main__":
    main()
