#!/usr/bin/env bash
# Reruns BENCHMARKS.md section 6 (issue 16, fast sampling): DDS and DiffPIR tuned on validation
# images only (2 images, 50 NFE, 12 evaluations each), then measured on the held-out test sets
# of sections 3 and 5 at 20, 50 and 100 NFE.
#
# Usage: data-scripts/bench_fast.sh [out-dir]   (needs data-scripts/fetch_test_data.sh and,
# for the real slabs, data-scripts/fetch_real_data.sh). MEDSGM selects another binary, N the
# number of test images (default 8), SKIP_TUNE=1 keeps the committed tuned parameters.
set -euo pipefail
out=${1:-docs/bench}; n=${N:-8}
medsgm=${MEDSGM:-target/release/medsgm}
ct64=models/ct_phantom_64/model.safetensors
ct128=models/ct_phantom_128/model.safetensors
mri=models/mri_mni_64/model.safetensors
tune() { "$medsgm" tune --n 2 --steps 50 --budget 12 --metric psnr "$@"; }
bench() { local name=$1; shift; echo "== $name" >&2
  "$medsgm" bench --out "$out/$name" recon --repeats 1 --n "$n" --steps 100 --nfe-sweep 20,50 "$@"; }
if [ -z "${SKIP_TUNE:-}" ]; then
  for m in dds diffpir; do
    tune --task ct --views 23 --method $m --model $ct64 --out configs/tuned_ct.toml
    tune --task mri --accel 4 --method $m --model $mri --data configs/mri_mni_64.toml --out configs/tuned_mri.toml
  done
  tune --task ct --views 23 --method dds --model $ct128 --out configs/tuned_ct_128.toml
  tune --task ct --views 23 --method dds --model models/ct_head/model.safetensors \
    --data configs/ct_head.toml --out configs/tuned_ct_head.toml
  tune --task mri --accel 4 --method dds --model models/mri_t1/model.safetensors \
    --data configs/mri_t1.toml --out configs/tuned_mri_t1.toml
fi
# Phantoms and MNI at 64² (MAR with the CT prior and tuned_ct.toml's parameters).
bench fast_ct64 --task ct --views 23 --methods dds,diffpir --model $ct64 --config configs/tuned_ct.toml
bench fast_mri --task mri --accel 4,8 --methods dds,diffpir --model $mri \
  --data configs/mri_mni_64.toml --config configs/tuned_mri.toml
bench fast_mar --task mar --methods dds,diffpir --model $ct64 --config configs/tuned_ct.toml
# 128² phantoms and the real held-out slabs (section 5).
bench ct128_dds --task ct --views 23 --methods dds --model $ct128 --config configs/tuned_ct_128.toml
N=9 bench ct_head_dds --task ct --views 23 --data configs/ct_head.toml --methods fbp,fista-tv,dds \
  --model models/ct_head/model.safetensors --config configs/tuned_ct_head.toml --n 9
bench mri_t1_dds --task mri --accel 4,8 --data configs/mri_t1.toml --methods zero-filled,fista-tv,dds \
  --model models/mri_t1/model.safetensors --config configs/tuned_mri_t1.toml --n 9
