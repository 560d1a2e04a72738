#!/usr/bin/env python3
"""Convolution FLOPs of an autoencoder's encode and decode at a clip size, counted by diffusers'
own modules: the model is built from a config on PyTorch's `meta` device (no weights, no
arithmetic), a hook on every Conv3d adds 2 · (output elements) · (C_in · kernel volume / groups)
as each runs, and the encoder and decoder run on meta tensors of the clip's shape. This is the
count behind the arithmetic-floor argument in BENCHMARKS.md: a time t for an op means
FLOP / t of sustained matrix throughput.

    python3 tools/count_vae_flops.py --config tests/fixtures/configs/ltx2_vae.json --frames 81 --size 704 1280
    python3 tools/count_vae_flops.py --config tests/fixtures/configs/ltx2_vae.json --encode-ms 242.5

Needs torch and diffusers (tools/requirements.txt); runs in a second on a CPU machine.
"""

import argparse
import json

import torch
from diffusers import AutoencoderKLLTX2Video, AutoencoderKLWan

CLASSES = {"AutoencoderKLLTX2Video": AutoencoderKLLTX2Video, "AutoencoderKLWan": AutoencoderKLWan}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", required=True)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--size", type=int, nargs=2, default=(704, 1280), metavar=("H", "W"))
    ap.add_argument("--encode-ms", type=float, help="print the TFLOP/s an encode of this many ms implies")
    ap.add_argument("--decode-ms", type=float, help="print the TFLOP/s a decode of this many ms implies")
    args = ap.parse_args()
    raw = json.load(open(args.config))
    cls = CLASSES[raw["_class_name"]]
    with torch.device("meta"):
        model = cls(**{k: v for k, v in raw.items() if not k.startswith("_")})
    count = [0]

    def hook(conv, _inputs, out):
        count[0] += 2 * out.numel() * conv.weight[0].numel()

    for mod in model.modules():
        if isinstance(mod, torch.nn.Conv3d):
            mod.register_forward_hook(hook)
    h, w = args.size
    with torch.no_grad(), torch.device("meta"):
        latent = model.encode(torch.empty(1, 3, args.frames, h, w)).latent_dist.mean
        encode = count[0]
        count[0] = 0
        video = model.decode(latent).sample
        decode = count[0]
    print(f"{raw['_class_name']} {args.frames}x{h}x{w}: latent {tuple(latent.shape)}, video {tuple(video.shape)}")
    for name, flop, ms in (("encode", encode, args.encode_ms), ("decode", decode, args.decode_ms)):
        rate = f", {flop / (ms * 1e-3) / 1e12:.0f} TFLOP/s in {ms} ms" if ms else ""
        print(f"{name}: {flop / 1e12:.1f} TFLOP of convolutions{rate}")


if __name__ == "__main__":
    main()
