#!/usr/bin/env bash
# The GPU check, run ON the GPU machine by the device tool from the repository root (see
# bench/cuda_gpu_check.md):
#
#   bash bench/cuda_gpu_check.sh [STEPS]
#
# STEPS: comma-separated subset of nif,logits,bench,ops (default: all of them, in that order).
# It reads what bench/cuda_gpu_prepare.py packed into .gpucheck/ (carried), writes summary.txt,
# results.json, check.log, ops.log, loader-gpu.log, nvidia-smi.txt and manifest.json to $OUT, and
# prints the summary table last. DEADLINE_S (default 300) is its own time budget in seconds: the
# test-backend-ops runs get what the earlier steps left. Exit status 0 only when every check passed.
set -uo pipefail
cd "$(dirname "$0")/.."
export OUT="${OUT:-/tmp/gpucheck-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 GGML_NO_BACKTRACE=1
python3 bench/cuda_gpu_check.py "${1:-all}" 2>&1 | tee "$OUT/check.log"
