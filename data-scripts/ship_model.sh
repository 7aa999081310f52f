#!/usr/bin/env bash
# Copies a finished `medsgm train` run into models/<name>/ (the shipped priors): the checkpoint
# (model + EMA weights, config, SDE and normalisation in its metadata), the training config,
# the per-step loss log, the loss curve, and a 16-sample grid drawn from the EMA weights with
# the PC sampler (seed 0) so the grid matches the checkpoint that ships.
#
# Usage: data-scripts/ship_model.sh <train-out-dir> <models/name> [sample-steps]
set -euo pipefail
src=${1:?train output dir}; dst=${2:?models/<name>}; steps=${3:-500}
for f in model.safetensors config.toml train_log.csv loss.png; do
  [ -f "$src/$f" ] || { echo "$src/$f is missing" >&2; exit 2; }
done
tmp=$(mktemp -d "${dst%/}.tmp.XXXX"); chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT
cp "$src"/{model.safetensors,config.toml,train_log.csv,loss.png} "$tmp/"
medsgm=${MEDSGM:-target/release/medsgm}
"$medsgm" sample --model "$tmp/model.safetensors" --n 16 --steps "$steps" --out "$tmp/samples"
mv "$tmp/samples/samples.png" "$tmp/samples.png"
rm -rf "$tmp/samples"
rm -rf "$dst"
mv "$tmp" "$dst"
trap - EXIT
echo "shipped $src -> $dst ($(du -sh "$dst" | cut -f1))"
