#!/usr/bin/env python3
"""PyTorch/diffusers side of the SANA-Video transformer (DiT) forward benchmark.

Measures one full `SanaVideoTransformer3DModel.forward` (patch embed -> 20 blocks -> unpatchify)
in bf16 with random weights built from a diffusers config.json, for the modes:
  eager    plain PyTorch eager execution
  compile  `torch.compile(model)` (default mode); the first call compiles, timed separately
How: after warmup, each forward is timed on the GPU with CUDA events (synchronised per call);
we report the median (and min) over --iters. Peak memory is torch.cuda.max_memory_allocated over
the timed loop; weights_gib is memory_allocated right after the model is built. Throughput is
the analytic GEMM FLOP count of one forward (see gemm_flops) divided by the median time.
--matmul-rate adds the device's bf16 8192^3 matmul rate and a device-to-device copy bandwidth
as reference ceilings.

Pinned stack: diffusers 0.42.1, torch 2.11 (tools/requirements.txt). fp32 matmul precision is
left at torch's default ("highest"), as the diffusers pipeline leaves it.

Run from the repository root (one GPU):
  python3 tools/bench_dit.py --config tests/fixtures/configs/sana_video_2b_480p.json \
      --latent 21 60 104 --matmul-rate --json-out /tmp/dit_480p.json
  python3 tools/bench_dit.py --config tests/fixtures/configs/sana_video_2b_720p.json \
      --latent 11 22 40 --json-out /tmp/dit_720p.json
stdout: one JSON object per result line, then a table; progress goes to stderr.
"""

import argparse
import gc
import json
import os
import statistics
import sys
import time
import traceback

import diffusers
import torch
from diffusers import SanaVideoTransformer3DModel

