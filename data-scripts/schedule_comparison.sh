#!/usr/bin/env bash
# Learned vs fixed noise schedule (issue 20, paper 002; BENCHMARKS §8).
# Trains the three runs configs/schedule_ct_32_{learned,vp,vp_sigma2}.toml (same network, data,
# seed and steps) in chunks of 250 steps; after each chunk it measures the ELBO bits/dim of the
# EMA network on 16 held-out anatomical phantoms (64 draws each, TEST_SEED stream, never seen in
# training), and at the end also the ODE bits/dim. Resumable: rerun the same command after an
# interruption. Then prints the table of BENCHMARKS §8 and draws OUT_DIR/curves.svg.
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
# the curves as SVG: held-out ELBO bits/dim against the training step, one line per run
curves = {r: [mean_se(f"{out}/{r}/ll_{s}.json", "elbo")[0] for s in steps] for r in runs}
lo = min(min(v) for v in curves.values()); hi = max(max(v) for v in curves.values())
W, H, L, B = 640, 400, 70, 50
X = lambda s: L + (s - steps[0]) / (steps[-1] - steps[0]) * (W - L - 20)
Y = lambda v: 20 + (hi - v) / (hi - lo) * (H - B - 20)
colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
       f'<rect width="{W}" height="{H}" fill="white"/>',
       f'<line x1="{L}" y1="{H-B}" x2="{W-20}" y2="{H-B}" stroke="black"/>',
       f'<line x1="{L}" y1="20" x2="{L}" y2="{H-B}" stroke="black"/>',
       f'<text x="{(W+L)/2}" y="{H-12}" text-anchor="middle">training step</text>',
       f'<text x="16" y="{H/2}" transform="rotate(-90 16 {H/2})" text-anchor="middle">held-out ELBO bits/dim (lower is better)</text>']
for s in steps:
    svg.append(f'<text x="{X(s):.0f}" y="{H-B+16}" text-anchor="middle">{s}</text>')
for k in range(5):
    v = lo + k * (hi - lo) / 4
    svg.append(f'<text x="{L-6}" y="{Y(v)+4:.0f}" text-anchor="end">{v:.2f}</text>')
for i, (r, v) in enumerate(curves.items()):
    pts = " ".join(f"{X(s):.1f},{Y(y):.1f}" for s, y in zip(steps, v))
    svg.append(f'<polyline fill="none" stroke="{colors[i % 4]}" stroke-width="2" points="{pts}"/>')
    svg.append(f'<text x="{W-30}" y="{30+16*i}" text-anchor="end" fill="{colors[i % 4]}">{r}</text>')
svg.append("</svg>")
open(f"{out}/curves.svg", "w").write("\n".join(svg))
PY
