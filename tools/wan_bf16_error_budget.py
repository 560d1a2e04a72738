#!/usr/bin/env python3
"""Where the Wan2.1 VAE's bf16 error comes from on the tiny decode fixture: diffusers'
`AutoencoderKLWan` (tests/fixtures/vae/tiny-wan) run in f32 with bf16 rounding emulated where our
CUDA backend rounds, each variant's relative L2 from the plain f32 decode (weights rounded to bf16
in both, so the table isolates the activations' roundings).

The companion of tools/ltx2_bf16_error_budget.py, which found the LTX-2 VAE's error in its
residual stream. Here the `wan_vae_decode_matches_cpu` GPU test is 1.70e-2 on decode.3x4x6
(tolerance 1e-2; the released-width Wan decode is 7.6-7.9e-3), and the variants say whether an f32
stream would bring it under:
- `bf16-stream`: every conv's (3D and the attention's 2D) input and output, and every resnet's,
  attention block's and resample's output rounded, as our CUDA backend does;
- `f32-resnets`: the resnets' sums in f32;
- `f32-stream`: the attention blocks' and resamples' outputs in f32 too;
then one kind of rounding at a time: conv inputs only, conv outputs only, the sums only.
Measured 2026-12-04: 1.42e-2, 1.15e-2, 1.10e-2; 8.6e-3, 9.2e-3, 1.14e-2 on decode.3x4x6: at 16
channels every rounding counts, and an f32 stream alone would not meet 1e-2.

CPU, a few seconds:
    python3 tools/wan_bf16_error_budget.py
"""

import os

import torch
from diffusers import AutoencoderKLWan
from diffusers.models.autoencoders import autoencoder_kl_wan as wan
from safetensors.torch import load_file

from bf16_emulation import bf16, rounded

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "vae")
SUMS = (wan.WanResidualBlock, wan.WanAttentionBlock, wan.WanResample)
# variant: (conv inputs rounded, conv outputs rounded, which sums are rounded)
VARIANTS = {
    "bf16-stream": (True, True, SUMS),
    "f32-resnets": (True, True, (wan.WanAttentionBlock, wan.WanResample)),
    "f32-stream": (True, True, ()),
    "conv inputs only": (True, False, ()),
    "conv outputs only": (False, True, ()),
    "sums only": (False, False, SUMS),
}


def emulated(model, variant):
    """Our roundings as the variant says (see the module docstring)."""
    conv_in, conv_out, sums = VARIANTS[variant]
    modules = list(model.modules())
    convs = [m for m in modules if isinstance(m, (torch.nn.Conv3d, torch.nn.Conv2d))]
    outputs = (convs if conv_out else []) + [m for m in modules if sums and isinstance(m, sums)]
    return rounded(inputs_of=convs if conv_in else [], outputs_of=outputs)


def main():
    model = AutoencoderKLWan.from_pretrained(os.path.join(FIXTURES, "tiny-wan", "vae")).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(bf16(p))
    for case in ["3x4x6", "b2.2x5x3"]:
        z = bf16(load_file(os.path.join(FIXTURES, f"tiny-wan.decode.{case}.safetensors"))["latents"])
        with torch.no_grad():
            ref = model.decode(z).sample
            for variant in VARIANTS:
                with emulated(model, variant):
                    out = model.decode(z).sample
                err = float((out - ref).norm() / ref.norm())
                print(f"wan vae decode.{case}, {variant}: rel L2 from f32 {err:.3e}", flush=True)


if __name__ == "__main__":
    main()
