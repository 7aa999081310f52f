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
  # DICOM reader tests (tests/dicom.rs): other encodings of MR_small, a deflated image, JPEG 2000
  # with a pixel-representation mismatch, and inputs that must give clear errors.
  "pydicom==3.0.2|pydicom/data/test_files/MR_small_jp2klossless.dcm|4c0049e0355b560c8c846538d827afbdae5311b20fc5e5a93a3892e109bb140d"
  "pydicom==3.0.2|pydicom/data/test_files/MR_small_RLE.dcm|2e5cb60878dc0acc494298ccdad28fce2cf14c51096e5d8cedab40248ea02e6c"
  "pydicom==3.0.2|pydicom/data/test_files/MR_small_implicit.dcm|6077442c42a56fc7fcc7db8411a657dded9fc109e6d3275765c4de358292b299"
  "pydicom==3.0.2|pydicom/data/test_files/MR_small_bigendian.dcm|3e4c8c9fe70de4f3be149bbd673fa56f211c8e8e2ff9bac63f70f9dc31b5d108"
  "pydicom==3.0.2|pydicom/data/test_files/MR_small_jpeg_ls_lossless.dcm|b2b69dd2ae854bf7dfada6745709cd5d8a4573ea12387adbbdc56e8be6056206"
  "pydicom==3.0.2|pydicom/data/test_files/MR_truncated.dcm|a3f26c279dd214951d32a1548362df3c93f9730135fa893a01552c0e632f587f"
  "pydicom==3.0.2|pydicom/data/test_files/image_dfl.dcm|0029ebbba17e7c6f081408d433cd28b5d1cfee0eeb4cff509b4d972ffa9daf27"
  "pydicom==3.0.2|pydicom/data/test_files/rtstruct.dcm|40c41bdf871fd8553396b02476a66024ed23c04927c0dc53fd10ecd3472cd0d3"
  "pydicom==3.0.2|pydicom/data/test_files/J2K_pixelrep_mismatch.dcm|2df92c523d36639e4d88f892f47e4f6616c48ab017a445a6241ffe38b2d07bbf"
  "pydicom==3.0.2|pydicom/data/test_files/JPGExtended.dcm|13d217617fcadc22c069ec7b18e94731d346c5d83703bc152f692877cab5085f"
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
