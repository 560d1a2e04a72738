#!/usr/bin/env python3
"""Reference fixtures for the SANA-Video transformer (MODEL.md §2).

Builds tiny random-weight `SanaVideoTransformer3DModel`s with diffusers (pinned in
tools/requirements.txt), saves them with `save_pretrained` (the exact checkpoint layout), runs
them on fixed random inputs and writes inputs + outputs as safetensors under tests/fixtures/dit/.
Also writes the released 480p / 720p transformer configs (MODEL.md §2.1) with their parameter
counts, instantiated on the meta device.

Every parameter is randomised (norm weights and scale_shift_tables included): default inits
(ones, zeros, zero-initialised conv_temp) would hide bugs.

Run from the repository root, on a CPU machine:
    python3 -m venv /tmp/sana-tools && /tmp/sana-tools/bin/pip install -r tools/requirements.txt
    /tmp/sana-tools/bin/python tools/make_dit_fixtures.py
"""

import json
import math
import os
import shutil
import sys

import diffusers
import torch
from diffusers import SanaVideoTransformer3DModel
from safetensors.torch import save_file

SEED = 20261128
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "dit")
CONFIGS = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "configs")
COMMAND = "python3 tools/make_dit_fixtures.py"

# Tiny models: small but awkward sizes (head_dim not a power of two, odd grids).
TINY = {
    # 480p-style: 4 latent channels, patch (1,2,2); D = 2 x 12 = 24, F = int(2.5 * 24) = 60
    "tiny-480p": dict(
        in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=12, num_layers=2,
        num_cross_attention_heads=2, cross_attention_head_dim=12, cross_attention_dim=24,
        caption_channels=20, mlp_ratio=2.5, attention_bias=False, sample_size=30,
        patch_size=(1, 2, 2), norm_elementwise_affine=False, norm_eps=1e-6,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=1024,
    ),
    # 720p-style: patch (1,1,1); D = 3 x 10 = 30, F = 90; q/k/v biases on to cover that path.
    # Saved sharded to cover the *.index.json loader.
    "tiny-720p": dict(
        in_channels=8, out_channels=8, num_attention_heads=3, attention_head_dim=10, num_layers=2,
        num_cross_attention_heads=3, cross_attention_head_dim=10, cross_attention_dim=30,
        caption_channels=18, mlp_ratio=3.0, attention_bias=True, sample_size=22,
        patch_size=(1, 1, 1), norm_elementwise_affine=False, norm_eps=1e-6,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=1024,
    ),
}

# The released transformers (MODEL.md §2.1): 480p from the hub config, 720p from the converter.
RELEASED = {
    "sana_video_2b_480p": dict(
        in_channels=16, out_channels=16, num_attention_heads=20, attention_head_dim=112, num_layers=20,
        num_cross_attention_heads=20, cross_attention_head_dim=112, cross_attention_dim=2240,
        caption_channels=2304, mlp_ratio=3.0, attention_bias=False, sample_size=30,
        patch_size=(1, 2, 2), norm_elementwise_affine=False, norm_eps=1e-6, interpolation_scale=None,
        guidance_embeds=False, guidance_embeds_scale=0.1, qk_norm="rms_norm_across_heads",
        rope_max_seq_len=1024, dropout=0.0,
    ),
}
RELEASED["sana_video_2b_720p"] = dict(RELEASED["sana_video_2b_480p"], in_channels=128, out_channels=128,
                                      patch_size=(1, 1, 1), sample_size=22)


