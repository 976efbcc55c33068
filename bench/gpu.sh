#!/bin/bash
# Fused training on one GPU, in one command: the benchmark (plain fit, one ablate trial, fused
# groups of 8, 16 and 32; JSON in bench/results/ and $OUT), then the whole reference study
# (32 cells x 25 epochs x 60,000 images, evaluated every epoch) with its wall time measured.
#
# Needs: a machine with JAX on a GPU (no TensorFlow needed), the wheels of bench/wheels.sh in
# .whl/ where it has no network, and full MNIST (mnist.npz) at $ABLATE_MNIST (default
# .data/mnist.npz). Run it from the checkout's root:
#
#     bench/gpu.sh                      # OUT=folder to copy results to (default: out-gpu)
#
# `ablate run` resumes, so a second call finishes a study the first one's time limit cut.
set -uo pipefail
cd "$(dirname "$0")/.."
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 2
  export PYTHONPATH=/tmp/site:$PWD
fi
export KERAS_BACKEND=jax PYTHONUNBUFFERED=1 ABLATE_MNIST=${ABLATE_MNIST:-$PWD/.data/mnist.npz}
OUT=${OUT:-out-gpu}
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
python3 bench/fused.py --groups 8 16 32 --epochs 2 2>&1 | tee "$OUT/fused.log"
cp bench/results/fused-*.json "$OUT/" 2>/dev/null
sed 's#^results:.*#results: reference-gpu#' studies/reference.yaml > "$OUT/reference.yaml"
start=$(date +%s.%N)
python3 -m ablate run "$OUT/reference.yaml" --workers 1 2>&1 | tee "$OUT/reference-run.log"
end=$(date +%s.%N)
echo "{\"reference_wall_seconds\": $(echo "$end - $start" | bc)}" > "$OUT/reference-wall.json"
python3 -m ablate analyze "$OUT/reference-gpu/reference" > "$OUT/reference-effects.txt" 2>&1
python3 -m ablate report "$OUT/reference-gpu/reference" 2>&1 | tail -1
cat "$OUT/reference-wall.json" "$OUT/reference-effects.txt"
