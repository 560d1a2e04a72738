#!/usr/bin/env python3
"""The references' own bf16 error at the released autoencoder and upsampler widths: diffusers'
`AutoencoderKLWan`, `AutoencoderKLLTX2Video` and `LTX2LatentUpsamplerModel` built from the
released configs (tests/fixtures/configs), run in bf16 and in f32 on the same small clips, relative
L2 of the bf16 output from the f32 one.

It is the yardstick for the `*_at_released_width_matches_cpu` GPU tests (tests/gpu_backend.rs),
which hold our CUDA backend within 1e-2 of our f32 CPU forward on the same architectures and clip
sizes. The weights are drawn the way our `WeightSource::Random` draws them (src/engine/weights.rs:
matrices U(±1/√fan_in), vectors U(±0.1) centred on 1 for norm weights), from torch's generator:
the same distribution, not the same values. Inputs: latents U(±2), video U(±1), rounded to bf16
so both precisions see the same values.

f32 runs with TF32 off (cuBLAS and cuDNN), so it is a true f32 reference. Run from the repository
root on a GPU machine (or `--device cpu`, slowly):
    python3 tools/bf16_reference_error_released.py
stdout: one line per case.
"""

import argparse
import copy
import json
import os

import diffusers
import torch
from diffusers import AutoencoderKLLTX2Video, AutoencoderKLWan
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "configs")
diffusers.utils.logging.set_verbosity_error()


def randomise(model, gen):
    """Every parameter (buffers such as the latent statistics are left as the config sets them),
    drawn like src/engine/weights.rs."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            u = torch.rand(p.shape, generator=gen) * 2 - 1
            if p.ndim == 1:
                p.copy_((1.0 if "norm" in name else 0.0) + 0.1 * u)
            else:
                fan_in = max(1, p[0].numel())
                p.copy_(u / fan_in**0.5)
    return model


def load(cls, config_name):
    with open(os.path.join(CONFIGS, config_name)) as f:
        config = {k: v for k, v in json.load(f).items() if not k.startswith("_")}
    return cls.from_config(config)


def rel(out, ref):
    return float((out.float() - ref.float()).norm() / ref.float().norm())


def both(model, device, fn, *inputs):
    """fn(model, inputs) in f32 and in bf16 on the same (bf16-rounded) inputs."""
    f32 = copy.deepcopy(model).to(device, torch.float32).eval()
    b16 = copy.deepcopy(model).to(device, torch.bfloat16).eval()
    with torch.no_grad():
        ref = fn(f32, *[x.to(device, torch.float32) for x in inputs])
        out = fn(b16, *[x.to(device, torch.bfloat16) for x in inputs])
    return rel(out, ref)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    gen = torch.Generator().manual_seed(args.seed)

    def uniform(shape, scale):
        return ((torch.rand(shape, generator=gen) * 2 - 1) * scale).bfloat16()

    decode = lambda m, z: m.decode(z).sample  # noqa: E731
    encode = lambda m, v: m.encode(v).latent_dist.parameters  # noqa: E731
    cases = [
        ("wan2.1 vae decode 3x8x12 (16 ch)", AutoencoderKLWan, "wan2.1_vae.json", decode, (1, 16, 3, 8, 12), 2.0),
        ("wan2.1 vae encode 9x64x96", AutoencoderKLWan, "wan2.1_vae.json", encode, (1, 3, 9, 64, 96), 1.0),
        ("ltx2 vae decode 2x2x3 (128 ch)", AutoencoderKLLTX2Video, "ltx2_vae.json", decode, (1, 128, 2, 2, 3), 2.0),
        ("ltx2 vae encode 9x64x96", AutoencoderKLLTX2Video, "ltx2_vae.json", encode, (1, 3, 9, 64, 96), 1.0),
        (
            "ltx2 upsampler 3x4x5 (128 ch)",
            LTX2LatentUpsamplerModel,
            "ltx2_latent_upsampler.json",
            lambda m, z: m(z),
            (1, 128, 3, 4, 5),
            2.0,
        ),
    ]
    models = {}
    for name, cls, config, fn, shape, scale in cases:
        if config not in models:
            models[config] = randomise(load(cls, config), gen)
        print(f"{name}: diffusers bf16 vs diffusers f32: rel L2 {both(models[config], args.device, fn, uniform(shape, scale)):.3e}", flush=True)


if __name__ == "__main__":
    main()
