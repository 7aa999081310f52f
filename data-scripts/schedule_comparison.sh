#!/usr/bin/env bash
# Learned vs fixed noise schedule (issue 20, paper 002; BENCHMARKS §8).
# Trains the three runs configs/schedule_ct_32_{learned,vp,vp_sigma2}.toml (same network, data,
# seed and steps) in chunks of 250 steps; after each chunk it measures the ELBO bits/dim of the
# EMA network on 16 held-out anatomical phantoms (64 draws each, TEST_SEED stream, never seen in
# training), and at the end also the ODE bits/dim. Resumable: rerun the same command after an
# interruption. Then prints the table of BENCHMARKS §8.
# Usage: [RUNS="learned vp"] data-scripts/schedule_comparison.sh OUT_DIR [MEDSGM_BINARY]
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [MEDSGM_BINARY]}
bin=${2:-target/release/medsgm}
chunk=250
total=2000
runs=${RUNS:-learned vp vp_sigma2}
for run in $runs; do
    cfg=configs/schedule_ct_32_$run.toml
    dir=$out/$run
    mkdir -p "$dir"
    for s in $(seq $chunk $chunk $total); do
        [ -f "$dir/ll_$s.json" ] && continue
        resume=()
        [ -f "$dir/train_state.safetensors" ] && resume=(--resume)
        "$bin" train --config "$cfg" --out-dir "$dir" "${resume[@]}" --steps "$s"
        "$bin" likelihood --model "$dir/model.safetensors" --phantoms 16 --draws 64 \
            --ode-probes 0 --json "$dir/ll_$s.json.part" > /dev/null
        mv "$dir/ll_$s.json.part" "$dir/ll_$s.json"
    done
    if [ ! -f "$dir/ll_final.json" ]; then
        "$bin" likelihood --model "$dir/model.safetensors" --phantoms 16 --draws 64 \
            --ode-probes 1 --json "$dir/ll_final.json.part" > /dev/null
        mv "$dir/ll_final.json.part" "$dir/ll_final.json"
    fi
done
python3 - "$out" $runs <<'PY'
import json, math, sys
out, runs = sys.argv[1], sys.argv[2:]
def mean_se(path, key):
    imgs = json.load(open(path))["images"]
    v = [i[key]["bits_per_dim"] for i in imgs]
    m = sum(v) / len(v)
    se = math.sqrt(sum(i[key]["std_error"] ** 2 for i in imgs)) / len(v) if key == "elbo" else float("nan")
    return m, se
steps = list(range(250, 2001, 250))
print("| step | " + " | ".join(f"{r} ELBO bits/dim" for r in runs) + " |")
print("|---:|" + "---:|" * len(runs))
for s in steps:
    cells = [("%.3f ± %.3f" % mean_se(f"{out}/{r}/ll_{s}.json", "elbo")) for r in runs]
    print(f"| {s} | " + " | ".join(cells) + " |")
cells = [("%.3f" % mean_se(f"{out}/{r}/ll_final.json", "ode")[0]) for r in runs]
print("| 2000, ODE | " + " | ".join(cells) + " |")
PY
