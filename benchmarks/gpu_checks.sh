#!/usr/bin/env bash
# Every check that needs a GPU, most wanted first:
#   bash benchmarks/gpu_checks.sh [LOG_DIR]       # default LOG_DIR: $OUT if set, else gpu_checks/
# ops          python -m ops: build the three CUDA extensions and self-check them on the GPU;
# eval_50k     benchmarks/eval_throughput.py: a whole 50k evaluation of a StyleGAN2 256² checkpoint, each
#              stage's seconds (goal <= 40 s on an H100);
# train_sg3_t_256, train_sg3_r_256   benchmarks/train_throughput.py, StyleGAN3-T/-R 256² presets on
#              procedural data (goal <= 0.8x NVlabs);
# cuda_tests   the `cuda` tests (kernels vs reference, fp16 models, k-NN, metrics and extraction on GPU);
# extract_gpu  benchmarks/extract_speed.py on CUDA: Inception extraction alone, beside torchvision's;
# knn_gpu      benchmarks/metrics_speed.py --gpu-only: the 50k x 50k 4096-d k-NN family (goal <= 1 s);
# ops_speed    benchmarks/ops_speed.py: kernels vs NVlabs' H100 numbers;
# train_256, train_64   StyleGAN2 256² and 64² presets (goal <= 0.8x NVlabs).
# STEPS="eval_50k ops" runs those steps, in that order. Each step is stopped after STEP_TIMEOUT seconds
# (default 300) so that one hung step cannot take the rest of the time; a failing step does not stop the
# others; the exit status is 1 when any step was not ok. Every step appends to one log,
# LOG_DIR/gpu_checks.log (a header per step), and prints a status line with the last lines of its output.
# All of it takes longer than 10 minutes: where one command may run 10 minutes at most, give the first
# command the default order and a second one what is left.
# Without network access, first run benchmarks/gpu_wheels.sh where pip works and carry .whl along; to spend
# no GPU time compiling, run benchmarks/gpu_prebuild.sh where nvcc is and carry .ext_cache along too.
set -uo pipefail
cd "$(dirname "$0")/.."
log_dir="${1:-${OUT:-gpu_checks}}"
mkdir -p "$log_dir"
log="$log_dir/gpu_checks.log"
: > "$log"
python=python3
declare -A command=(
  [ops]="$python -m ops"
  [eval_50k]="$python benchmarks/eval_throughput.py"
  [train_sg3_t_256]="$python benchmarks/train_throughput.py --kimg 2 --warmup 10 experiment=stylegan3_t_256 \
data=shapes data.resolution=256"
  [train_sg3_r_256]="$python benchmarks/train_throughput.py --kimg 2 --warmup 10 experiment=stylegan3_r_256 \
data=shapes data.resolution=256"
  [cuda_tests]="$python -m pytest -m cuda -q -p no:cacheprovider --continue-on-collection-errors"
  [extract_gpu]="$python benchmarks/extract_speed.py --device cuda --size 256 --repeats 3"
  [knn_gpu]="$python benchmarks/metrics_speed.py --gpu-only"
  [ops_speed]="$python benchmarks/ops_speed.py"
  [train_256]="$python benchmarks/train_throughput.py --kimg 2 --warmup 20 experiment=stylegan2_256 data=shapes \
data.resolution=256"
  [train_64]="$python benchmarks/train_throughput.py --kimg 6 --warmup 20 experiment=stylegan2_64 data=shapes \
data.resolution=64"
)
default_order="ops eval_50k train_sg3_t_256 train_sg3_r_256 cuda_tests extract_gpu knn_gpu ops_speed train_256 train_64"
for name in ${STEPS:-$default_order}; do
  if [[ -z "${command[$name]:-}" ]]; then
    echo "unknown step '$name'; steps: $default_order" >&2
    exit 2
  fi
done
if ! $python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "no CUDA GPU visible: nothing to check here" >&2
  exit 2
fi
if compgen -G ".whl/*.whl" > /dev/null; then
  if ! $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl; then
    echo "installing the wheels of .whl/ failed: every step would fail at import" >&2
    exit 3
  fi
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
if [[ -d .ext_cache/torch_extensions ]]; then
  export STUDIO_CACHE="$PWD/.ext_cache"  # used where its builds match this machine, else compiled anew
fi
# Build for this GPU alone: faster, and the key under which benchmarks/gpu_prebuild.sh builds for sm_90.
TORCH_CUDA_ARCH_LIST=$($python -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")
export TORCH_CUDA_ARCH_LIST
$python -c "import torch; print('torch', torch.__version__, 'CUDA', torch.version.cuda, torch.cuda.get_device_name())" \
  | tee -a "$log"

failed=()
for name in ${STEPS:-$default_order}; do
  start=$SECONDS
  printf '\n===== %s: %s\n' "$name" "${command[$name]}" >> "$log"
  # Streamed into the log, so that what a step printed is there even when the whole command is killed.
  # shellcheck disable=SC2086  # the command is split into words on purpose
  timeout -k 10 "${STEP_TIMEOUT:-300}" ${command[$name]} 2>&1 | tee "$log_dir/step.out" >> "$log"
  code=$?
  case $code in
    0) status=ok ;;
    124 | 137) status="STOPPED after ${STEP_TIMEOUT:-300} s (STEP_TIMEOUT)" ;;
    *) status="FAILED (exit $code)" ;;
  esac
  [[ $code == 0 ]] || failed+=("$name")
  echo "$name: $status in $((SECONDS - start)) s" | tee -a "$log"
  tail -n 4 "$log_dir/step.out" | sed 's/^/    /'
done
rm -f "$log_dir/step.out"
if (( ${#failed[@]} )); then
  echo "steps not ok: ${failed[*]}" | tee -a "$log"
  exit 1
fi
