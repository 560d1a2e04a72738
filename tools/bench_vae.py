#!/usr/bin/env python3
"""PyTorch/diffusers side of the autoencoder benchmark (issue 5).

Times `.decode` of a latent and `.encode` of a (1, 3, F, H, W) clip with random weights built from
a diffusers vae config.json: `AutoencoderKLWan` (the released Wan2.1 config,
tests/fixtures/configs/wan2.1_vae.json: (1, 16, T, H/8, W/8) latents) or `AutoencoderKLLTX2Video`
(tests/fixtures/configs/ltx2_vae.json: (1, 128, T, H/32, W/32)), chosen by the config's
`_class_name`, in fp32 (what SanaVideoPipeline runs for Wan: it keeps the VAE in fp32) and bf16. Each call is timed with CUDA events after one warmup (device
to device), and again from a host f32 array to a host f32 array (`host_to_host_median_ms`, wall
clock: what `sana bench vae` times for ours); peak memory is torch.cuda.max_memory_allocated over
the timed call, with the weights counted.

Run from the repository root (one GPU):
  python3 tools/bench_vae.py --config tests/fixtures/configs/wan2.1_vae.json --frames 81 --size 480 832
stdout: one JSON object per result.
"""

import argparse
import json
import statistics
import sys
import time

import diffusers
import torch
from diffusers import AutoencoderKLLTX2Video, AutoencoderKLWan

GIB = 1024**3
diffusers.utils.logging.set_verbosity_error()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def timed(fn, iters):
    times, out = [], None
    for _ in range(iters):
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        out = fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times), min(times), out


def timed_wall(fn, iters):
    """Median wall milliseconds of fn() with the GPU idle before and after (host-side work counted)."""
    times = []
    for _ in range(iters):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True)
    ap.add_argument("--frames", type=int, default=81)
    ap.add_argument("--size", type=int, nargs=2, default=[480, 832], metavar=("H", "W"))
    ap.add_argument("--dtypes", default="fp32,bf16")
    ap.add_argument("--ops", default="decode,encode")
    ap.add_argument("--iters", type=int, default=2)
    args = ap.parse_args()
    with open(args.config) as f:
        raw = json.load(f)
    cfg = {k: v for k, v in raw.items() if not k.startswith("_")}
    ltx2 = raw.get("_class_name") == "AutoencoderKLLTX2Video"
    cls = AutoencoderKLLTX2Video if ltx2 else AutoencoderKLWan
    device = torch.device("cuda")
    h, w = args.size
    if ltx2:
        tf, sf, z = cfg["temporal_compression_ratio"], cfg["spatial_compression_ratio"], cfg["latent_channels"]
    else:
        tf, sf, z = cfg.get("scale_factor_temporal", 4), cfg.get("scale_factor_spatial", 8), cfg["z_dim"]
    latent = (1, z, (args.frames - 1) // tf + 1, h // sf, w // sf)
    log(f"torch {torch.__version__}, diffusers {diffusers.__version__}, {torch.cuda.get_device_name(device)}, "
        f"cudnn tf32 {torch.backends.cudnn.allow_tf32}")
    for dtype_name in args.dtypes.split(","):
        dtype = dict(fp32=torch.float32, bf16=torch.bfloat16)[dtype_name]
        torch.manual_seed(0)
        model = cls(**cfg).to(device, dtype).eval()
        weights = torch.cuda.memory_allocated(device)
        for op in args.ops.split(","):
            with torch.inference_mode():
                if op == "decode":
                    x = torch.randn(latent, device=device, dtype=dtype)
                    fn_on = lambda v: model.decode(v).sample
                else:
                    x = torch.rand((1, 3, args.frames, h, w), device=device, dtype=dtype) * 2 - 1
                    fn_on = lambda v: model.encode(v).latent_dist.mode()
                fn = lambda: fn_on(x)
                fn()  # warmup (cudnn autotuning, allocator)
                torch.cuda.reset_peak_memory_stats(device)
                median, best, out = timed(fn, args.iters)
                peak = torch.cuda.max_memory_allocated(device)
                # the same call from a host f32 array to a host f32 array, as `sana bench vae`
                # times ours (upload, decode/encode, download)
                x_host = x.float().cpu()
                host_ms = timed_wall(lambda: fn_on(x_host.to(device, dtype)).float().cpu(), args.iters)
            r = dict(impl=f"diffusers-{dtype_name}", op=op, frames=args.frames, height=h, width=w,
                     median_ms=median, min_ms=best, host_to_host_median_ms=host_ms, peak_gib=peak / GIB, weights_gib=weights / GIB,
                     finite=bool(torch.isfinite(out).all()), out_shape=list(out.shape))
            print(json.dumps(r), flush=True)
            del x, out
            torch.cuda.empty_cache()
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
