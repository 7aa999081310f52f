#!/usr/bin/env bash
# Native 512² DICOM heads through `medsgm recon` (the clinician's path), DDS on the prior's
# 0.957 mm grid resampled back to the native grid, against FISTA-TV on the native grid.
# Usage: bash docs/bench/upsampling/run.sh validation|independent OUT [PRIOR [K...]]
# (PRIOR: ct_head_whole (default), ct_head or ct_head_chest; K: posterior samples, default 1 4;
# the task config is configs/tuned_PRIOR.toml unless TUNED names another)
set -euo pipefail
split=$1; out=$2; prior=${3:-ct_head_whole}; shift $(( $# < 3 ? $# : 3 )); ks=${*:-1 4}
cd "$(dirname "$0")/../../.."
rm -rf "$out"; mkdir -p "$out"
for f in data/real/$split/ct/head_*_512.dcm; do
  n=$(basename "$f" .dcm); mkdir -p "$out/in/$n" "$out/ref/$n"; cp "$f" "$out/in/$n/"; cp "$f" "$out/ref/$n/"
done
m=./target/release/medsgm
for k in $ks; do
  $m recon ct --input "$out/in" --output "$out/dds_k$k" --method dds --model models/$prior/model.safetensors \
    --config "${TUNED:-configs/tuned_$prior.toml}" --steps 50 --samples $k --views 23 --reference "$out/ref" > "$out/dds_k$k.log" 2>&1
done
$m recon ct --input "$out/in" --output "$out/tv" --method fista-tv --tv-weight 20000 --views 23 --reference "$out/ref" > "$out/tv.log" 2>&1
for r in $(for k in $ks; do echo dds_k$k; done) tv; do
  python3 -c "
import json,sys;d=json.load(open('$out/$r/summary.json'))
print('$r',[(f['input'].split('/')[-1],round(f['metrics']['psnr'],2),round(f['metrics']['ssim'],3),round(f['seconds'],1),f.get('ood_warning')) for f in d['files']])"
done
