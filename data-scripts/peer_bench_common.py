"""Shared helpers of the peer benchmark scripts (data-scripts/peer_bench_*.py).

Every script accepts `--threads N --repeats R` and prints one JSON object per line with the keys
`group`, `case`, `median_ms`, `note`; `case` is spelled exactly like the medsgm row it is the
peer of, so that `medsgm bench ... --peer-python` can print ratios.
"""
import argparse
import json
import os
import time


def parse_args(description, default_repeats, extra=()):
    """`--threads` (default 2), `--repeats` and the `(flag, default, help)` options in `extra`;
    caps the BLAS/OpenMP pools at --threads."""
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=default_repeats)
    for flag, default, help_text in extra:
        ap.add_argument(flag, default=default, help=help_text)
    args = ap.parse_args()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(args.threads))
    return args


def timings_ms(fn, repeats, warmup=1):
    """Sorted wall times (ms) of `repeats` calls of `fn` after `warmup` calls."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(max(1, repeats)):
        t = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return ts


def emit(group, case, ts, note):
    """Prints one row: the median of `ts`, its minimum in the note."""
    row = {"group": group, "case": case, "median_ms": ts[len(ts) // 2],
           "note": f"min {ts[0]:.3f} ms; {note}"}
    print(json.dumps(row, ensure_ascii=False), flush=True)
