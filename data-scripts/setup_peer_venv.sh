#!/usr/bin/env bash
# Creates the Python environment of the peer benchmarks (data-scripts/peer_bench_*.py) at
# .venv in the repository root:
#   numpy, scipy, scikit-image  (peers of `medsgm bench operators`)
#   astra-toolbox               (fan-beam peer of `medsgm bench operators`, CPU projectors)
#   torch                       (peer of `medsgm bench model`; PyTorch on the CPU)
# then: medsgm bench operators --peer-python .venv/bin/python
#       medsgm bench model --config configs/ct_phantom_64.toml --peer-python .venv/bin/python
#
# torch comes from the package registry with plain `pip install torch`: on Linux that is the
# multi-gigabyte CUDA build, which also runs on the CPU (BENCHMARKS.md was measured with
# torch 2.15.0+cu132 installed that way; a CPU-only wheel, where one can be installed, times the
# same oneDNN CPU kernels).
# Usage: bash data-scripts/setup_peer_venv.sh [venv dir, default .venv]
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-.venv}"
python3 -m venv "$venv"
"$venv/bin/pip" install --upgrade pip
"$venv/bin/pip" install numpy scipy scikit-image astra-toolbox
"$venv/bin/python" -c "import torch" 2>/dev/null || "$venv/bin/pip" install torch
"$venv/bin/python" -c "import numpy, scipy, skimage, astra, torch; \
print('numpy', numpy.__version__, 'scipy', scipy.__version__, 'scikit-image', skimage.__version__, \
'astra', astra.__version__, 'torch', torch.__version__)"
