"""Benchmark of the feature pipeline on the real GOOG level-10 LOBSTER day (147,916 events).

Measures (best of ``--repeat`` timings each, after a warm-up so numba compile time is excluded; the on-disk
numba cache makes later processes start warm too):

1. per stage: input conversion (polars ``book``/``events``/``trades`` -> numpy arrays), the tick kernel, the
   1 s bar kernel, the fused tick + 1 s bar kernel (what the pipeline runs), output frame construction and
   labels;
2. event-level features = every ``features_tick`` column (40, incl. OFI L1..L10, mid, spread, microprice)
   + ``features_1s``, vs a vectorized pandas implementation of a *subset* of that scope (mid, spread,
   microprice, OFI L1..L10 as one column operation per level, 1-second bars of those): both from their
   natural in-memory input (ours: prepared arrays; pandas: a pandas frame) and both from the same polars
   frames (input conversion included: ours ``prepare_inputs``, pandas ``to_pandas``);
2'. the core feature set (:mod:`flowsense.features.core`) = exactly the pandas baseline's scope (mid, spread,
   microprice, OFI L1..L10 per event, 1 s bars of OFI sums, first/last mid, mean spread, last microprice;
   values identical to the full set's columns of the same names), vs the same pandas baseline in the same
   run: from the polars book frame (``compute_core``, incl. input conversion; pandas incl. ``to_pandas``)
   and from prepared arrays (pandas from a pandas frame), plus the kernel alone;
3. the whole feature set (``compute_day`` with the 1 s clock: 40 tick + 62 bar features + labels), with and
   without input conversion;
4. the streaming path (``StreamingFeatureEngine`` with the 1 s clock): per-event cost measured around each
   ``update`` call with ``time.perf_counter_ns`` (mean, p50, p99, max in microseconds).

Prints a table and, as the last line of stdout, the numbers as JSON.

    .venv/bin/python bench/features.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from flowsense.data.lobster import read_lobster
from flowsense.features.bars import BarParams, bar_columns, bar_frame, bar_matrices, parse_clock
from flowsense.features.core import compute_core, core_arrays, core_columns, core_frames, core_matrices
from flowsense.features.labels import compute_labels, labels_frame
from flowsense.features.pipeline import compute_day, compute_features, compute_tables, feature_matrices
from flowsense.features.streaming import StreamingFeatureEngine
from flowsense.features.tick import TickParams, prepare_inputs, tick_frame, tick_matrix

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "lobster_2012-06-21"
ZIP = DATA / "LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"


def best_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def pandas_event_features(bk: pd.DataFrame, levels: int, bars: bool = True) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Vectorized pandas baseline: one column operation per level, no Python loop over rows."""
    out = pd.DataFrame(index=bk.index)
    a1, b1 = bk["ask_px_1"], bk["bid_px_1"]
    as1, bs1 = bk["ask_sz_1"].fillna(0), bk["bid_sz_1"].fillna(0)
    out["mid"] = (a1 + b1) / 2
    out["spread"] = a1 - b1
    out["microprice"] = (b1 * as1 + a1 * bs1) / (as1 + bs1)
    for k in range(1, levels + 1):
        ap = bk[f"ask_px_{k}"].fillna(np.inf)
        bp = bk[f"bid_px_{k}"].fillna(-np.inf)
        asz = bk[f"ask_sz_{k}"].fillna(0)
        bsz = bk[f"bid_sz_{k}"].fillna(0)
        pap, pbp, pas, pbs = ap.shift(1), bp.shift(1), asz.shift(1), bsz.shift(1)
        e = (
            bsz.where(bp >= pbp, 0.0) - pbs.where(bp <= pbp, 0.0)
            - asz.where(ap <= pap, 0.0) + pas.where(ap >= pap, 0.0)
        )
        e.iloc[0] = 0.0
        out[f"ofi_l{k}"] = e
    out["ts"] = bk["ts"]
    if not bars:
        return out, None
    g = out.groupby(out["ts"].dt.floor("1s"))
    agg = {f"ofi_l{k}": "sum" for k in range(1, levels + 1)}
    bar_df = g.agg({**agg, "mid": ["first", "last"], "spread": "mean", "microprice": "last"})
    return out, bar_df


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--stream-events", type=int, default=0, help="events to stream (0 = the whole day)")
    args = ap.parse_args()
    if not ZIP.exists():
        raise SystemExit(f"benchmark data missing: {ZIP}")
    (day,) = read_lobster(ZIP)
    book, events, trades = day.book, day.events, day.trades
    n = book.height
    L = day.levels
    tp = TickParams().for_levels(L)
    clock = parse_clock("1s")

    bp = BarParams()
    inp = prepare_inputs(book, events, trades)
    mat = tick_matrix(inp, tp)
    fo, io = bar_matrices(inp, mat, tp, clock)

    # ---- stages -------------------------------------------------------------------------------------
    stages: dict[str, Callable[[], object]] = {
        "input conversion (prepare_inputs)": lambda: prepare_inputs(book, events, trades),
        "tick kernel (tick_matrix)": lambda: tick_matrix(inp, tp),
        "1s bar kernel (bar_matrices)": lambda: bar_matrices(inp, mat, tp, clock),
        "fused tick + 1s bar kernel (feature_matrices)": lambda: feature_matrices(inp, tp, [clock], bp),
        "tick frame (tick_frame)": lambda: tick_frame(inp, mat, tp),
        "1s bar frame (bar_frame)": lambda: bar_frame(inp.symbol, inp.date, fo, io, tp),
        "labels from arrays (labels_frame)": lambda: labels_frame(inp.symbol, inp.date, inp.seq, inp.ts, mat[:, 0]),
        "labels from the book frame (compute_labels)": lambda: compute_labels(book),
    }

    def event_excl() -> None:  # event-level features + 1 s bars, from prepared arrays to polars frames
        compute_features(inp, clocks=("1s",))

    def event_incl() -> None:  # the same, from the polars book/events/trades frames
        compute_features(prepare_inputs(book, events, trades), clocks=("1s",))

    def full_excl() -> None:  # all features (tick + 1 s bars) + labels, from prepared arrays
        compute_tables(inp, clocks=("1s",))

    def full_incl() -> None:  # all features + labels from the polars frames (= compute_day)
        compute_day(book, events, trades, clocks=("1s",))

    bk = book.to_pandas()

    def pandas_run() -> None:
        pandas_event_features(bk, L)

    def pandas_tick() -> None:
        pandas_event_features(bk, L, bars=False)

    def pandas_from_polars() -> None:  # same input as ours: the polars frame read from the lake
        pandas_event_features(book.to_pandas(), L)

    def tick_only() -> None:  # event-level only (40 columns, no bars), prepared arrays -> polars frame
        tick_frame(inp, tick_matrix(inp, tp), tp)

    # (a') core feature set: the pandas baseline's scope
    core_in = core_arrays(book)
    core_ts, core_px, core_sz, _ = core_in
    seq_s, ts_s = book["seq"], book["ts"]
    size_1s = int(clock.size)

    def core_incl() -> None:  # polars book frame -> (tick frame, 1 s bar frame)
        compute_core(book, "1s")

    def core_excl() -> None:  # prepared arrays (ts, prices, sizes) -> frames
        core_frames(seq_s, ts_s, *core_matrices(core_ts, core_px, core_sz, size_1s))

    def core_kernel() -> None:  # arrays -> arrays
        core_matrices(core_ts, core_px, core_sz, size_1s)

    full_incl()  # warm-up (numba cache load / compile)
    core_incl()
    event_excl()
    pandas_run()
    t_stage = {k: best_of(f, args.repeat) for k, f in stages.items()}
    t_full = best_of(full_incl, args.repeat)
    t_full_x = best_of(full_excl, args.repeat)
    t_event = best_of(event_incl, args.repeat)
    t_event_x = best_of(event_excl, args.repeat)
    t_kernel = t_stage["fused tick + 1s bar kernel (feature_matrices)"]
    t_pandas = best_of(pandas_run, args.repeat)
    t_tick = best_of(tick_only, args.repeat)
    t_pandas_tick = best_of(pandas_tick, args.repeat)
    t_pandas_conv = best_of(pandas_from_polars, args.repeat)
    t_core = best_of(core_incl, args.repeat)
    t_core_x = best_of(core_excl, args.repeat)
    t_core_k = best_of(core_kernel, args.repeat)
    t_core_conv = best_of(lambda: core_arrays(book), args.repeat)

    # streaming, per event
    m = args.stream_events or n
    ts = inp.ts[:m].tolist()
    seq = inp.seq[:m].tolist()
    et = inp.etype[:m].tolist()
    sz = inp.size[:m].tolist()
    px = inp.price[:m].tolist()
    ag = inp.agg[:m].tolist()
    rows = [np.ascontiguousarray(inp.book[i]) for i in range(m)]
    warm = StreamingFeatureEngine(levels=L, clocks=("1s",))
    for i in range(min(m, 1000)):
        warm.update(ts[i], seq[i], et[i], sz[i], px[i], ag[i], rows[i])
    best_lat: np.ndarray | None = None
    pc = time.perf_counter_ns
    for _ in range(2):
        eng = StreamingFeatureEngine(levels=L, clocks=("1s",))
        upd = eng.update
        lat = np.empty(m, dtype=np.int64)
        gc.collect()
        gc.disable()
        try:
            for i in range(m):
                t0 = pc()
                upd(ts[i], seq[i], et[i], sz[i], px[i], ag[i], rows[i])
                lat[i] = pc() - t0
        finally:
            gc.enable()
        if best_lat is None or np.percentile(lat, 99) < np.percentile(best_lat, 99):
            best_lat = lat
    assert best_lat is not None
    lat_us = best_lat / 1e3

    def eps(t: float) -> str:
        return f"{t * 1e3:7.1f} ms = {n / t / 1e6:6.2f} M ev/s"

    res = {
        "events": n,
        "levels": L,
        "stages_ms": {k: round(v * 1e3, 2) for k, v in t_stage.items()},
        "full_seconds": round(t_full, 4),
        "full_events_per_s": round(n / t_full),
        "full_excl_conversion_seconds": round(t_full_x, 4),
        "full_excl_conversion_events_per_s": round(n / t_full_x),
        "event_level_seconds": round(t_event, 4),
        "event_level_events_per_s": round(n / t_event),
        "event_level_excl_conversion_seconds": round(t_event_x, 4),
        "event_level_excl_conversion_events_per_s": round(n / t_event_x),
        "kernel_seconds": round(t_kernel, 4),
        "kernel_events_per_s": round(n / t_kernel),
        "pandas_seconds": round(t_pandas, 4),
        "pandas_events_per_s": round(n / t_pandas),
        "pandas_incl_to_pandas_seconds": round(t_pandas_conv, 4),
        "speedup_vs_pandas": round(t_pandas_conv / t_event, 2),
        "speedup_vs_pandas_excl_conversion": round(t_pandas / t_event_x, 2),
        "speedup_kernel_vs_pandas": round(t_pandas / t_kernel, 2),
        "core_seconds": round(t_core, 4),
        "core_events_per_s": round(n / t_core),
        "core_excl_conversion_seconds": round(t_core_x, 4),
        "core_excl_conversion_events_per_s": round(n / t_core_x),
        "core_kernel_seconds": round(t_core_k, 4),
        "core_input_conversion_seconds": round(t_core_conv, 4),
        "core_speedup_vs_pandas": round(t_pandas_conv / t_core, 2),
        "core_speedup_vs_pandas_excl_conversion": round(t_pandas / t_core_x, 2),
        "core_speedup_kernel_vs_pandas": round(t_pandas / t_core_k, 2),
        "tick_only_seconds": round(t_tick, 4),
        "pandas_tick_only_seconds": round(t_pandas_tick, 4),
        "speedup_tick_only": round(t_pandas_tick / t_tick, 2),
        "stream_events": m,
        "stream_mean_us": round(float(lat_us.mean()), 3),
        "stream_p50_us": round(float(np.percentile(lat_us, 50)), 3),
        "stream_p99_us": round(float(np.percentile(lat_us, 99)), 3),
        "stream_max_us": round(float(lat_us.max()), 1),
        "tick_features": len(tp.columns()),
        "bar_features": len(bar_columns(tp, bp)),
        "python": platform.python_version(),
        "polars": pl.__version__,
        "pandas": pd.__version__,
    }
    from rich.console import Console
    from rich.table import Table

    con = Console(width=140)
    st = Table(title=f"Stages, best of {args.repeat} (prepared arrays unless noted)")
    st.add_column("stage")
    st.add_column("time", justify="right")
    for k, v in t_stage.items():
        st.add_row(k, eps(v))
    con.print(st)
    nf = len(tp.columns()) + len(bar_columns(tp, bp))
    t = Table(title=f"FlowSense features - GOOG 2012-06-21 level {L}, {n:,} events (best of {args.repeat})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_row(f"(a) event-level: {len(tp.columns())} tick cols + 1s bars, polars frames in -> frames out",
              eps(t_event))
    t.add_row("    pandas baseline (13 cols + 1s bars) incl. polars->pandas conversion", eps(t_pandas_conv))
    t.add_row("    ratio incl. input conversion (goal >= 10x)", f"{t_pandas_conv / t_event:.1f}x")
    t.add_row("(a) event-level, excl. input conversion: prepared arrays -> frames", eps(t_event_x))
    t.add_row("    pandas baseline from a pandas frame (no conversion)", eps(t_pandas))
    t.add_row("    ratio excl. input conversion", f"{t_pandas / t_event_x:.1f}x")
    t.add_row("    kernel only (fused tick + 1s bars, arrays -> arrays)",
              f"{eps(t_kernel)} ({t_pandas / t_kernel:.1f}x)")
    t.add_row("    tick only: ours (40 cols, arrays -> frame) / pandas (13 cols)",
              f"{t_tick * 1e3:.1f} / {t_pandas_tick * 1e3:.1f} ms = {t_pandas_tick / t_tick:.1f}x")
    nc = len(core_columns(L))
    t.add_row(f"(a') core feature set (same scope as the pandas baseline: {nc} tick cols + 1s bars), "
              "polars book frame in -> frames out (compute_core)", eps(t_core))
    t.add_row("    pandas baseline incl. polars->pandas conversion", eps(t_pandas_conv))
    t.add_row("    ratio incl. input conversion (goal >= 10x)", f"{t_pandas_conv / t_core:.1f}x")
    t.add_row("(a') core, excl. input conversion: prepared arrays -> frames", eps(t_core_x))
    t.add_row("    pandas baseline from a pandas frame (no conversion)", eps(t_pandas))
    t.add_row("    ratio excl. input conversion", f"{t_pandas / t_core_x:.1f}x")
    t.add_row("    ratio: compute_core (incl. conversion) vs pandas from a pandas frame", f"{t_pandas / t_core:.1f}x")
    t.add_row("    core kernel only (arrays -> arrays) / input conversion (core_arrays)",
              f"{t_core_k * 1e3:.1f} / {t_core_conv * 1e3:.1f} ms ({t_pandas / t_core_k:.1f}x)")
    t.add_row(f"(b) whole feature set ({nf} features + labels), incl. input conversion (compute_day)",
              eps(t_full))
    t.add_row(f"(b) whole feature set ({nf} features + labels), excl. input conversion", eps(t_full_x))
    t.add_row("(c) streaming per event: mean / p50", f"{res['stream_mean_us']:.2f} / {res['stream_p50_us']:.2f} us")
    t.add_row("(c) streaming per event: p99 (goal <= 20 us) / max",
              f"{res['stream_p99_us']:.2f} / {res['stream_max_us']:.0f} us")
    con.print(t)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
