#!/usr/bin/env bash
# One-command GPU run: the library's tests on CUDA, every benchmark, figures.
#   bash benchmarks/run_gpu.sh [all|tests|eager|rope|tables|bias|training|plot]  (default: all)
# "tests" runs every device-aware library test (the fused Triton kernel, FlexAttention and
# the CUDA half of each device/dtype test). Each step runs under its own time limit, so
# that one hang cannot eat a short GPU session; the benchmark steps merge into one file,
# $RESULT (default benchmarks/results/cuda-<date>.json). A failing step does not stop the
# later ones: the script names every failed step at the end and exits non-zero.
# PYTHON=/path/to/python picks the interpreter. Needs torch with CUDA, triton,
# transformers, rotary-embedding-torch and liger-kernel (installed with --no-deps);
# pytest-xdist, when installed, spreads the tests over 8 processes.
# When $OUT is set (the device runner's output folder), results and figures are copied
# there after every step.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
STEP=${1:-all}
RESULT=${RESULT:-benchmarks/results/cuda-$(date -u +%F).json}
TESTS=(
  tests/test_rope_triton.py tests/test_flex_bias.py tests/test_rope.py
  tests/test_rope_safety.py tests/test_rope_scaling.py tests/test_relative.py tests/test_t5.py
  tests/test_alibi.py tests/test_attention.py tests/test_sinusoidal.py tests/test_learned.py
  tests/test_model.py tests/test_multidim.py tests/test_properties.py
)
FAILED=()

"$PY" -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'" || exit 1
"$PY" - <<'EOF'
import importlib.metadata as md
import torch

def version(name):
    try:
        return f"{name} {md.version(name)}"
    except md.PackageNotFoundError:
        return f"{name} missing"

names = ("torch", "triton", "transformers", "liger-kernel", "rotary-embedding-torch")
print(torch.cuda.get_device_name(), "|", ", ".join(map(version, names)))
EOF

step() {  # step NAME SECONDS COMMAND...: run one step under a time limit, note a failure
  local name=$1 limit=$2; shift 2
  echo "== $name $(date -u +%T)"
  local t0=$SECONDS
  timeout "$limit" "$@" || FAILED+=("$name")
  echo "== $name: $((SECONDS - t0)) s"
  if [[ -n "${OUT:-}" ]]; then  # copied after every step, so a run cut short returns them
    cp "$RESULT" "$OUT"/ 2>/dev/null || true
    mkdir -p "$OUT"/figures
    cp benchmarks/results/figures/cuda-*.png "$OUT"/figures/ 2>/dev/null || true
  fi
}
want() { [[ $STEP == all || $STEP == "$1" ]]; }
BENCH=("$PY" benchmarks/run_all.py --device cuda --merge --out "$RESULT")

# The order puts first what a short session most needs: the tests, then the benchmarks.
XDIST=()  # pytest-benchmark warns under xdist, and this suite turns warnings into errors
"$PY" -c "import xdist" 2>/dev/null && XDIST=(-n 8 -p no:benchmark)
want tests && step tests 240 "$PY" -m pytest -q -p no:cacheprovider "${XDIST[@]}" "${TESTS[@]}"
want bias && step bias 150 "${BENCH[@]}" --only bias_attention
want training && step training 120 "${BENCH[@]}" --only training
want tables && step tables 60 "${BENCH[@]}" --only tables
want eager && step eager 120 "$PY" benchmarks/cuda_eager_check.py
want rope && step rope 300 "${BENCH[@]}" --only rope --tune --min-time 0.15
want plot && step plot 60 "$PY" benchmarks/plot.py --device cuda --file "$RESULT"

if ((${#FAILED[@]})); then
  echo "FAILED steps: ${FAILED[*]}"
  exit 1
fi
echo "all steps passed"
