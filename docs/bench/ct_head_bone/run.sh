#!/usr/bin/env bash
# The dense-bone head prior against its parent (same DDS parameters, 50 NFE):
# 1. head slices of other patients through `recon` at their native 512² grid
#    (validation: K = 1; test: K = 1 and the mean of K = 4);
# 2. 9 slices of the training volume's slab at their full HU range, through `recon`;
# 3. the same slab window-clipped, through `bench recon` (the convention of §5's tables).
# validation: the validation heads and slab [38, 47) (the choice); test: the independent heads
# and the held-out slab [50, 77), run once after the choice.
# Usage: bash docs/bench/ct_head_bone/run.sh validation|test OUT
set -euo pipefail
split=$1; out=$2
case $split in
  validation) heads=validation; ks="1"; slab="38:47"; bench_split="--split validation" ;;
  test) heads=independent; ks="1 4"; slab="50:77:3"; bench_split="" ;;
  *) echo "usage: run.sh validation|test OUT" >&2; exit 2 ;;
esac
cd "$(dirname "$0")/../../.."
m=./target/release/medsgm
mkdir -p "$out"
for prior in ct_head_whole ct_head_bone; do
  TUNED=configs/tuned_ct_head_whole.toml bash docs/bench/upsampling/run.sh $heads "$out/heads_$prior" $prior $ks | grep dds_k
done
python3 - "$out" "$slab" <<'PY'
import os, sys, numpy as np, nibabel as nib
v = nib.load('data/real/cranium_ct.nii.gz')
a = np.asarray(v.dataobj)[:, :, slice(*map(int, sys.argv[2].split(':')))].astype(np.float32)
for d in ['in', 'ref']:
    os.makedirs(f'{sys.argv[1]}/slab/{d}', exist_ok=True)
    nib.save(nib.Nifti1Image(a, v.affine), f'{sys.argv[1]}/slab/{d}/slab.nii.gz')
PY
for prior in ct_head_whole ct_head_bone; do
  $m recon ct --input "$out/slab/in" --output "$out/slab/$prior" --method dds --model models/$prior/model.safetensors \
    --config configs/tuned_ct_head_whole.toml --steps 50 --views 23 --units hu --reference "$out/slab/ref" > "$out/slab/$prior.log" 2>&1
  python3 -c "import json;d=json.load(open('$out/slab/$prior/summary.json'));print('slab unclipped $prior',d['files'][0]['metrics'])"
  $m bench --out "$out/bench_$prior" recon --task ct --views 23 --data configs/ct_head_whole.toml $bench_split \
    --methods dds --model models/$prior/model.safetensors --config configs/tuned_ct_head_whole.toml --n 9 --steps 50 --repeats 1 > "$out/bench_$prior.log" 2>&1
  tail -4 "$out/bench_$prior.log"
done
