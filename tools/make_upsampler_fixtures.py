#!/usr/bin/env python3
"""Reference fixtures for the LTX-2 spatial latent upsampler ×2 (MODEL.md §8.2–8.3).

Builds a tiny random-weight `LTX2LatentUpsamplerModel` (diffusers 0.42.1
`pipelines/ltx2/latent_upsampler.py`, pinned in tools/requirements.txt) with the released
mechanics at small widths (dims 3, spatial_upsample true, temporal_upsample false,
rational_spatial_scale 2.0, use_rational_resampler true: a per-frame Conv2d + pixel shuffle ×2 and
a blur-downsample of stride 1, i.e. none), saves it with `save_pretrained` under
tests/fixtures/upsampler/tiny-ltx2-upsampler and runs it on fixed random latents, writing inputs
and outputs (f32 and f64 forwards; the f64 one stored rounded to f32, which our safetensors reader
takes) as safetensors next to it.

Also writes the denormalise → upsample → renormalise hand-off (MODEL.md §8.2 step 1) with random
latent statistics, computed with the pipelines' own static methods
(`LTX2LatentUpsamplePipeline._denormalize_latents`, `LTX2Pipeline._normalize_latents`), the released
upsampler config to tests/fixtures/configs/ltx2_latent_upsampler.json and its parameter count
(instantiated on the meta device) into tests/fixtures/configs/parameter_counts.json.

The checkpoint is stored in bf16 and the references run the same rounded weights in f32 and f64.
Every parameter is randomised: GroupNorm weights 1 + 0.3·N, biases 0.3·N, conv weights
N/√fan_in; default inits (ones, zeros) would hide bugs.

Run from the repository root, on a CPU machine:
    python3 -m venv /tmp/sana-tools && /tmp/sana-tools/bin/pip install -r tools/requirements.txt
    /tmp/sana-tools/bin/python tools/make_upsampler_fixtures.py
"""

import json
import math
import os
import shutil
import sys

import diffusers
import torch
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel
from diffusers.pipelines.ltx2.pipeline_ltx2 import LTX2Pipeline
from diffusers.pipelines.ltx2.pipeline_ltx2_latent_upsample import LTX2LatentUpsamplePipeline
from safetensors.torch import save_file

SEED = 20261203
ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")
OUT = os.path.join(ROOT, "upsampler")
CONFIGS = os.path.join(ROOT, "configs")
COMMAND = "python3 tools/make_upsampler_fixtures.py"
NAME = "tiny-ltx2-upsampler"

# MODEL.md §8.3, convert_ltx2_to_diffusers.py version "2.0".
RELEASED = dict(
    in_channels=128,
    mid_channels=1024,
    num_blocks_per_stage=4,
    dims=3,
    spatial_upsample=True,
    temporal_upsample=False,
    rational_spatial_scale=2.0,
    use_rational_resampler=True,
)
# GroupNorm(32, mid_channels) is hard-coded in diffusers, so mid_channels ≥ 64 would be needed for
# groups of several channels, but one 64→64 3³ conv alone is 110 K parameters and a ResBlock has
# two: mid_channels 32 (one channel per group; the grouping itself is unit-tested in
# src/backend/cpu/norm.rs) keeps the checkpoint at ~0.5 MB. Two blocks per stage so the block
# indices are exercised; in_channels 8 is not a multiple of 32 on purpose.
TINY = dict(RELEASED, in_channels=8, mid_channels=32, num_blocks_per_stage=2)

# (batch, latent frames, h, w): one frame (an image), three frames at odd sizes, a batch of two.
CASES = {"1x5x7": (1, 1, 5, 7), "3x4x5": (1, 3, 4, 5), "b2.2x3x3": (2, 2, 3, 3)}


def randomise(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            n = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if ".norm" in name or name.startswith("initial_norm"):
                p.copy_(1 + 0.3 * n if name.endswith("weight") else 0.3 * n)
            elif p.ndim == 1:
                p.copy_(0.3 * n)
            else:
                p.copy_(n / math.sqrt(p[0].numel()))


def write_released_config():
    os.makedirs(CONFIGS, exist_ok=True)
    with torch.device("meta"):
        model = LTX2LatentUpsamplerModel(**RELEASED)
    count = sum(p.numel() for p in model.parameters())
    config = dict(model.config)
    config = {k: v for k, v in config.items() if not k.startswith("_")}
    config = {"_class_name": "LTX2LatentUpsamplerModel", "_diffusers_version": diffusers.__version__, **config}
    with open(os.path.join(CONFIGS, "ltx2_latent_upsampler.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    print(f"ltx2_latent_upsampler: {count:,} parameters")
    # merged: the other fixture scripts record their counts in the same file
    path = os.path.join(CONFIGS, "parameter_counts.json")
    recorded = json.load(open(path)) if os.path.exists(path) else dict(counts={})
    recorded["counts"]["ltx2_latent_upsampler"] = count
    sources = [s.strip() for s in recorded.get("source", "").split(",") if s.strip()]
    if COMMAND not in sources:
        sources.append(COMMAND)
    recorded.update(source=", ".join(sources), diffusers=diffusers.__version__)
    with open(path, "w") as f:
        json.dump(recorded, f, indent=2)
        f.write("\n")


def main():
    write_released_config()
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    meta = dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED))
    model = LTX2LatentUpsamplerModel(**TINY).eval()
    randomise(model, gen)
    # stored in bf16 (half the bytes; the released checkpoint is bf16 too), run in f32 and f64 from
    # exactly those rounded values
    model = model.to(torch.bfloat16)
    model.save_pretrained(os.path.join(OUT, NAME))
    model = model.float()
    model64 = LTX2LatentUpsamplerModel(**TINY).eval().double()
    model64.load_state_dict(model.state_dict())
    print(f"{NAME}: {sum(p.numel() for p in model.parameters())} parameters")
    c = TINY["in_channels"]
    for case, (b, t, h, w) in CASES.items():
        z = torch.randn((b, c, t, h, w), generator=gen)
        with torch.no_grad():
            out = model(z)
            out64 = model64(z.double())
        path = os.path.join(OUT, f"{NAME}.forward.{case}.safetensors")
        save_file({"latents": z.contiguous(), "upsampled": out.contiguous(), "upsampled_f64": out64.float().contiguous()},
                  path, metadata=dict(meta, model=NAME, case=f"forward.{case}"))
        print(f"{NAME}.forward.{case}: {tuple(z.shape)} -> {tuple(out.shape)}, "
              f"f32 vs f64 rel L2 {float((out.double() - out64).norm() / out64.norm()):.2e}")
    # The hand-off: SANA latents are normalised; the upsampler runs on denormalised ones.
    b, t, h, w = CASES["3x4x5"]
    z = torch.randn((b, c, t, h, w), generator=gen)
    mean = 0.5 * torch.randn(c, generator=gen)
    std = 0.5 + torch.rand(c, generator=gen)
    with torch.no_grad():
        x = LTX2LatentUpsamplePipeline._denormalize_latents(z, mean, std, 1.0)
        x = model(x)
        out = LTX2Pipeline._normalize_latents(x, mean, std, 1.0)
    path = os.path.join(OUT, f"{NAME}.handoff.3x4x5.safetensors")
    save_file({"latents": z.contiguous(), "latents_mean": mean, "latents_std": std, "upsampled": out.contiguous()},
              path, metadata=dict(meta, model=NAME, case="handoff.3x4x5"))
    print(f"{NAME}.handoff.3x4x5: {tuple(z.shape)} -> {tuple(out.shape)}")


if __name__ == "__main__":
    sys.exit(main())
