#!/usr/bin/env bash
# Fetch the small real images that ship inside registry packages (see the project's
# data-sources reference) and verify their sha256. Nothing is downloaded at run time by medsgm
# itself; tests and training configs read the files this script leaves under data/real/.
#
# Usage: data-scripts/fetch_test_data.sh [DEST]     (default DEST = data/real)
set -euo pipefail
dest="${1:-data/real}"
cache="${MEDSGM_WHEEL_CACHE:-.cache/wheels}"
mkdir -p "$dest" "$cache"

# package==version | member | sha256 (empty: print the hash and pin it)
entries=(
  "nilearn==0.14.1|nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz|421a10e872fd6cadae7f61d358dffbcc1795a497d61ee76c5dda2503e1a1e9e6"
  "pydicom==3.0.2|pydicom/data/test_files/CT_small.dcm|3dd31e5cc835b3f2cdd46c9da1982f59251e78518fefa8163d914631c66437d6"
  "pydicom==3.0.2|pydicom/data/test_files/MR_small.dcm|3f27d1c22f1a66e80d7bb7c911e8610fd0bb70325a76746a7adb1c0ddefcf2bb"
)

for e in "${entries[@]}"; do
  IFS='|' read -r pkg member sha <<<"$e"
  out="$dest/$(basename "$member")"
  if [ -f "$out" ] && echo "$sha  $out" | sha256sum -c --status; then
    continue
  fi
  name="${pkg%%==*}"; ver="${pkg##*==}"
  wheel=$(ls "$cache"/"${name}"-"${ver}"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$wheel" ]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: "$pkg" -d "$cache"
    wheel=$(ls "$cache"/"${name}"-"${ver}"-*.whl | head -n1)
  fi
  python3 - "$wheel" "$member" "$out.tmp" <<'PY'
import sys, zipfile
wheel, member, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, open(out, "wb") as f:
    f.write(z.read(member))
PY
  if ! echo "$sha  $out.tmp" | sha256sum -c --status; then
    echo "error: sha256 mismatch for $member from $pkg (got $(sha256sum "$out.tmp" | cut -d' ' -f1))" >&2
    rm -f "$out.tmp"; exit 1
  fi
  mv "$out.tmp" "$out"
  echo "fetched $out"
done
