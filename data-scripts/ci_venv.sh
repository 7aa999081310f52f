#!/usr/bin/env bash
# Ensures the Python environment of the CI checks (default .venv, or $MEDSGM_VENV) holds
# pydicom, dicom3tools (dciodvfy), nibabel, h5py, numpy and scipy; installs what is missing.
# Prints nothing when all is present. Usage: source-free, `bash data-scripts/ci_venv.sh`.
set -euo pipefail
venv="${MEDSGM_VENV:-.venv}"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
if ! "$venv/bin/python" -c "import pydicom, nibabel, h5py, numpy, scipy" 2>/dev/null \
  || [ ! -x "$venv/bin/dciodvfy" ]; then
  "$venv/bin/pip" install --quiet pydicom==3.0.2 dicom3tools==20260927 nibabel h5py numpy scipy
fi
