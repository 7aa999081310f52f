#!/usr/bin/env bash
# Seconds per slice (BENCHMARKS.md section 5): recon ct end to end at 128² (the 128² phantom
# prior), 256² and 512² (the head-CT prior) with DDS (50 NFE) and PC + projection (201 NFE), and
# one 512² DICOM slice in batch mode. Run it on an idle machine; needs
# data-scripts/fetch_real_data.sh.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
M=${MEDSGM:-$root/target/release/medsgm}
export RAYON_NUM_THREADS=2
work=$(mktemp -d); cd "$work"
$M phantom --kind anatomical --size 512 --seed 10000000 --out p512.npy >/dev/null
$M phantom --kind anatomical --size 256 --seed 10000000 --out p256.npy >/dev/null
$M phantom --kind anatomical --size 128 --seed 10000000 --out p128.npy >/dev/null
$M simulate ct -i p128.npy --views 23 -o s128.npy >/dev/null
$M simulate ct -i p512.npy --views 23 -o s512.npy >/dev/null
$M simulate ct -i p256.npy --views 23 -o s256.npy >/dev/null
for spec in "dds 50" "pc-projection 100"; do set -- $spec
  /usr/bin/time -f "128² $1 steps $2: %e s wall, %M KB" $M recon ct -i s128.npy --method $1 --steps $2 --model $root/models/ct_phantom_128/model.safetensors --config $root/configs/tuned_ct_128.toml --units hu --out r_128_$1.npy 2>&1 | tail -1
done
for n in 256 512; do
  for spec in "dds 50" "pc-projection 100"; do set -- $spec
    /usr/bin/time -f "$n² $1 steps $2: %e s wall, %M KB" $M recon ct -i s$n.npy --method $1 --steps $2 --model $root/models/ct_head/model.safetensors --config $root/configs/tuned_ct_head.toml --units hu --out r_${n}_$1.npy 2>&1 | tail -1
  done
done
/usr/bin/time -f "DICOM 512² (head ser002, resampled to 0.957 mm) dds 50: %e s wall" $M recon ct --input $root/data/real/independent/ct/head_ser002_512.dcm --output d512 --method dds --steps 50 --model $root/models/ct_head/model.safetensors --config $root/configs/tuned_ct_head.toml 2>&1 | tail -1
lscpu | grep "Model name"
