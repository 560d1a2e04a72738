#!/usr/bin/env bash
# One device call: GPU tests, then our benchmark and the diffusers reference on the same GPU.
# Run from the repository root on the GPU machine with the binaries in .devrun/ (see BENCHMARKS.md):
#   bash tools/gpu_run.sh [tests] [bench-sana] [bench-ref] [bench-compile] [bench-conv] [bench-vae] [bench-vae-ltx2] [bench-text] [bench-e2e]
set -uo pipefail
out=${OUT:-/tmp/sana-gpu}
mkdir -p "$out"
lib=$(find / -name 'libcublasLt.so.13*' -not -path '*/proc/*' 2>/dev/null | head -1)
[ -n "$lib" ] && export LD_LIBRARY_PATH="$(dirname "$lib"):${LD_LIBRARY_PATH:-}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,memory.used --format=csv,noheader
ARGS="$*"
if [[ " $ARGS " == *" tests "* ]]; then
  SANA_GPU_TESTS=1 .devrun/gpu_backend --test-threads=1 --nocapture --include-ignored 2>&1 | tee "$out/gpu_tests.log" | grep -E "rel L2|test |result|panicked|SEED" | cut -c1-220
fi
if [[ " $ARGS " == *" bench-sana "* ]]; then
  for c in 720p 480p; do
    .devrun/sana bench dit --config tests/fixtures/configs/sana_video_2b_$c.json --device cuda --warmup 2 --iters 5 2>&1 | tee -a "$out/bench_sana.log" | tail -2
  done
fi
if [[ " $ARGS " == *" bench-conv "* ]]; then
  # every CUDA path of each autoencoder convolution shape, timed against the others
  .devrun/sana bench conv --device cuda 2>"$out/bench_conv.err" | tee "$out/bench_conv.jsonl" | cut -c1-200
  tail -3 "$out/bench_conv.err"
fi
if [[ " $ARGS " == *" bench-ref "* ]] || [[ " $ARGS " == *" bench-compile "* ]] || [[ " $ARGS " == *" bench-vae "* ]] || [[ " $ARGS " == *" bench-vae-ltx2 "* ]] || [[ " $ARGS " == *" bench-text "* ]] || [[ " $ARGS " == *" bench-e2e "* ]]; then
  python3 -m pip install -q --no-index --no-deps --target /tmp/site .devrun/whl/*.whl && export PYTHONPATH=/tmp/site
fi
if [[ " $ARGS " == *" bench-e2e "* ]]; then
  # Base end to end (81 frames, 50 steps, CFG) at ${E2E_CONFIG:-720p}: ours, then diffusers' SanaVideoPipeline
  c=${E2E_CONFIG:-720p}
  .devrun/sana bench generate --config "$c" --device cuda 2>"$out/bench_e2e_sana.err" | tee "$out/bench_e2e.jsonl"
  tail -3 "$out/bench_e2e_sana.err"
  PYTHONUNBUFFERED=1 python3 tools/bench_pipeline.py --config "$c" 2>"$out/bench_e2e_ref.err" | tee -a "$out/bench_e2e.jsonl"
  tail -3 "$out/bench_e2e_ref.err"
fi
if [[ " $ARGS " == *" bench-text "* ]]; then
  # ours then transformers' eager bf16: Gemma-2-2B, one 300-token prompt
  .devrun/sana bench text --device cuda --tokens 300 --iters 10 2>"$out/bench_text_sana.err" | tee "$out/bench_text.jsonl"
  tail -12 "$out/bench_text_sana.err"
  PYTHONUNBUFFERED=1 python3 tools/bench_text.py --config tests/fixtures/configs/gemma_2_2b.json --tokens 300 2>"$out/bench_text_ref.err" | tee -a "$out/bench_text.jsonl"
  tail -2 "$out/bench_text_ref.err"
fi
if [[ " $ARGS " == *" bench-vae "* ]]; then
  # ours then diffusers' (fp32 as the pipeline runs it, and bf16), Wan2.1 VAE at 480x832x81
  SANA_PROFILE=${SANA_PROFILE:-0} .devrun/sana bench vae --config tests/fixtures/configs/wan2.1_vae.json --device cuda --iters 2 2>"$out/bench_vae_sana.err" | tee "$out/bench_vae.jsonl"
  tail -30 "$out/bench_vae_sana.err"
  PYTHONUNBUFFERED=1 python3 tools/bench_vae.py --config tests/fixtures/configs/wan2.1_vae.json --frames 81 --size 480 832 --iters 2 2>"$out/bench_vae_ref.err" | tee -a "$out/bench_vae.jsonl"
  tail -3 "$out/bench_vae_ref.err"
fi
if [[ " $ARGS " == *" bench-vae-ltx2 "* ]]; then
  # ours then diffusers' bf16 (the LTX-2 pipelines run this VAE in bf16), LTX-2 VAE at 704x1280x81
  SANA_PROFILE=${SANA_PROFILE:-0} .devrun/sana bench vae --config tests/fixtures/configs/ltx2_vae.json --device cuda --height 704 --width 1280 --iters 2 2>"$out/bench_ltx2_sana.err" | tee "$out/bench_ltx2.jsonl"
  tail -5 "$out/bench_ltx2_sana.err"
  PYTHONUNBUFFERED=1 python3 tools/bench_vae.py --config tests/fixtures/configs/ltx2_vae.json --frames 81 --size 704 1280 --dtypes bf16 --iters 2 2>"$out/bench_ltx2_ref.err" | tee -a "$out/bench_ltx2.jsonl"
  tail -3 "$out/bench_ltx2_ref.err"
fi
if [[ " $ARGS " == *" bench-ref "* ]] || [[ " $ARGS " == *" bench-compile "* ]]; then
  modes=eager
  [[ " $ARGS " == *" bench-compile "* ]] && modes=eager,compile
  PYTHONUNBUFFERED=1 python3 tools/bench_dit.py --config tests/fixtures/configs/sana_video_2b_720p.json --latent 11 22 40 --modes $modes --iters 5 --matmul-rate --json-out "$out/ref_720p.json" 2>"$out/ref_720p.err" | tail -4
  PYTHONUNBUFFERED=1 python3 tools/bench_dit.py --config tests/fixtures/configs/sana_video_2b_480p.json --latent 21 60 104 --modes $modes --iters 3 --json-out "$out/ref_480p.json" 2>"$out/ref_480p.err" | tail -3
fi
