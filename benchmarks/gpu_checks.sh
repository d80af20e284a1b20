#!/usr/bin/env bash
# Every check that needs a GPU, in one command (about 10 minutes on an H100):
#   bash benchmarks/gpu_checks.sh [LOG_DIR]       # default LOG_DIR: $OUT if set, else gpu_checks/
# 1. python -m ops: build the three CUDA extensions and run their self-checks on the GPU;
# 2. the `cuda` tests (kernels vs reference, fp16 models, k-NN and feature extraction on GPU);
# 3. benchmarks/ops_speed.py: kernels vs NVlabs' H100 numbers;
# 4. benchmarks/metrics_speed.py --gpu-only: the 50k x 50k 4096-d k-NN family (goal <= 1 s);
# 5. benchmarks/train_throughput.py for the StyleGAN2 256² and 64² and the StyleGAN3-T/-R 256² presets on
#    procedural data (goals <= 0.8x NVlabs);
# 6. benchmarks/eval_throughput.py: a whole 50k evaluation of a StyleGAN2 256² checkpoint (goal <= 40 s).
# Each step writes LOG_DIR/<step>.log and prints one status line; a failing step does not stop the rest.
# STEPS="ops cuda_tests" (names as below) runs a subset, e.g. to stay under a per-command time limit.
# Without network access, first run benchmarks/gpu_wheels.sh where pip works and carry .whl along; to spend
# no GPU time compiling, run benchmarks/gpu_prebuild.sh where nvcc is and carry .ext_cache along too.
set -uo pipefail
cd "$(dirname "$0")/.."
log_dir="${1:-${OUT:-gpu_checks}}"
mkdir -p "$log_dir"
python=python3
if ! $python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU visible: nothing to check here" >&2
  exit 2
fi
if compgen -G ".whl/*.whl" > /dev/null; then
  $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [[ -d .ext_cache/torch_extensions ]]; then
  export STUDIO_CACHE="$PWD/.ext_cache"  # used where its builds match this machine, else compiled anew
fi
$python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())"

step() {
  local name=$1; shift
  if [[ -n "${STEPS:-}" && " $STEPS " != *" $name "* ]]; then return; fi
  local start=$SECONDS
  if "$@" > "$log_dir/$name.log" 2>&1; then status=ok; else status="FAILED (exit $?)"; fi
  echo "$name: $status in $((SECONDS - start)) s -> $log_dir/$name.log"
  tail -n 4 "$log_dir/$name.log" | sed 's/^/    /'
}

step ops $python -m ops
step cuda_tests $python -m pytest -m cuda -q -p no:cacheprovider --continue-on-collection-errors
step ops_speed $python benchmarks/ops_speed.py
step knn_gpu $python benchmarks/metrics_speed.py --gpu-only
step train_256 $python benchmarks/train_throughput.py --kimg 2 --warmup 20 experiment=stylegan2_256 data=shapes \
  data.resolution=256
step train_64 $python benchmarks/train_throughput.py --kimg 6 --warmup 20 experiment=stylegan2_64 data=shapes \
  data.resolution=64
step train_sg3_t_256 $python benchmarks/train_throughput.py --kimg 2 --warmup 10 experiment=stylegan3_t_256 data=shapes \
  data.resolution=256
step train_sg3_r_256 $python benchmarks/train_throughput.py --kimg 2 --warmup 10 experiment=stylegan3_r_256 data=shapes \
  data.resolution=256
step eval_50k $python benchmarks/eval_throughput.py
