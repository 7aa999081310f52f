#!/usr/bin/env bash
# Tests the dataset preparation scripts (prepare_ct.py, prepare_brats.py, prepare_fastmri.py)
# on small synthetic DICOM / NIfTI / HDF5 datasets (data-scripts/test_prepare_scripts.py);
# about a second plus the one-time pip install into the CI venv (data-scripts/ci_venv.sh).
#
# Usage: data-scripts/test_prepare_scripts.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash data-scripts/ci_venv.sh
"${MEDSGM_VENV:-.venv}/bin/python" data-scripts/test_prepare_scripts.py
