#!/usr/bin/env python3
"""Reference fixtures for the LTX-2 video autoencoder (MODEL.md §3.1–3.2), the 720p model's VAE.

Builds a tiny random-weight `AutoencoderKLLTX2Video` with diffusers (pinned in
tools/requirements.txt) that keeps every mechanism of the released config at small widths
(patch_size 4, patch_size_t 1, down types spatial / temporal / spatiotemporal / spatiotemporal,
three residual depth-to-space upsamplers with factor 2, causal encoder, non-causal decoder with
reflect padding, no timestep conditioning), saves it with `save_pretrained` under
tests/fixtures/vae/tiny-ltx2/vae and runs encode and decode on fixed random inputs, writing inputs
and outputs as safetensors next to it. Only `tiny-ltx2*` files are touched (the Wan fixtures
belong to tools/make_vae_fixtures.py).

Every parameter is randomised (biases included) and so are the `latents_mean` / `latents_std`
buffers, which the checkpoint stores next to the weights. `AutoencoderKLLTX2Video.decode` does not
clamp, so the decoder outputs are the raw values.

Also writes the released 720p VAE config (Lightricks/LTX-2 `vae/config.json` as MODEL.md §3.2
lists it) to tests/fixtures/configs/ltx2_vae.json for the real-size benchmark.

Run from the repository root, on a CPU machine:
    python3 -m venv /tmp/sana-tools && /tmp/sana-tools/bin/pip install -r tools/requirements.txt
    /tmp/sana-tools/bin/python tools/make_ltx2_fixtures.py
    /tmp/sana-tools/bin/python tools/make_ltx2_fixtures.py --tiled-only   # only tiny-ltx2.tiled.*
    /tmp/sana-tools/bin/python tools/make_ltx2_fixtures.py --long-only    # only tiny-ltx2.long.*
"""

import glob
import inspect
import json
import math
import os
import shutil
import sys

import diffusers
import torch
from diffusers import AutoencoderKLLTX2Video
from safetensors.torch import save_file

SEED = 20261129
OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "vae")
CONFIGS = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "configs")
COMMAND = "python3 tools/make_ltx2_fixtures.py"
NAME = "tiny-ltx2"

# The released config's mechanics at small widths. Encoder: conv_in 48 → 8 (= latent channels, as
# in the release where conv_in emits 128), then spatial 8→8 (residual groups of 4), temporal 8→8
# (groups of 2), spatiotemporal 8→8 (groups of 8) and 8→16 (groups of 4); the output conv gives
# 8 + 1 channels. Decoder widths halve at every upsampler, as the release's 1024 → 512 → 256 → 128 (32 →
# 16 → 8 → 4 here; the last upsampler's input must still split into 2×2×2 sub-positions).
TINY = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=8,
    block_out_channels=(8, 8, 8, 16),
    layers_per_block=(2, 1, 1, 1, 1),
    downsample_type=("spatial", "temporal", "spatiotemporal", "spatiotemporal"),
    spatio_temporal_scaling=(True, True, True, True),
    decoder_block_out_channels=(8, 16, 32),
    decoder_layers_per_block=(1, 1, 1, 1),
    decoder_spatio_temporal_scaling=(True, True, True),
    decoder_inject_noise=(False, False, False, False),
    upsample_type=("spatiotemporal", "spatiotemporal", "spatiotemporal"),
    upsample_residual=(True, True, True),
    upsample_factor=(2, 2, 2),
    timestep_conditioning=False,
    patch_size=4,
    patch_size_t=1,
    resnet_norm_eps=1e-6,
    scaling_factor=1.0,
    encoder_causal=True,
    decoder_causal=False,
    encoder_spatial_padding_mode="zeros",
    decoder_spatial_padding_mode="reflect",
    spatial_compression_ratio=32,
    temporal_compression_ratio=8,
)

# (frames, height, width) of the encoder inputs: 1 frame = an image (I2V conditioning), 9 and 17 =
# one and two 8-frame steps after the first.
ENCODE = {"1x32x64": (1, 32, 64), "9x32x32": (9, 32, 32), "17x32x32": (17, 32, 32)}
# (batch, latent frames, h, w) of the decoder inputs; h, w ≥ 2 because the decoder pads by
# reflection (PyTorch refuses a reflect pad as wide as the input).
DECODE = {"1x2x2": (1, 1, 2, 2), "2x2x2": (1, 2, 2, 2), "b2.1x2x2": (2, 1, 2, 2)}

