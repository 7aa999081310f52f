#!/usr/bin/env bash
# The dense-bone head prior against its parent on validation data only (the choice):
# 1. the validation heads of other patients through `recon` at their native 512² grid;
# 2. the validation slab [38, 47) of the training volume, unclipped HU (to 2986), through `recon`;
# 3. the same slab window-clipped, through `bench recon` (the convention of every table in §5).
# Usage: bash docs/bench/ct_head_bone/validation.sh OUT
set -euo pipefail
out=$1
cd "$(dirname "$0")/../../.."
m=./target/release/medsgm
mkdir -p "$out"
for prior in ct_head_whole ct_head_bone; do
  TUNED=configs/tuned_ct_head_whole.toml bash docs/bench/upsampling/run.sh validation "$out/heads_$prior" $prior 1 | grep dds_k1
done
python3 - "$out" <<'PY'
import sys, numpy as np, nibabel as nib
v = nib.load('data/real/cranium_ct.nii.gz')
a = np.asarray(v.dataobj)[:, :, 38:47].astype(np.float32)
img = nib.Nifti1Image(a, v.affine)
for d in ['in', 'ref']:
    import os; os.makedirs(f'{sys.argv[1]}/slab/{d}', exist_ok=True)
    nib.save(img, f'{sys.argv[1]}/slab/{d}/slab.nii.gz')
PY
for prior in ct_head_whole ct_head_bone; do
  $m recon ct --input "$out/slab/in" --output "$out/slab/$prior" --method dds --model models/$prior/model.safetensors \
    --config configs/tuned_ct_head_whole.toml --steps 50 --views 23 --units hu --reference "$out/slab/ref" > "$out/slab/$prior.log" 2>&1
  python3 -c "import json;d=json.load(open('$out/slab/$prior/summary.json'));print('slab unclipped $prior',d['files'][0]['metrics'])"
  $m bench --out "$out/bench_$prior" recon --task ct --views 23 --data configs/ct_head_whole.toml --split validation \
    --methods dds --model models/$prior/model.safetensors --config configs/tuned_ct_head_whole.toml --n 9 --steps 50 --repeats 1 > "$out/bench_$prior.log" 2>&1
  tail -4 "$out/bench_$prior.log"
done