def randomise(model, gen):
    """Every parameter random, with magnitudes that keep 2 layers well conditioned."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name:
                p.copy_(1.0 + 0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            elif p.ndim == 1 or "scale_shift_table" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) / math.sqrt(fan_in))


def make_case(model, cfg, gen, *, batch, latent_thw, caption_len, timesteps, masks):
    """Random inputs; `timesteps` is a list (per sample) or a tensor (B, N) (per token)."""
    t, h, w = latent_thw
    hidden = torch.randn((batch, cfg["in_channels"], t, h, w), generator=gen, dtype=torch.float64)
    caption = torch.randn((batch, caption_len, cfg["caption_channels"]), generator=gen, dtype=torch.float64)
    if isinstance(timesteps, torch.Tensor):
        timestep = timesteps.to(torch.float64)
    else:
        timestep = torch.tensor(timesteps, dtype=torch.float64)
    mask = torch.tensor(masks, dtype=torch.float64)
    return dict(hidden_states=hidden, encoder_hidden_states=caption, timestep=timestep,
                encoder_attention_mask=mask)


def run(model, inputs, dtype):
    model = model.to(dtype)
    with torch.no_grad():
        out = model(
            hidden_states=inputs["hidden_states"].to(dtype),
            encoder_hidden_states=inputs["encoder_hidden_states"].to(dtype),
            timestep=inputs["timestep"].to(dtype),
            encoder_attention_mask=inputs["encoder_attention_mask"].to(dtype),
        ).sample
    return out


def rel_l2(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def tokens(cfg, thw):
    pt, ph, pw = cfg["patch_size"]
    return (thw[0] // pt) * (thw[1] // ph) * (thw[2] // pw)


def cases_for(name, cfg, gen):
    ones = lambda n: [1.0] * n
    padded = lambda n, keep: [1.0] * keep + [0.0] * (n - keep)
    if name == "tiny-480p":
        thw = (3, 10, 14)  # grid (3, 5, 7): 105 tokens
        n = tokens(cfg, thw)
        i2v = torch.full((2, n), 500.0)
        i2v[:, : n // 3] = 0.0  # first latent frame pinned at t = 0, as image-to-video does
        return {
            "single": dict(batch=1, latent_thw=thw, caption_len=7, timesteps=[500.0], masks=[ones(7)]),
            "batch2": dict(batch=2, latent_thw=thw, caption_len=9, timesteps=[1.0, 999.0],
                           masks=[ones(9), padded(9, 4)]),
            "per-token": dict(batch=2, latent_thw=thw, caption_len=5, timesteps=i2v,
                              masks=[padded(5, 3), ones(5)]),
            # one latent frame: the temporal conv sees only zero padding
            "one-frame": dict(batch=1, latent_thw=(1, 4, 6), caption_len=4, timesteps=[0.0],
                              masks=[ones(4)]),
        }
    thw = (3, 5, 7)
    n = tokens(cfg, thw)
    per_token = torch.rand((2, n), generator=gen, dtype=torch.float64) * 1000.0
    return {
        "batch2": dict(batch=2, latent_thw=thw, caption_len=6, timesteps=[0.5, 998.7],
                       masks=[padded(6, 2), ones(6)]),
        "per-token": dict(batch=2, latent_thw=thw, caption_len=6, timesteps=per_token,
                          masks=[ones(6), padded(6, 5)]),
        # a caption with every token masked: uniform attention over the padding, as diffusers does
        "all-masked": dict(batch=2, latent_thw=(2, 3, 4), caption_len=3, timesteps=[250.0, 750.0],
                           masks=[[0.0, 0.0, 0.0], ones(3)]),
    }


def write_released_configs():
    os.makedirs(CONFIGS, exist_ok=True)
    counts = {}
    for name, cfg in RELEASED.items():
        with torch.device("meta"):
            model = SanaVideoTransformer3DModel(**cfg)
        counts[name] = sum(p.numel() for p in model.parameters())
        config = dict(model.config)
        config["_class_name"] = "SanaVideoTransformer3DModel"
        config["_diffusers_version"] = diffusers.__version__
        config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in config.items()}
        with open(os.path.join(CONFIGS, f"{name}.json"), "w") as f:
            json.dump(dict(sorted(config.items())), f, indent=2)
            f.write("\n")
        print(f"{name}: {counts[name]:,} parameters")
    # merged: tools/make_text_fixtures.py records the text encoder's count in the same file
    path = os.path.join(CONFIGS, "parameter_counts.json")
    recorded = json.load(open(path)) if os.path.exists(path) else dict(counts={})
    recorded["counts"].update(counts)
    recorded.update(source="python3 tools/make_dit_fixtures.py, python3 tools/make_text_fixtures.py",
                    diffusers=diffusers.__version__)
    with open(path, "w") as f:
        json.dump(recorded, f, indent=2)
        f.write("\n")


def main():
    torch.manual_seed(SEED)
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    write_released_configs()
    meta = dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED))
    for name, cfg in TINY.items():
        gen = torch.Generator().manual_seed(SEED + len(name))
        model = SanaVideoTransformer3DModel(**cfg)
        randomise(model, gen)
        model = model.to(torch.float32).eval()
        folder = os.path.join(OUT, name)
        shard = "24KB" if name == "tiny-720p" else "10GB"
        model.save_pretrained(os.path.join(folder, "transformer"), safe_serialization=True, max_shard_size=shard)
        with open(os.path.join(folder, "model_index.json"), "w") as f:
            json.dump({"_class_name": "SanaVideoPipeline", "_diffusers_version": diffusers.__version__,
                       "transformer": ["diffusers", "SanaVideoTransformer3DModel"]}, f, indent=2)
            f.write("\n")
        for case, spec in cases_for(name, cfg, gen).items():
            inputs = make_case(model, cfg, gen, **spec)
            ref32 = run(model, inputs, torch.float32)
            ref64 = run(model, inputs, torch.float64)
            model = model.to(torch.float32)
            tensors = {k: v.to(torch.float32).contiguous() for k, v in inputs.items()}
            tensors["sample"] = ref32.contiguous()
            tensors["sample_f64"] = ref64.to(torch.float32).contiguous()
            path = os.path.join(OUT, f"{name}.{case}.safetensors")
            save_file(tensors, path, metadata=dict(meta, model=name, case=case))
            print(f"{name}.{case}: out {tuple(ref32.shape)}, f32 reference vs f64: rel L2 {rel_l2(ref32, ref64):.2e}")


if __name__ == "__main__":
    sys.exit(main())
