#!/usr/bin/env python3
"""Reference fixtures for the Wan2.1 video autoencoder (MODEL.md §3.1–3.2).

Builds tiny random-weight `AutoencoderKLWan`s with diffusers (pinned in tools/requirements.txt),
saves them with `save_pretrained` (the exact checkpoint layout) and runs encode and decode on fixed
random inputs, writing inputs + outputs as safetensors under tests/fixtures/vae/.

Every parameter is randomised (RMS-norm gammas and biases included): the default inits (ones,
zeros) would hide a wrong norm or a dropped bias. Decoder outputs are taken before diffusers'
final clamp to [-1, 1] as well as after, so a wrong value cannot hide behind the clamp.

Run from the repository root, on a CPU machine:
    python3 -m venv /tmp/sana-tools && /tmp/sana-tools/bin/pip install -r tools/requirements.txt
    /tmp/sana-tools/bin/python tools/make_vae_fixtures.py
"""

import inspect
import json
import math
import os
import shutil
import sys

import diffusers
import torch
from diffusers import AutoencoderKLWan
from safetensors.torch import save_file

SEED = 20261128
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "vae")
CONFIGS = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "configs")
COMMAND = "python3 tools/make_vae_fixtures.py"

TINY = {
    # Wan2.1's architecture (dim_mult [1,2,4,4], two resnets per stage, temporal downsampling in
    # stages 2 and 3) at base_dim 4: channels 4, 8, 16, 16 (decoder 16 → 8 after each upsample).
    "tiny-wan": dict(base_dim=4, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                     temperal_downsample=[False, True, True], dropout=0.0),
}

# (frames, height, width) of the encoder inputs; the decoder gets the latent of the same clip size
# plus a batch of two. 1 frame = an image (I2V conditioning); 5 and 9 = one and two 4-frame chunks.
ENCODE = {"1x32x48": (1, 32, 48), "5x32x48": (5, 32, 48), "9x40x24": (9, 40, 24)}
DECODE = {"1x4x6": (1, 1, 4, 6), "3x4x6": (1, 3, 4, 6), "b2.2x5x3": (2, 2, 5, 3)}


def randomise(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "gamma" in name:
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            elif p.ndim == 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * (1.4 / math.sqrt(fan_in)))


def write_released_config():
    """The released Wan2.1 VAE config (diffusers' AutoencoderKLWan defaults, MODEL.md §3.2) for the
    real-size benchmark: tests/fixtures/configs/wan2.1_vae.json."""
    sig = inspect.signature(AutoencoderKLWan.__init__)
    cfg = {k: v.default for k, v in sig.parameters.items() if k != "self"}
    path = os.path.join(CONFIGS, "wan2.1_vae.json")
    with open(path, "w") as f:
        json.dump({"_class_name": "AutoencoderKLWan", "_diffusers_version": diffusers.__version__, **cfg}, f, indent=2)
    params = sum(p.numel() for p in AutoencoderKLWan(**cfg).parameters())
    print(f"{path}: {params} parameters")


def main():
    write_released_config()
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    shutil.rmtree(OUT, ignore_errors=True)
    os.makedirs(OUT)
    meta = dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED))
    for name, cfg in TINY.items():
        model = AutoencoderKLWan(**cfg).eval()
        randomise(model, gen)
        model.save_pretrained(os.path.join(OUT, name, "vae"))
        for case, (t, h, w) in ENCODE.items():
            video = torch.rand((1, 3, t, h, w), generator=gen) * 2 - 1
            with torch.no_grad():
                params = model.encode(video).latent_dist.parameters
            path = os.path.join(OUT, f"{name}.encode.{case}.safetensors")
            save_file({"video": video.contiguous(), "latent_params": params.contiguous()}, path,
                      metadata=dict(meta, model=name, case=f"encode.{case}"))
            print(f"{name}.encode.{case}: video {tuple(video.shape)} -> {tuple(params.shape)}")
        for case, (b, t, h, w) in DECODE.items():
            z = torch.randn((b, 16, t, h, w), generator=gen)
            with torch.no_grad():
                # diffusers' _decode without its final clamp (same loop), and the public decode.
                model.clear_cache()
                x = model.post_quant_conv(z)
                frames = []
                for i in range(t):
                    model._conv_idx = [0]
                    frames.append(model.decoder(x[:, :, i:i + 1], feat_cache=model._feat_map,
                                                feat_idx=model._conv_idx, first_chunk=i == 0))
                raw = torch.cat(frames, 2)
                sample = model.decode(z).sample
            assert torch.equal(sample, raw.clamp(-1, 1)), "the unclamped decode loop drifted from diffusers'"
            path = os.path.join(OUT, f"{name}.decode.{case}.safetensors")
            save_file({"latents": z.contiguous(), "sample_unclamped": raw.contiguous(),
                       "sample": sample.contiguous()}, path, metadata=dict(meta, model=name, case=f"decode.{case}"))
            clamped = float((raw.abs() > 1).double().mean())
            print(f"{name}.decode.{case}: {tuple(z.shape)} -> {tuple(sample.shape)}, {clamped:.0%} clamped")


if __name__ == "__main__":
    sys.exit(main())
