#!/usr/bin/env bash
# Every independent CT slice (other patients: two heads, four chests) through `recon` at its
# native grid with the dense-bone head prior (K = 1) and FISTA-TV at the λ chosen on the
# validation heads, full HU range; the chests are outside what a head prior knows and its
# out-of-distribution check should say so.
# Usage: bash docs/bench/ct_head_bone/independent.sh OUT
set -euo pipefail
out=$1
cd "$(dirname "$0")/../../.."
rm -rf "$out"; mkdir -p "$out"
for f in data/real/independent/ct/*.dcm; do
  n=$(basename "$f" .dcm); mkdir -p "$out/in/$n" "$out/ref/$n"; cp "$f" "$out/in/$n/"; cp "$f" "$out/ref/$n/"
done
m=./target/release/medsgm
$m recon ct --input "$out/in" --output "$out/dds" --method dds --model models/ct_head_bone/model.safetensors \
  --config configs/tuned_ct_head_whole.toml --steps 50 --views 23 --reference "$out/ref" > "$out/dds.log" 2>&1 || true
$m recon ct --input "$out/in" --output "$out/tv" --method fista-tv --tv-weight 20000 --views 23 --reference "$out/ref" > "$out/tv.log" 2>&1 || true
for r in dds tv; do
  python3 -c "
import json;d=json.load(open('$out/$r/summary.json'))
for f in d['files']:
    m=f.get('metrics') or {}
    print('$r', f['input'].split('/')[-1], f['status'], round(m.get('psnr',0),2), round(m.get('ssim',0),3), f.get('ood_warning'), f.get('object_diameter_mm'))"
done
