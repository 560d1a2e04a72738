#!/usr/bin/env python3
"""How far the references' own bf16 forwards are from their f32 forwards on our fixtures:
diffusers' transformer on each transformer fixture, transformers' Gemma-2 on the decoder one,
diffusers' Wan2.1 / LTX-2 VAEs on their decode and encode fixtures (encode: the posterior
parameters), and the LTX-2 latent upsampler on its forward fixtures.

This is the yardstick for our CUDA backend (bf16 storage, f32 accumulation), which
tests/gpu_backend.rs holds within relative L2 1e-2 of our f32 CPU forward: on these tiny
random-weight models bf16 storage alone costs ~0.6-1.2e-2, in the references as in ours.

Run from the repository root with the tools/requirements.txt environment:
    python tools/bf16_reference_error.py
"""

import glob
import os

import torch
from diffusers import SanaVideoTransformer3DModel
from safetensors.torch import load_file

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "dit")

for path in sorted(glob.glob(os.path.join(FIXTURES, "*.safetensors"))):
    name = os.path.basename(path).split(".")[0]
    model = SanaVideoTransformer3DModel.from_pretrained(
        os.path.join(FIXTURES, name, "transformer"), torch_dtype=torch.bfloat16
    ).eval()
    t = load_file(path)
    with torch.no_grad():
        out = model(
            hidden_states=t["hidden_states"].bfloat16(),
            encoder_hidden_states=t["encoder_hidden_states"].bfloat16(),
            timestep=t["timestep"],
            encoder_attention_mask=t["encoder_attention_mask"].bfloat16(),
        ).sample.float()
    ref = t["sample"]
    rel = float((out - ref).norm() / ref.norm())
    print(f"{os.path.basename(path)}: diffusers bf16 vs diffusers f32: rel L2 {rel:.3e}")

# The text encoder's decoder fixture: transformers' Gemma2Model in bf16 vs its f32 output.
from transformers import Gemma2Model  # noqa: E402

TEXT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "text")
t = load_file(os.path.join(TEXT, "decoder.safetensors"))
gemma = Gemma2Model.from_pretrained(
    os.path.join(TEXT, "tiny-gemma", "text_encoder"), torch_dtype=torch.bfloat16, attn_implementation="eager"
).eval()
with torch.no_grad():
    out = gemma(input_ids=t["input_ids"].long(), attention_mask=t["attention_mask"].long()).last_hidden_state.float()
ref = t["last_hidden_state"]
print(f"decoder.safetensors: transformers bf16 vs transformers f32: rel L2 {float((out - ref).norm() / ref.norm()):.3e}")

# The autoencoders' decode/encode fixtures (diffusers in bf16 vs the stored f32 outputs) and the
# LTX-2 latent upsampler's forward fixtures.
from diffusers import AutoencoderKLLTX2Video, AutoencoderKLWan  # noqa: E402
from diffusers.pipelines.ltx2.latent_upsampler import LTX2LatentUpsamplerModel  # noqa: E402

ROOT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def rel(out, ref):
    return float((out.float() - ref).norm() / ref.norm())


for cls, name in [(AutoencoderKLWan, "tiny-wan"), (AutoencoderKLLTX2Video, "tiny-ltx2")]:
    vae = cls.from_pretrained(os.path.join(ROOT, "vae", name, "vae"), torch_dtype=torch.bfloat16).eval()
    for path in sorted(glob.glob(os.path.join(ROOT, "vae", f"{name}.*.safetensors"))):
        t = load_file(path)
        with torch.no_grad():
            if ".decode." in path:
                out, ref = vae.decode(t["latents"].bfloat16()).sample, t["sample"]
            else:
                out, ref = vae.encode(t["video"].bfloat16()).latent_dist.parameters, t["latent_params"]
        print(f"{os.path.basename(path)}: diffusers bf16 vs diffusers f32: rel L2 {rel(out, ref):.3e}")

up = LTX2LatentUpsamplerModel.from_pretrained(
    os.path.join(ROOT, "upsampler", "tiny-ltx2-upsampler"), torch_dtype=torch.bfloat16
).eval()
for path in sorted(glob.glob(os.path.join(ROOT, "upsampler", "*.forward.*.safetensors"))):
    t = load_file(path)
    with torch.no_grad():
        out = up(t["latents"].bfloat16())
    print(f"{os.path.basename(path)}: diffusers bf16 vs diffusers f32: rel L2 {rel(out, t['upsampled']):.3e}")
