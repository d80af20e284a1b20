#!/usr/bin/env bash
# Compile the CUDA extensions here, for the lent GPU machine, so that its minutes go to running them:
#   bash benchmarks/gpu_prebuild.sh          # -> .ext_cache/, git-ignored; carry it (with .whl) and
#                                            #    benchmarks/gpu_checks.sh builds nothing it finds there
# The machine's image: Python 3.12, torch 2.11.0+cu130, nvcc 13.0, an H100/H200 (sm_90). A build is keyed
# by its sources, torch, Python major.minor, CUDA, nvcc and architectures (ops/_build.py): the GPU machine
# uses it only if all of these match there, and compiles as before otherwise (nothing is lost).
# Needs nvcc and a Python 3.12 (GPU_PREBUILD_PYTHON, default python3.12); the venv with that machine's
# torch is made once at GPU_PREBUILD_VENV (default /tmp/studio-gpu-prebuild-venv; 5.4 GB measured).
set -euo pipefail
cd "$(dirname "$0")/.."
torch_version=${GPU_PREBUILD_TORCH:-2.11.0}
venv=${GPU_PREBUILD_VENV:-/tmp/studio-gpu-prebuild-venv}
if [[ ! -x $venv/bin/python ]]; then
  "${GPU_PREBUILD_PYTHON:-python3.12}" -m venv "$venv"
  "$venv/bin/python" -m pip install -q "torch==$torch_version" numpy filelock ninja
fi
for folder in /.ext_cache/ /.ext_cache.new/; do
  grep -qx "$folder" .git/info/exclude 2>/dev/null || echo "$folder" >> .git/info/exclude
done
# Built beside the cache in use, which a failed build leaves as it was.
rm -rf .ext_cache.new
STUDIO_CACHE="$PWD/.ext_cache.new" TORCH_CUDA_ARCH_LIST=9.0 PATH="$venv/bin:$PATH" "$venv/bin/python" -m ops
# Only the libraries and their fingerprints are needed there (ops/_build.py), not objects or ninja files.
find .ext_cache.new -type f ! -name '*.so' ! -name build.ok -delete
rm -rf .ext_cache
mv .ext_cache.new .ext_cache
find .ext_cache -type f | sort
du -sh .ext_cache
