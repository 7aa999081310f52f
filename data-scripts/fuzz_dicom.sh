#!/usr/bin/env bash
# Bounded mutation fuzzing of medsgm's DICOM reader (tests/dicom_robustness.rs,
# mutated_inputs_never_panic): ITERS seeded mutations per corpus file (byte changes, 32-bit
# "interesting" lengths, insertions, deletions, truncations); every input must give an error or
# finite values, never a panic. Reads slower than 1 s are reported and kept in KEEP_DIR.
#
# Usage: data-scripts/fuzz_dicom.sh [ITERS=2000] [SEED=random] [TIME_LIMIT_S=600] [KEEP_DIR]
set -euo pipefail
iters="${1:-2000}"
seed="${2:-$(date +%s)}"
limit="${3:-600}"
keep="${4:-}"
[ -n "$keep" ] && mkdir -p "$keep" && export MEDSGM_DICOM_FUZZ_KEEP="$keep"
echo "fuzzing: $iters mutations per file, seed $seed, at most ${limit}s"
cargo test --release -p medsgm --test dicom_robustness --no-run --quiet
MEDSGM_DICOM_FUZZ_ITERS="$iters" MEDSGM_DICOM_FUZZ_SEED="$seed" RUST_BACKTRACE=0 \
  timeout "$limit" cargo test --release -p medsgm --test dicom_robustness --quiet \
  mutated_inputs_never_panic -- --nocapture 2>&1 |
  grep -E "^fuzz:|^slow read|panicked at|test result" | sort | uniq -c
