#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ (libFuzzer; DICOM, NIfTI, NPY, measurement, the
# training-folder image reader and `recon` end to end on tiny measurements) one after the
# other, each for a bounded time, and prints a summary: executions, coverage, corpus size and
# any crash / OOM / timeout artifacts (kept under fuzz/artifacts/<target>/). Seed corpora come
# from the repository's fixtures and the real test images (data-scripts/fetch_test_data.sh); the
# growing corpora stay in fuzz/corpus/ (ignored).
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). See docs/fuzzing.md.
#
# Usage: data-scripts/fuzz.sh [SECONDS_PER_TARGET=300] [TARGET ...]
# Env:   FUZZ_RSS_MB (2048), FUZZ_MALLOC_MB (1024), FUZZ_TIMEOUT_S (10): libFuzzer's limits on
#        memory, on one allocation and on one input; NICE (15).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-300}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(dicom_file nifti npy measurement train_image recon)
nice_n="${NICE:-15}"
# Debug assertions (-a) stay on for overflow checks, but the standard library's UB precondition
# checks are off: openjp2 0.6.1 (JPEG 2000) deallocates a null pointer when dropping every
# decoder, which those checks turn into an abort on each J2K input (docs/fuzzing.md, finding 2).
export RUSTFLAGS="${RUSTFLAGS:-} -Zub-checks=no"
[ -d data/real ] && [ -n "$(ls data/real)" ] || bash data-scripts/fetch_test_data.sh data/real

seed() { # seed TARGET FILES...: copy files into the target's corpus (by content hash)
  local t="$1"; shift
  mkdir -p "fuzz/corpus/$t"
  for f in "$@"; do
    [ -f "$f" ] && cp "$f" "fuzz/corpus/$t/$(sha1sum "$f" | cut -c1-40)"
  done
  return 0
}
seed dicom_file data/real/*.dcm tests/fixtures/dicom/*.dcm tests/fixtures/dicom/series/*.dcm \
  tests/fixtures/dicom/fuzz/*.dcm
seed nifti tests/fixtures/nifti/*.nii tests/fixtures/nifti/*.nii.gz tests/fixtures/nifti/fuzz/*
seed npy tests/fixtures/npy/*.npy tests/fixtures/npy/fuzz/*
seed measurement fuzz/seeds/measurement/*
seed recon fuzz/seeds/recon/*
seed train_image tests/fixtures/npy/*.npy tests/fixtures/npy/fuzz/*

echo "building the fuzz targets (nightly, AddressSanitizer, debug assertions)"
nice -n "$nice_n" cargo +nightly fuzz build -a
logs=fuzz/logs
mkdir -p "$logs"
summary=()
status=0
for t in "${targets[@]}"; do
  echo "fuzzing $t for ${secs}s"
  mkdir -p "fuzz/artifacts/$t"
  before=$(ls "fuzz/artifacts/$t" | wc -l)
  rc=0
  nice -n "$nice_n" cargo +nightly fuzz run -a "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$secs" -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
    -malloc_limit_mb="${FUZZ_MALLOC_MB:-1024}" -timeout="${FUZZ_TIMEOUT_S:-10}" \
    -print_final_stats=1 >"$logs/$t.log" 2>&1 || rc=$?
  runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$logs/$t.log" | grep -oE '[0-9]+$' | tail -1)
  speed=$(grep -oE 'stat::average_exec_per_sec: *[0-9]+' "$logs/$t.log" | grep -oE '[0-9]+$' | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$logs/$t.log" | tail -1)
  new=$(( $(ls "fuzz/artifacts/$t" | wc -l) - before ))
  kind=$(grep -oE 'ERROR: libFuzzer: [a-z-]+|ERROR: AddressSanitizer: [a-z-]+|panicked at [^:]+' "$logs/$t.log" | head -1 || true)
  [ "$rc" -eq 0 ] || status=1
  summary+=("$(printf '%-12s rc=%-3s execs=%-9s exec/s=%-6s %-30s new artifacts=%s %s' \
    "$t" "$rc" "${runs:-?}" "${speed:-?}" "${cov:-}" "$new" "${kind:-}")")
done
echo
echo "summary (${secs}s per target; logs in $logs/, artifacts in fuzz/artifacts/):"
printf '%s\n' "${summary[@]}"
exit "$status"
