#!/usr/bin/env bash
# The paper's GPU claims on a CUDA machine, eager and compiled, at fp32 batch 1 and at the paper's protocol
# (fp16, batch 8), then harness claims and the Timer cross-check of both torch targets. One prepared script for
# a borrowed GPU (about 10 minutes on an H200: 8 models x 2 protocols x 2 targets, compile 8-30 s each).
#
#   bash benchmarks/gpu_claims.sh [DB]      (default: gpu-claims.db)
set -euo pipefail
cd "$(dirname "$0")/.."
db="${1:-gpu-claims.db}"
quick=(--warmup 20 --min-iterations 100 --min-time 1 --profile 0)
harness run --device gpu --backend torch --backend torch-compile --protocol claims "${quick[@]}" --db "$db"
harness run --device gpu --backend torch --backend torch-compile --protocol paper "${quick[@]}" --db "$db"
harness claims --db "$db"
harness findings --db "$db" --out-dir "$(dirname "$db")"
for backend in torch torch-compile; do
  python benchmarks/fidelity_torch.py --device gpu --backend "$backend" --precision fp16 --batch 8 --model s12 \
    --rounds 4 --seconds 2
done
