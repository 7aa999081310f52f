#!/usr/bin/env bash
# Reruns BENCHMARKS.md section 5 (real anatomy): the real-CT and real-T1 priors on their
# held-out test slabs against tuned classical baselines, after tuning every method on the
# validation slabs only, and the out-of-distribution calibration with its check sets.
#
# Usage: data-scripts/bench_real.sh ct|mri [out-dir]      (needs data-scripts/fetch_real_data.sh)
# Environment: MEDSGM (binary, default target/release/medsgm), STEPS (PC steps N, default 100:
# 201 NFE), N_TEST (test slices, default 9, evenly spaced over the slab).
set -euo pipefail
task=${1:?ct or mri}; out=${2:-docs/bench}
medsgm=${MEDSGM:-target/release/medsgm}
steps=${STEPS:-100}; n=${N_TEST:-9}
if [ "$task" = ct ]; then
  model=models/ct_head/model.safetensors; data=configs/ct_head.toml; tuned=configs/tuned_ct_head.toml
  setting=(--views 23); classical=fbp
else
  model=models/mri_t1/model.safetensors; data=configs/mri_t1.toml; tuned=configs/tuned_mri_t1.toml
  setting=(--accel 4); classical=zero-filled
fi
# 1. Tuning on the validation slab (never the test slab).
"$medsgm" tune --task "$task" "${setting[@]}" --method fista-tv --data "$data" --n 4 --budget 12 \
  --metric psnr --out "$tuned"
"$medsgm" tune --task "$task" "${setting[@]}" --method pc-projection --model "$model" --data "$data" \
  --n 2 --steps "$steps" --budget 8 --fix lambda=1 --metric psnr --out "$tuned"
# 2. The held-out test slab.
if [ "$task" = ct ]; then
  "$medsgm" bench --out "$out/ct_head" recon --task ct --views 23 --data "$data" \
    --methods fbp,fista-tv,pc-projection --model "$model" --config "$tuned" --n "$n" --steps "$steps"
  # The posterior mean of K = 2 samples, and the view sweep on 3 slices.
  "$medsgm" bench --out "$out/ct_head_k2" recon --task ct --views 23 --data "$data" \
    --methods pc-projection --model "$model" --config "$tuned" --n "$n" --steps "$steps" --samples 2
  "$medsgm" bench --out "$out/ct_head_views" recon --task ct --views 10,45,90 --data "$data" \
    --methods fbp,fista-tv,pc-projection --model "$model" --config "$tuned" --n 3 --steps "$steps"
else
  "$medsgm" bench --out "$out/mri_t1" recon --task mri --accel 4,8 --data "$data" \
    --methods zero-filled,fista-tv,pc-projection --model "$model" --config "$tuned" --n "$n" --steps "$steps"
fi
# 3. Out-of-distribution calibration (validation slab) and checks: the test slab must stay
#    quiet; other priors' worlds must be flagged.
cal=$(mktemp --suffix=.safetensors)
if [ "$task" = ct ]; then
  "$medsgm" calibrate --model "$model" --data "$data" --out "$cal" --check "$data" \
    --check data/real/independent/ct --check-phantoms 4 | tee "$out/ct_head/ood.md"
  # The swap: the phantom prior (calibrated on phantoms) on real CT.
  "$medsgm" calibrate --model models/ct_phantom_128/model.safetensors --out "${cal%.safetensors}_p.safetensors" \
    --check "$data" --check data/real/independent/ct --check-phantoms 4 | tee "$out/ct_head/ood_phantom_prior.md"
else
  "$medsgm" calibrate --model "$model" --data "$data" --out "$cal" --check "$data" \
    --check data/real/independent/mr/t1_adi_192.dcm \
    --check data/real/independent/mr/dwi_mi2b2_256.dcm --check data/real/independent/mr_pd_series | tee "$out/mri_t1/ood.md"
fi
echo "calibrated checkpoint: $cal (copy it over $model to ship the threshold)"
