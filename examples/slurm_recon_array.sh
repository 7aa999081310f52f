#!/bin/bash
# Reconstruct a whole archive with a Slurm job array: task K of N processes every N-th input of
# the sorted work list (`--shard K/N`, disjoint shards that cover the list); a resubmitted or
# requeued task skips the inputs whose outputs are already complete (`--resume`).
#
#   sbatch --array=0-15 examples/slurm_recon_array.sh /data/archive /data/recon
#
# Each task writes OUTPUT/summary_shard_K_of_N.json; exit code 2 means some inputs were
# invalid (listed in the summary with their error), 1 a runtime failure.
#SBATCH --job-name=medsgm-recon
#SBATCH --cpus-per-task=4
#SBATCH --mem=16G
#SBATCH --time=04:00:00
#SBATCH --output=medsgm-recon-%A_%a.log
set -euo pipefail

INPUT=${1:?usage: slurm_recon_array.sh INPUT OUTPUT}   # folder, manifest.csv, series or volume
OUTPUT=${2:?usage: slurm_recon_array.sh INPUT OUTPUT}
MEDSGM=${MEDSGM:-medsgm}
MODEL=${MODEL:-models/ct_phantom_64/model.safetensors}

"$MEDSGM" recon ct \
    --method pc-projection --model "$MODEL" --units hu --steps 500 --seed 0 \
    --input "$INPUT" --output "$OUTPUT" \
    --shard "$((SLURM_ARRAY_TASK_ID - ${SLURM_ARRAY_TASK_MIN:-0}))/${SLURM_ARRAY_TASK_COUNT}" --resume
