#!/usr/bin/env bash
# Builds the release `sana` binary and the GPU test binary with nvcc-compiled kernels and copies
# them to .devrun/ (ignored by git) for a device run: `bash tools/gpu_run.sh ...` there.
set -euo pipefail
cd "$(dirname "$0")/.."
export NVCC=${NVCC:-$(python3 -c 'import nvidia, os; print(os.path.join(nvidia.__path__[0], "cu13/bin/nvcc"))' 2>/dev/null || echo nvcc)}
export SANA_REQUIRE_NVCC=1
cargo build --release --bin sana
test_bin=$(cargo test --release --test gpu_backend --no-run --message-format=json 2>/dev/null \
  | python3 -c 'import json,sys; [print(m["executable"]) for m in map(json.loads, sys.stdin) if m.get("executable") and "gpu_backend" in m["executable"]]')
mkdir -p .devrun
cp target/release/sana .devrun/sana
cp "$test_bin" .devrun/gpu_backend
strip .devrun/sana .devrun/gpu_backend
ls -la .devrun
