#!/usr/bin/env bash
# Validates medsgm's NIfTI writer with nibabel (issue 5): tests/nifti.rs writes volumes with the
# geometry of the nibabel-made fixtures (qform only, sform, flipped qform, .nii.gz) and
# data-scripts/check_nifti_output.py checks affine, q/sform codes, pixdim, units and values.
#
# Usage: data-scripts/check_nifti_output.sh        (CI-usable; installs into .venv if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
bash data-scripts/ci_venv.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
MEDSGM_NIFTI_OUT="$out" cargo test --release -p medsgm --test nifti --quiet write_with_reference_keeps_geometry
"${MEDSGM_VENV:-.venv}/bin/python" data-scripts/check_nifti_output.py "$out" tests/fixtures/nifti
