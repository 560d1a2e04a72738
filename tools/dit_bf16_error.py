#!/usr/bin/env python3
"""How far diffusers' own bf16 forward is from its f32 forward on each transformer fixture.

This is the yardstick for our CUDA backend (bf16 storage, f32 accumulation), which
tests/gpu_backend.rs holds within relative L2 1e-2 of our f32 CPU forward: on these tiny
random-weight models bf16 storage alone costs ~0.6-1.0e-2, in the reference as in ours.

Run from the repository root with the tools/requirements.txt environment:
    python tools/dit_bf16_error.py
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
