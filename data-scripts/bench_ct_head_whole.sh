#!/usr/bin/env bash
# Reruns BENCHMARKS.md section 5, "The whole-slice head-CT prior": models/ct_head_whole against
# models/ct_head, choosing and tuning on the VALIDATION slab only, then the held-out test slab,
# the view sweep, the independent slices of other patients and the out-of-distribution
# calibration. Training it again: medsgm train --config configs/ct_head_whole.toml --out-dir DIR
# (from models/ct_head; 1000 of its 1500 steps were shipped).
#
# Usage: data-scripts/bench_ct_head_whole.sh [out-dir]   (needs data-scripts/fetch_real_data.sh --validation)
# MEDSGM selects another binary; SKIP_TUNE=1 keeps the committed configs/tuned_ct_head_whole.toml.
set -euo pipefail
out=${1:-docs/bench}
medsgm=${MEDSGM:-target/release/medsgm}
model=models/ct_head_whole/model.safetensors; tuned=configs/tuned_ct_head_whole.toml
data=configs/ct_head.toml
# 1. Validation slab: the prior alone changes (the patch prior's tuned parameters), then DDS
#    re-tuned for it (FISTA-TV's weight is the patch prior's: TV does not depend on the prior).
validation() { # validation OUT MODEL
  "$medsgm" bench --out "$out/training_modes/$1" recon --task ct --views 23 --data "$data" \
    --split validation --methods dds --model "$2" --config configs/tuned_ct_head.toml --n 9 \
    --steps 50 --repeats 1
}
validation shipped_patch_3000 models/ct_head/model.safetensors
validation ct_head_whole_1000 "$model"
if [ -z "${SKIP_TUNE:-}" ]; then
  "$medsgm" tune --n 2 --steps 50 --budget 12 --metric psnr --task ct --views 23 --method dds \
    --model "$model" --data "$data" --out "$tuned"
fi
# 2. The held-out test slab (DDS at 20, 50 and 100 NFE; FBP and tuned FISTA-TV).
"$medsgm" bench --out "$out/ct_head_whole" recon --repeats 1 --n 9 --steps 100 --nfe-sweep 20,50 \
  --task ct --views 23 --data "$data" --methods fbp,fista-tv,dds --model "$model" --config "$tuned"
# 3. Views 10, 45, 90 on 3 test slices; the independent slices of other patients.
"$medsgm" bench --out "$out/ct_head_whole_views" recon --task ct --views 10,45,90 --data "$data" \
  --methods dds --model "$model" --config "$tuned" --n 3 --steps 100 --repeats 1
"$medsgm" bench --out "$out/ct_head_whole_independent" recon --task ct --views 23 \
  --data data/real/independent/ct --methods fbp,fista-tv,dds --model "$model" --config "$tuned" \
  --n 6 --steps 50 --repeats 1
# 3b. The validation set of other patients (fetch_real_data.sh --validation): the default
#     head-CT prior is the better of the two on its head slices.
for m in ct_head ct_head_whole; do
  "$medsgm" bench --out "$out/ct_validation_other/$m" recon --task ct --views 23 \
    --data data/real/validation/ct --methods fbp,fista-tv,dds --model "models/$m/model.safetensors" \
    --config "configs/tuned_$m.toml" --n 7 --steps 50 --repeats 1
done
# 4. Out-of-distribution threshold from the validation slab, checked on the test slab, the
#    independent slices and phantoms (copy the output over the model to ship the threshold).
cal=$(mktemp --suffix=.safetensors)
"$medsgm" calibrate --model "$model" --data "$data" --out "$cal" --check "$data" \
  --check data/real/independent/ct --check-phantoms 4 | tee "$out/ct_head_whole/ood.md"
echo "calibrated checkpoint: $cal"
