#!/usr/bin/env python3
"""Where the LTX-2 VAE's bf16 error comes from, at the released width: diffusers'
`AutoencoderKLLTX2Video` run in f32 with bf16 rounding emulated at the points where our CUDA
backend rounds (src/engine/vae/ltx2/blocks.rs, kernels/conv*.cu), each variant's relative L2 from
the plain f32 run.

Our CUDA backend keeps weights and activations in bf16 and accumulates each conv in f32. The
emulation rounds to bf16: the weights; every conv's input (the fused norm + SiLU output) and
output (bias added, as the epilogue does); and the residual stream where the variant says:
- `bf16-stream`: the CUDA backend until 2026-12-04: the conv output rounded, then each resnet's
  sum rounded again (the epilogue added the staged bf16 tile onto the bf16 residual), and the
  up/downsamplers' sums rounded;
- `single-rounding`: as bf16-stream, but each resnet's sum rounded once (conv2's f32 result
  added to the bf16 residual before rounding);
- `f32-resnets`: the CUDA backend since 2026-12-04 (`resnets_f32`): the stream in f32 through
  each block's resnets, rounded to bf16 where it enters an up/downsampler;
- `f32-stream`: the up/downsamplers' sums in f32 as well.
`bf16-stream` is checked against the CUDA backend's measured error on the same architecture (the
`ltx2_vae_*_at_released_width_matches_cpu` GPU tests, 2026-12-04: decode 1.14e-2, encode
1.06e-2); the others say what each change would buy before it is built.

Weights and inputs are drawn like tools/bf16_reference_error_released.py. CPU is enough (~1 min):
    python3 tools/ltx2_bf16_error_budget.py
"""

import argparse

import torch
from diffusers import AutoencoderKLLTX2Video
from diffusers.models.autoencoders import autoencoder_kl_ltx2 as ltx2

from bf16_emulation import bf16, rounded
from bf16_reference_error_released import load, randomise, rel

# variant: (resnet sums rounded, conv2's output rounded before its resnet's sum, up/downsampler
# sums rounded)
VARIANTS = {
    "bf16-stream": (True, True, True),
    "single-rounding": (True, False, True),
    "f32-resnets": (False, True, True),
    "f32-stream": (False, True, False),
}


def emulated(model, variant):
    """Our roundings as the variant says (see the module docstring)."""
    resnet_sums, conv2_rounded, resampler_sums = VARIANTS[variant]
    modules = list(model.modules())
    convs = [m for m in modules if isinstance(m, torch.nn.Conv3d)]
    resnets = [m for m in modules if isinstance(m, ltx2.LTX2VideoResnetBlock3d)]
    unrounded = set() if conv2_rounded else {id(r.conv2.conv) for r in resnets}
    outputs = [c for c in convs if id(c) not in unrounded]
    outputs += resnets if resnet_sums else []
    if resampler_sums:
        outputs += [m for m in modules if isinstance(m, (ltx2.LTX2VideoUpsampler3d, ltx2.LTX2VideoDownsampler3d))]
    return rounded(inputs_of=convs, outputs_of=outputs)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=5)
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(args.seed)
    model = randomise(load(AutoencoderKLLTX2Video, "ltx2_vae.json"), gen).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(bf16(p))

    def uniform(shape, scale):
        return bf16((torch.rand(shape, generator=gen) * 2 - 1) * scale)

    cases = [
        ("decode 2x2x3 (128 ch)", lambda z: model.decode(z).sample, uniform((1, 128, 2, 2, 3), 2.0)),
        ("encode 9x64x96", lambda v: model.encode(v).latent_dist.parameters, uniform((1, 3, 9, 64, 96), 1.0)),
    ]
    for name, fn, x in cases:
        with torch.no_grad():
            ref = fn(x)
            for variant in VARIANTS:
                with emulated(model, variant):
                    out = fn(x)
                print(f"ltx2 vae {name}, {variant}: rel L2 from f32 {rel(out, ref):.3e}", flush=True)


if __name__ == "__main__":
    main()
