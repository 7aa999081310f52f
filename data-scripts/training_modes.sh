#!/usr/bin/env bash
# Whole slices vs random patches (plain, or with PaDIS positional channels) for a real prior
# (issue 21; BENCHMARKS §5). SET=ct_head (default) trains
# configs/training_modes/ct_head_{patch,patch_pos,whole}.toml, SET=mri_t1
# configs/training_modes/mri_t1_{patch,whole}.toml (same start, seed, data, augmentation,
# learning rate, steps and pixels per step), then compares them on the VALIDATION slab of the
# set's data config only (the test slab is never looked at):
#   - ct_head: sparse-view CT, 23 views; mri_t1: 4× MRI — every method in METHODS with the
#     parameters tuned for the shipped prior (configs/tuned_<set>.toml), one sample, same seed;
#   - the denoising residual of `medsgm calibrate` on the same slices (lower: the prior explains
#     the real slices better).
# Resumable: a finished training run or evaluation is skipped.
# Usage: [SET=ct_head|mri_t1] [METHODS=dds] [STEPS=50] data-scripts/training_modes.sh OUT_DIR [MEDSGM_BINARY]
# (needs data-scripts/fetch_real_data.sh; each training run is ~1 h on one core).
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [MEDSGM_BINARY]}
bin=${2:-target/release/medsgm}
methods=${METHODS:-dds}
steps=${STEPS:-50}
set=${SET:-ct_head}
case $set in
    ct_head) modes="patch patch_pos whole"; problem=(--task ct --views 23); n=9 ;;
    mri_t1) modes="patch whole"; problem=(--task mri --accel 4); n=10 ;;
    *) echo "SET must be ct_head or mri_t1" >&2; exit 2 ;;
esac
for mode in $modes; do
    dir=$out/$mode
    if [ ! -f "$dir/done" ]; then
        resume=()
        [ -f "$dir/train_state.safetensors" ] && resume=(--resume)
        "$bin" train --config "configs/training_modes/${set}_$mode.toml" --out-dir "$dir" "${resume[@]}"
        touch "$dir/done"
    fi
done
for mode in $modes; do
    dir=$out/$mode
    [ -f "$dir/eval/summary.json" ] || "$bin" bench --out "$dir/eval" recon "${problem[@]}" \
        --data "configs/$set.toml" --split validation --methods "$methods" \
        --model "$dir/model.safetensors" --config "configs/tuned_$set.toml" --n $n --steps "$steps"
    [ -f "$dir/residual.md" ] || "$bin" calibrate --model "$dir/model.safetensors" \
        --data "configs/$set.toml" --out "$dir/calibrated.safetensors" > "$dir/residual.md"
done
python3 - "$out" $modes <<'PY'
import csv, sys, statistics as st
out, modes = sys.argv[1], sys.argv[2:]
print("| mode | method | PSNR (dB) | SSIM | validation residual |")
print("|---|---|---:|---:|---:|")
for m in modes:
    rows = list(csv.DictReader(open(f"{out}/{m}/eval/per_image.csv")))
    res = next(l for l in open(f"{out}/{m}/residual.md") if l.startswith("| calibration"))
    r = res.split("|")[3].strip()
    for meth in sorted({x["method"] for x in rows}):
        p = [float(x["psnr"]) for x in rows if x["method"] == meth]
        s = [float(x["ssim"]) for x in rows if x["method"] == meth]
        sd = lambda v: st.stdev(v) / len(v) ** 0.5 if len(v) > 1 else 0.0
        print(f"| {m} | {meth} | {st.mean(p):.2f} ± {sd(p):.2f} | {st.mean(s):.4f} ± {sd(s):.4f} | {r} |")
PY