# Tiled decode (`enable_tiling`, diffusers' `tiled_decode`): case → ((batch, latent frames, h, w),
# (tile_sample_min_height, tile_sample_min_width, tile_sample_stride_height, tile_sample_stride_width)).
# "4x6": 96-pixel tiles (3 latent pixels) every 64 (2), so 32-pixel blends: 2 rows × 3 columns of
# tiles, the last of each narrower (2 latent pixels: reflect padding needs 2). "b2.6x8": rectangular
# tiles whose blend (40 / 24 px) and stride crop (88 / 72 px) are not multiples of the 32× factor,
# as `enable_tiling` allows (the crops then misplace content: diffusers' behaviour, reproduced),
# 3 × 4 tiles, batch 2, one latent frame. Only the spatial tiling is exercised:
# `enable_tiling` does not turn on `use_framewise_decoding`, which no public method of
# AutoencoderKLLTX2Video sets, so `_temporal_tiled_decode` is unreachable through the API.
TILED = {"4x6": ((1, 1, 4, 6), (96, 96, 64, 64)), "b2.6x8": ((2, 1, 6, 8), (128, 96, 88, 72))}


# A decode longer than the decoder's reach in time (`long_fixtures`): (batch, latent frames, h, w).
# The tiny decoder's centered convs see about 7 latent frames ahead (conv_in and the mid resnet's
# two convs at the latent rate, the rest at 2×, 4× and 8× it), so 9 latent frames stream with
# chunks that emit nothing at first, then some, then flush at the end.
LONG = {"9x2x2": (1, 9, 2, 2)}


def randomise(model, gen):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * (1.4 / math.sqrt(fan_in)))
        c = model.latents_mean.numel()
        model.latents_mean.copy_(0.5 * torch.randn(c, generator=gen, dtype=torch.float64))
        model.latents_std.copy_(0.5 + torch.rand(c, generator=gen, dtype=torch.float64))


def write_released_config():
    """The released LTX-2 VAE config (MODEL.md §3.2: diffusers' defaults except decoder_causal
    false and the explicit compression ratios, which the defaults' formula would get wrong)."""
    sig = inspect.signature(AutoencoderKLLTX2Video.__init__)
    cfg = {k: v.default for k, v in sig.parameters.items() if k != "self"}
    cfg.update(decoder_causal=False, spatial_compression_ratio=32, temporal_compression_ratio=8)
    cfg = {k: list(v) if isinstance(v, tuple) else v for k, v in cfg.items()}
    path = os.path.join(CONFIGS, "ltx2_vae.json")
    with open(path, "w") as f:
        json.dump({"_class_name": "AutoencoderKLLTX2Video", "_diffusers_version": diffusers.__version__, **cfg}, f,
                  indent=2)
    print(f"{path} written")


def tiled_fixtures(model, gen, meta):
    """`tiny-ltx2.tiled.*`: the latents, diffusers' tiled decode and its untiled decode."""
    for old in glob.glob(os.path.join(OUT, f"{NAME}.tiled.*.safetensors")):
        os.remove(old)
    for case, ((b, t, h, w), (min_h, min_w, stride_h, stride_w)) in TILED.items():
        z = torch.randn((b, TINY["latent_channels"], t, h, w), generator=gen)
        model.disable_tiling()
        with torch.no_grad():
            untiled = model.decode(z).sample
        model.enable_tiling(tile_sample_min_height=min_h, tile_sample_min_width=min_w,
                            tile_sample_stride_height=stride_h, tile_sample_stride_width=stride_w)
        with torch.no_grad():
            tiled = model.decode(z).sample
        model.disable_tiling()
        gap = float((tiled - untiled).norm() / untiled.norm())
        path = os.path.join(OUT, f"{NAME}.tiled.{case}.safetensors")
        save_file({"latents": z.contiguous(), "sample": tiled.contiguous(), "sample_untiled": untiled.contiguous()},
                  path, metadata=dict(meta, model=NAME, case=f"tiled.{case}", tile_sample_min_height=str(min_h),
                                      tile_sample_min_width=str(min_w), tile_sample_stride_height=str(stride_h),
                                      tile_sample_stride_width=str(stride_w), tiled_vs_untiled_rel_l2=f"{gap:.3e}"))
        print(f"{NAME}.tiled.{case}: {tuple(z.shape)} -> {tuple(tiled.shape)}, tiles {min_h}x{min_w} every "
              f"{stride_h}x{stride_w}; diffusers tiled vs untiled relative L2 {gap:.3e}")


