"""Ingestion benchmark: the GOOG level-10 LOBSTER zip, end to end, against two baselines in one run.

* FlowSense ``ingest_file``: unzip, strict parse, convert (UTC ns, dollars, null levels), validate
  (including the per-row book-transition check), write three Parquet tables + sidecar atomically.
* ``pandas.read_csv`` of the same two members (from the zip).
* bare ``polars.read_csv`` of the same two members (from the zip): the parse limit.

Usage: ``python bench/ingest.py [--repeat 5] [--zip PATH]``. Prints a table and a final JSON line.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import polars as pl

from flowsense.data.ingest import ingest_file, read_file
from flowsense.data.lake import Lake
from flowsense.data.validate import validate_day

DEFAULT_ZIP = (
    Path(__file__).resolve().parents[2] / "shared/data/lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
)


def best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--zip", type=Path, default=DEFAULT_ZIP)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    if not args.zip.exists():
        raise SystemExit(f"benchmark data not found: {args.zip} (needs ../shared/data)")

    with zipfile.ZipFile(args.zip) as zf:
        members = sorted(n for n in zf.namelist() if n.endswith(".csv"))
    msg_member = next(m for m in members if "_message_" in m)
    book_member = next(m for m in members if "_orderbook_" in m)

    def unzip() -> tuple[bytes, bytes]:
        with zipfile.ZipFile(args.zip) as zf:
            return zf.read(msg_member), zf.read(book_member)

    def pandas_parse() -> None:
        m, b = unzip()
        pd.read_csv(io.BytesIO(m), header=None)
        pd.read_csv(io.BytesIO(b), header=None)

    def polars_parse() -> None:
        m, b = unzip()
        pl.read_csv(m, has_header=False)
        pl.read_csv(b, has_header=False)

    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-ingest-"))
    lake = Lake(tmp / "lake")

    def flowsense_ingest() -> None:
        ingest_file(args.zip, lake)

    _, days = read_file(args.zip)
    n = days[0].events.height
    flowsense_ingest()  # warm-up: numba compilation of the validation kernel (cached on disk)

    t_fs = best_of(flowsense_ingest, args.repeat)
    t_pl = best_of(polars_parse, args.repeat)
    t_pd = best_of(pandas_parse, max(2, args.repeat // 2))
    # stage breakdown of the FlowSense path
    t_unzip = best_of(unzip, args.repeat)
    t_read = best_of(lambda: read_file(args.zip), args.repeat)
    t_validate = best_of(lambda: validate_day(days[0]), args.repeat)
    t_write = best_of(lambda: lake.write_day(days[0]), args.repeat)

    rows = [
        ("flowsense ingest (end to end)", t_fs),
        ("bare polars.read_csv (parse limit)", t_pl),
        ("pandas.read_csv", t_pd),
        ("  stage: unzip only", t_unzip),
        ("  stage: read+convert (incl. unzip)", t_read),
        ("  stage: validate", t_validate),
        ("  stage: write parquet x3", t_write),
    ]
    print(f"\nGOOG level-10 LOBSTER day: {n:,} messages, best of {args.repeat}\n")
    print(f"{'path':40s} {'seconds':>9s} {'M msg/s':>9s}")
    for name, t in rows:
        print(f"{name:40s} {t:9.4f} {n / t / 1e6:9.2f}")
    result = {
        "messages": n,
        "flowsense_msgs_per_s": n / t_fs,
        "polars_parse_msgs_per_s": n / t_pl,
        "pandas_msgs_per_s": n / t_pd,
        "speedup_vs_pandas": t_pd / t_fs,
        "slowdown_vs_bare_polars": t_fs / t_pl,
        "stages_s": {name.strip(): t for name, t in rows[3:]},
    }
    print(f"\nflowsense vs pandas.read_csv: {t_pd / t_fs:.2f}x faster; vs bare polars parse: {t_fs / t_pl:.2f}x the time")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
