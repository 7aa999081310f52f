#!/usr/bin/env bash
# Reruns the reconstruction-quality tables of BENCHMARKS.md (issue 4): sparse-view CT against
# the number of views, the score methods at equal NFE (single samples and posterior means of 4),
# the classical methods around 23 views, quality against NFE, MAR, and MRI at 4x/8x/24x,
# all on held-out images with the shipped priors and the tuned task configs.
#
# Usage: data-scripts/bench_accuracy.sh [out-dir] [n-images]  (≈ 2.5 h on 2 cores)
# Needs data/real (data-scripts/fetch_test_data.sh) for MRI. Set MEDSGM to use another binary.
set -euo pipefail
out=${1:-bench-accuracy}; n=${2:-8}
medsgm=${MEDSGM:-target/release/medsgm}
ct=models/ct_phantom_64/model.safetensors
mri=models/mri_mni_64/model.safetensors
mkdir -p "$out"
run() { local name=$1; shift; echo "== $name: medsgm bench recon $*" >&2
  "$medsgm" bench recon --repeats 1 --steps "${STEPS:-100}" --out "$out/$name" "$@"; }

run ct_views --task ct --views 10,20,23,45,90 --methods fbp,fista-tv,pc-projection \
  --model "$ct" --config configs/tuned_ct.toml --n "$n"
run ct_methods --task ct --views 23 --methods ald-projection,score-sde,langevin \
  --model "$ct" --config configs/tuned_ct.toml --n "$n"
# Posterior means of K = 4 samples (201 NFE each) for every score method at 23 views.
run ct_k4 --task ct --views 23 \
  --methods fbp,fista-tv,pc-projection,ald-projection,score-sde,langevin --samples 4 \
  --model "$ct" --config configs/tuned_ct.toml --n "$n"
# The classical methods around 23 views: even view counts contain the 90° view.
run ct_parity --task ct --views 18,19,20,21,22,23,24,25,26 --methods fbp,fista-tv \
  --config configs/tuned_ct.toml --n "$n"
run ct_nfe --task ct --views 23 --methods pc-projection --model "$ct" \
  --config configs/tuned_ct.toml --n "$n" --nfe-sweep 100,200,500,1000,2000
# The default step count (N = 500, 1001 NFE per sample), posterior mean of 4 samples.
STEPS=500 run ct_default_k4 --task ct --views 23 --methods pc-projection --samples 4 \
  --model "$ct" --config configs/tuned_ct.toml --n "$n"
# The other score methods at the default step count (PC + projection's row is in ct_nfe).
STEPS=500 run ct_methods_default --task ct --views 23 --methods ald-projection,score-sde,langevin \
  --model "$ct" --config configs/tuned_ct.toml --n "$n"
run mar --task mar --methods fbp,li,pc-projection --model "$ct" \
  --config configs/tuned_ct.toml --n "$n"
run mri --task mri --accel 4,8,24 \
  --methods zero-filled,fista-tv,pc-projection,ald-projection,score-sde,langevin \
  --model "$mri" --data configs/mri_mni_64.toml --config configs/tuned_mri.toml --n "$n"
STEPS=500 run mri_default --task mri --accel 4,8 \
  --methods pc-projection,ald-projection,score-sde,langevin \
  --model "$mri" --data configs/mri_mni_64.toml --config configs/tuned_mri.toml --n "$n"
# PC against ALD at 8x with two more sampler seeds (a tie with seed 0).
for seed in 1 2; do
  STEPS=500 run mri_default_8x_seed$seed --task mri --accel 8 --methods pc-projection,ald-projection \
    --model "$mri" --data configs/mri_mni_64.toml --config configs/tuned_mri.toml --n "$n" --seed $seed
done
# 128² with models/ct_phantom_128 (methods tuned at 128² into configs/tuned_ct_128.toml, see
# BENCHMARKS.md): 23 views at the default step count, the view sweep at 201 NFE, and the
# quality-vs-NFE curve.
ct128=models/ct_phantom_128/model.safetensors
STEPS=500 run ct128_default --task ct --views 23 --methods fbp,fista-tv,pc-projection \
  --model "$ct128" --config configs/tuned_ct_128.toml --n "$n"
run ct128_views --task ct --views 10,20,23,45,90 --methods fbp,fista-tv,pc-projection \
  --model "$ct128" --config configs/tuned_ct_128.toml --n "$n"
run ct128_nfe --task ct --views 23 --methods pc-projection --model "$ct128" \
  --config configs/tuned_ct_128.toml --n "$n" --nfe-sweep 100,200,500,1000,2000
# The same at a mid warm start, t0 = 0.5 (the tuned r and lambda), default against 2001 NFE.
printf '[pc-projection]\nlambda = 1.0\nsnr = 0.7245466634533134\nt_start = 0.5\n' > "$out/t05.toml"
STEPS=500 run ct128_nfe_t05 --task ct --views 23 --methods pc-projection --model "$ct128" \
  --config "$out/t05.toml" --n "$n" --nfe-sweep 2000
