#!/usr/bin/env bash
# Validates medsgm's DICOM writer with independent tools (issue 5): the example series written by
# tests/dicom_write.rs are read back by pydicom (data-scripts/check_dicom_output.py: UIDs,
# ImageType, HU within half a rescale step) and checked by dciodvfy from dicom3tools, which must
# report no "Error" lines (warnings are listed). Needs data/real (data-scripts/fetch_test_data.sh).
#
# Usage: data-scripts/check_dicom_output.sh        (CI-usable; installs into .venv if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${MEDSGM_VENV:-.venv}"
bash data-scripts/ci_venv.sh
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
MEDSGM_DICOM_OUT="$out" cargo test --release -p medsgm --test dicom_write --quiet
"$venv/bin/python" data-scripts/check_dicom_output.py "$out"
errors=0
for f in "$out"/*/*.dcm; do
  report=$("$venv/bin/dciodvfy" "$f" 2>&1 || true)
  if grep -q '^Error' <<<"$report"; then
    echo "dciodvfy errors in ${f#$out/}:"; grep '^Error' <<<"$report"; errors=$((errors + 1))
  fi
done
n=$(ls "$out"/*/*.dcm | wc -l)
echo "dciodvfy: $((n - errors)) passed, $errors failed"
[ "$errors" -eq 0 ]
