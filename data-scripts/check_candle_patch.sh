#!/usr/bin/env bash
# Checks that third_party/candle-core is exactly the crates.io release 0.11.1 plus
# third_party/candle-core.patch (issue 18: the vendored tree must stay reviewable). Fetches the
# published .crate from the crates.io registry (sha256-pinned, cached under .cache/crates),
# applies the patch to a scratch copy and compares the trees; any other difference fails.
#
# Usage: data-scripts/check_candle_patch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.11.1
sha=d11c8be87cfbaef9ebb62fb3f850d1fc8e00cc1d11d393fdbe55a4d5c2cdb325
cache=.cache/crates
crate="$cache/candle-core-$version.crate"
mkdir -p "$cache"
if ! { [ -f "$crate" ] && echo "$sha  $crate" | sha256sum -c --status; }; then
  curl -sSfL -o "$crate.tmp" "https://static.crates.io/crates/candle-core/candle-core-$version.crate"
  if ! echo "$sha  $crate.tmp" | sha256sum -c --status; then
    echo "error: sha256 mismatch for candle-core-$version.crate" >&2
    rm -f "$crate.tmp"; exit 1
  fi
  mv "$crate.tmp" "$crate"
fi
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
tar xzf "$crate" -C "$tmp"
( cd "$tmp/candle-core-$version" && patch -s -p1 < "$OLDPWD/third_party/candle-core.patch" )
if ! diff -r "$tmp/candle-core-$version" third_party/candle-core; then
  echo "error: third_party/candle-core differs from candle-core $version + third_party/candle-core.patch" >&2
  exit 1
fi
echo "third_party/candle-core = candle-core $version + candle-core.patch"