SEED = 20261128
GIB = 1024**3
# from_config + .to(bf16) warns about (empty) _keep_in_fp32_modules; it is noise here.
diffusers.utils.logging.set_verbosity_error()


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn, device):
    """Milliseconds of one fn() call: CUDA events on GPU (no host overhead), perf_counter on CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    t0 = time.perf_counter()
    fn()
    return (time.perf_counter() - t0) * 1e3


def gemm_flops(cfg, batch, tokens, caption_len):
    """Analytic GEMM FLOPs of one forward (elementwise ops, norms, patch embed/proj_out ignored)."""
    D = cfg["num_attention_heads"] * cfg["attention_head_dim"]
    hd = cfg["attention_head_dim"]
    F = int(cfg["mlp_ratio"] * D)  # GLUMBTempConv hidden width, as the model computes it
    N, L = tokens, caption_len
    # per token: qkv (3), attn out (1), cross q (1), cross out (1), conv_inverted D->2F,
    # conv_point F->D, conv_temp (3 taps of D->D)
    per_token = 2 * D * (3 * D + D + D + D + 2 * F + F + 3 * D)
    per_sample = (
        N * per_token
        + 2 * 2 * L * D * D  # cross-attention K/V projections of the caption
        + 2 * 2 * N * L * D  # cross-attention scores + weighted sum
        + 2 * 2 * N * D * hd  # linear attention: V K^T (hd x hd per head) then times Q
    )
    return per_sample * batch * cfg["num_layers"]


def build_model(cfg, device):
    # Built in fp32 on the device, randomised, then cast to bf16 exactly as from_pretrained(torch_dtype=bf16)
    # does (model.to(dtype)), so the rope tables end up bf16 as in the real pipeline.
    with torch.device(device):
        model = SanaVideoTransformer3DModel.from_config(cfg)
    torch.manual_seed(SEED)
    with torch.no_grad():
        # Default init leaves zeros (biases, zero-initialised layers) and exact ones; fill everything
        # so no kernel can take a shortcut on trivial data.
        for name, p in model.named_parameters():
            if p.ndim == 1 and "norm" in name:
                p.normal_(1.0, 0.02)
            else:
                p.normal_(0.0, 0.02)
    model = model.to(dtype=torch.bfloat16).eval()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return model


def make_inputs(cfg, args, device):
    g = torch.Generator(device="cpu").manual_seed(SEED + 1)
    B, L = args.batch, args.caption_len
    T, H, W = args.latent
    bf16 = torch.bfloat16
    x = torch.randn(B, cfg["in_channels"], T, H, W, generator=g).to(device, bf16)
    enc = torch.randn(B, L, cfg["caption_channels"], generator=g).to(device, bf16)
    timestep = torch.tensor([500.0 + 200.0 * (i % 3) for i in range(B)], device=device)
    mask = torch.ones(B, L, dtype=bf16)
    if B > 1 and L > 1:
        mask[1, -min(50, L - 1):] = 0  # sample 1 has a padded caption (keeps >= 1 live token)
    return dict(hidden_states=x, encoder_hidden_states=enc, timestep=timestep,
                encoder_attention_mask=mask.to(device), return_dict=False)


def bench_mode(mode, model, inputs, args, device, base):
    fn = model
    compile_s = None
    if mode == "compile":
        fn = torch.compile(model)
    run = lambda: fn(**inputs)
    for i in range(args.warmup):
        t0 = time.perf_counter()
        run()
        sync(device)
        dt = time.perf_counter() - t0
        if i == 0 and mode == "compile":
            compile_s = dt  # the first call traces + compiles (and runs once)
        log(f"  {mode} warmup {i}: {dt * 1e3:.1f} ms")
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = [time_ms(run, device) for _ in range(args.iters)]
    peak = torch.cuda.max_memory_allocated(device) / GIB if device.type == "cuda" else None
    med = statistics.median(times)
    return dict(base, impl=f"diffusers-{mode}", median_ms=med, min_ms=min(times), peak_gib=peak,
                tflops=base["tflop"] / (med / 1e3), compile_s=compile_s)


def matmul_rate(device, n=8192, copy_bytes=4 * GIB):
    """bf16 n^3 matmul rate (median of 20) and D2D copy bandwidth of a copy_bytes buffer."""
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    c = torch.empty(n, n, device=device, dtype=torch.bfloat16)
    mm = lambda: torch.matmul(a, b, out=c)
    for _ in range(3):
        mm()
    sync(device)
    ms = statistics.median(time_ms(mm, device) for _ in range(20))
    out = [dict(impl=f"matmul-bf16-{n}", median_ms=ms, tflops=2 * n**3 / (ms / 1e3) / 1e12)]
    del a, b, c
    src = torch.randn(copy_bytes // 4, device=device, dtype=torch.float32)  # random, not zeros
    dst = torch.empty_like(src)
    cp = lambda: dst.copy_(src)
    for _ in range(3):
        cp()
    sync(device)
    ms = statistics.median(time_ms(cp, device) for _ in range(20))
    out.append(dict(impl=f"d2d-copy-{copy_bytes / GIB:g}GiB", median_ms=ms, gbps=2 * copy_bytes / (ms / 1e3) / 1e9))
    del src, dst
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", required=True, help="diffusers transformer config.json")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--latent", type=int, nargs=3, metavar=("T", "H", "W"), default=[21, 60, 104])
    ap.add_argument("--caption-len", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--modes", default="eager,compile", help="comma list from {eager, compile}")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--json-out")
    ap.add_argument("--matmul-rate", action="store_true", help="also measure bf16 matmul rate and D2D bandwidth")
    args = ap.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    bad = [m for m in modes if m not in ("eager", "compile")]
    if bad:
        ap.error(f"unknown mode(s) {bad}")
    assert args.warmup >= 1, "need >= 1 warmup (compile mode compiles there)"

    device = torch.device(args.device)
    with open(args.config) as f:
        cfg = json.load(f)
    name = os.path.splitext(os.path.basename(args.config))[0]
    pt, ph, pw = cfg["patch_size"] if isinstance(cfg["patch_size"], list) else [cfg["patch_size"]] * 3
    T, H, W = args.latent
    assert T % pt == 0 and H % ph == 0 and W % pw == 0, "latent dims must be divisible by patch_size"
    tokens = (T // pt) * (H // ph) * (W // pw)
    dev_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    log(f"torch {torch.__version__}, diffusers {diffusers.__version__}, device {dev_name}, "
        f"fp32 matmul precision {torch.get_float32_matmul_precision()}")
    log(f"config {name}: batch {args.batch}, latent {T}x{H}x{W} -> {tokens} tokens, caption {args.caption_len}")

    results = []

    def emit(r):
        results.append(r)
        print(json.dumps(r), flush=True)

    with torch.inference_mode():
        if args.matmul_rate:
            for r in matmul_rate(device):
                emit(dict(r, device=dev_name))
        model = build_model(cfg, device)
        weights_gib = torch.cuda.memory_allocated(device) / GIB if device.type == "cuda" else None
        log(f"model: {sum(p.numel() for p in model.parameters()) / 1e9:.3f} B params, weights {weights_gib} GiB")
        inputs = make_inputs(cfg, args, device)
        tflop = gemm_flops(cfg, args.batch, tokens, args.caption_len) / 1e12
        log(f"analytic GEMM work: {tflop:.2f} TFLOP per forward")
        base = dict(config=name, batch=args.batch, tokens=tokens, weights_gib=weights_gib, tflop=tflop,
                    device=dev_name)
        for mode in modes:
            log(f"mode {mode}")
            try:
                emit(bench_mode(mode, model, inputs, args, device, base))
            except Exception as e:  # a failed mode (e.g. compile error, OOM) is a result, not a crash
                log(traceback.format_exc())
                emit(dict(base, impl=f"diffusers-{mode}", error=f"{type(e).__name__}: {e}"))
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()

    if args.json_out:
        with open(args.json_out, "w") as f:
            json.dump(results, f, indent=2)
        log(f"wrote {args.json_out}")

    fmt = lambda v, w, prec: f"{'-':>{w}}" if v is None else f"{v:>{w}.{prec}f}"
    print(f"\n{'impl':<20} {'config':<22} {'B':>2} {'tokens':>7} {'median ms':>10} {'min ms':>9} "
          f"{'TFLOP/s':>8} {'peak GiB':>9} {'compile s':>9}", flush=True)
    for r in results:
        if "error" in r:
            print(f"{r['impl']:<20} FAILED: {r['error'][:200]}", flush=True)
        elif "gbps" in r:
            print(f"{r['impl']:<20} {'':<22} {'':>2} {'':>7} {r['median_ms']:>10.3f} {'':>9} "
                  f"{r['gbps']:>8.0f} GB/s", flush=True)
        elif "config" not in r:
            print(f"{r['impl']:<20} {'':<22} {'':>2} {'':>7} {r['median_ms']:>10.3f} {'':>9} "
                  f"{r['tflops']:>8.1f}", flush=True)
        else:
            print(f"{r['impl']:<20} {r['config']:<22} {r['batch']:>2} {r['tokens']:>7} {r['median_ms']:>10.2f} "
                  f"{r['min_ms']:>9.2f} {r['tflops']:>8.1f} {fmt(r['peak_gib'], 9, 2)} "
                  f"{fmt(r['compile_s'], 9, 1)}", flush=True)
    if results and all("error" in r for r in results if "config" in r):
        sys.exit(1)


if __name__ == "__main__":
    main()
