#!/usr/bin/env bash
# One-command GPU run: kernel tests on CUDA, every benchmark, figures.
#   bash benchmarks/run_gpu.sh [all|tests|eager|rope|tables|bias|plot]   (default: all)
# Steps exist so that each fits a 10-minute limit: run "tests", "rope", "tables", "bias",
# "plot" in turn; the benchmark steps merge into one file, benchmarks/results/cuda-<date>.json.
# PYTHON=/path/to/python picks the interpreter. Needs torch with CUDA, triton,
# transformers, rotary-embedding-torch and liger-kernel (installed with --no-deps).
# When $OUT is set (the device runner's output folder) results and figures are copied there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
STEP=${1:-all}
"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())"
if [[ $STEP == all || $STEP == tests ]]; then
  "$PY" -m pytest -q -p no:cacheprovider tests/test_rope_triton.py tests/test_flex_bias.py
fi
if [[ $STEP == all || $STEP == eager ]]; then
  "$PY" benchmarks/cuda_eager_check.py
fi
if [[ $STEP == all || $STEP == rope ]]; then
  "$PY" benchmarks/run_all.py --device cuda --only rope --tune --merge --min-time 0.15
fi
if [[ $STEP == all || $STEP == tables ]]; then
  "$PY" benchmarks/run_all.py --device cuda --only tables --merge
fi
if [[ $STEP == all || $STEP == bias ]]; then
  "$PY" benchmarks/run_all.py --device cuda --only bias_attention --merge
fi
if [[ $STEP == all || $STEP == plot ]]; then
  "$PY" benchmarks/plot.py --device cuda
fi
if [[ -n "${OUT:-}" ]]; then
  cp benchmarks/results/cuda-*.json "$OUT"/ 2>/dev/null || true
  cp -r benchmarks/results/figures "$OUT"/ 2>/dev/null || true
fi