def decode_fixtures(model, gen, meta, kind, cases):
    """`tiny-ltx2.<kind>.<case>`: random latents of each case's (batch, latent frames, h, w) and
    diffusers' whole-clip decode of them."""
    for case, (b, t, h, w) in cases.items():
        z = torch.randn((b, TINY["latent_channels"], t, h, w), generator=gen)
        with torch.no_grad():
            sample = model.decode(z).sample
        path = os.path.join(OUT, f"{NAME}.{kind}.{case}.safetensors")
        save_file({"latents": z.contiguous(), "sample": sample.contiguous()}, path,
                  metadata=dict(meta, model=NAME, case=f"{kind}.{case}"))
        print(f"{NAME}.{kind}.{case}: {tuple(z.shape)} -> {tuple(sample.shape)}, "
              f"|x| max {float(sample.abs().max()):.2f}")


def long_fixtures(model, gen, meta):
    """`tiny-ltx2.long.*`: latents longer than the decoder's reach in time and diffusers' whole-clip
    decode of them (what our decode streamed in time must reproduce)."""
    for old in glob.glob(os.path.join(OUT, f"{NAME}.long.*.safetensors")):
        os.remove(old)
    decode_fixtures(model, gen, meta, "long", LONG)


# The fixture sets made from the committed tiny model alone: flag → (seed offset, writer).
FROM_SAVED = {"--tiled-only": (1, tiled_fixtures), "--long-only": (2, long_fixtures)}


def from_saved(flag, model, meta):
    offset, write = FROM_SAVED[flag]
    gen = torch.Generator().manual_seed(SEED + offset)
    write(model, gen, dict(meta, script=f"{COMMAND} {flag}", seed=str(SEED + offset)))


def main():
    if len(sys.argv) == 2 and sys.argv[1] in FROM_SAVED:
        # one set alone, from the committed tiny model (leaves every other file as it is)
        model = AutoencoderKLLTX2Video.from_pretrained(os.path.join(OUT, NAME, "vae")).eval()
        from_saved(sys.argv[1], model, dict(diffusers=diffusers.__version__, torch=torch.__version__))
        return
    write_released_config()
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    shutil.rmtree(os.path.join(OUT, NAME), ignore_errors=True)
    for old in glob.glob(os.path.join(OUT, f"{NAME}.*.safetensors")):
        os.remove(old)
    meta = dict(script=COMMAND, diffusers=diffusers.__version__, torch=torch.__version__, seed=str(SEED))
    model = AutoencoderKLLTX2Video(**TINY).eval()
    randomise(model, gen)
    model.save_pretrained(os.path.join(OUT, NAME, "vae"))
    print(f"{NAME}: {sum(p.numel() for p in model.parameters())} parameters")
    for case, (t, h, w) in ENCODE.items():
        video = torch.rand((1, 3, t, h, w), generator=gen) * 2 - 1
        with torch.no_grad():
            params = model.encode(video).latent_dist.parameters
        path = os.path.join(OUT, f"{NAME}.encode.{case}.safetensors")
        save_file({"video": video.contiguous(), "latent_params": params.contiguous()}, path,
                  metadata=dict(meta, model=NAME, case=f"encode.{case}"))
        print(f"{NAME}.encode.{case}: video {tuple(video.shape)} -> {tuple(params.shape)}")
    decode_fixtures(model, gen, meta, "decode", DECODE)
    # from the saved model, as --tiled-only and --long-only do, so the two ways give the same files
    saved = AutoencoderKLLTX2Video.from_pretrained(os.path.join(OUT, NAME, "vae")).eval()
    for flag in FROM_SAVED:
        from_saved(flag, saved, meta)


if __name__ == "__main__":
    sys.exit(main())
