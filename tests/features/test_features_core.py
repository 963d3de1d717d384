"""Core feature set (``flowsense.features.core``): hand-computed values on a tiny book, equality with the full
``features_tick`` columns of the same names (bit for bit) and with the pandas baseline's 1 s bars (1e-9
relative) on the real GOOG day, streaming == batch bit for bit, chained batch passes, and no lookahead."""

from __future__ import annotations

import importlib.util
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowsense.data.lobster import read_lobster
from flowsense.data.schemas import book_level_columns
from flowsense.features.core import (
    CoreFeatureEngine,
    compute_core,
    core_arrays,
    core_bar_columns,
    core_batch,
    core_columns,
    core_matrices,
    core_state,
)
from flowsense.features.tick import TickParams, prepare_inputs, tick_columns, tick_matrix
from tests.conftest import REPO, lobster_zip

S = 1_000_000_000
NAN = float("nan")


def _bench_module():
    """``bench/features.py`` (the pandas baseline lives there), loaded by path."""
    spec = importlib.util.spec_from_file_location("_bench_features", Path(REPO) / "bench" / "features.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _book(rows: list[list[float]], ts: list[int], levels: int) -> pl.DataFrame:
    """A canonical book frame (prices Float64, sizes Int64, null for an empty level)."""
    cols = book_level_columns(levels)
    data: dict[str, object] = {
        "ts": pl.Series(ts, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        "symbol": ["TEST"] * len(ts),
        "date": [date(2012, 6, 21)] * len(ts),
        "seq": list(range(len(ts))),
    }
    for j, c in enumerate(cols):
        vals = [None if r[j] != r[j] else r[j] for r in rows]
        if "_px_" in c:
            data[c] = pl.Series(c, vals, dtype=pl.Float64)
        else:
            data[c] = pl.Series(c, [None if v is None else int(v) for v in vals], dtype=pl.Int64)
    return pl.DataFrame(data)


# ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ask_px_2, ask_sz_2, bid_px_2, bid_sz_2
TINY_ROWS = [
    [10.02, 100, 10.00, 200, 10.03, 50, 9.99, 300],  # t=0.2 s
    [10.02, 100, 10.00, 250, 10.03, 50, 9.99, 300],  # t=0.7 s: bid 1 size +50
    [10.01, 30, 10.00, 250, 10.02, 100, 9.99, 300],  # t=1.1 s: new best ask 10.01 x 30, old best ask -> level 2
    [10.01, 30, 10.00, 250, 10.02, 100, NAN, 0],  # t=1.5 s: bid level 2 empties
    [NAN, 0, 10.00, 250, NAN, 0, NAN, 0],  # t=1.9 s: ask side empty (mid, spread, microprice NaN)
    [10.01, 30, 10.00, 250, 10.02, 100, NAN, 0],  # t=3.05 s: asks back (second 2 has no event: no bar)
]
TINY_TS = [int(0.2 * S), int(0.7 * S), int(1.1 * S), int(1.5 * S), int(1.9 * S), int(3.05 * S)]


def _expected_tiny() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    def top(a1: float, as1: float, b1: float, bs1: float) -> list[float]:
        return [0.5 * (a1 + b1), a1 - b1, (b1 * as1 + a1 * bs1) / (as1 + bs1)]

    tick = np.array([
        [*top(10.02, 100, 10.00, 200), 0.0, 0.0],
        [*top(10.02, 100, 10.00, 250), 50.0, 0.0],
        [*top(10.01, 30, 10.00, 250), -30.0, -100.0],  # ask 1 moved in: -30; ask 2 moved in: -100
        [*top(10.01, 30, 10.00, 250), 0.0, -300.0],  # bid 2 vanished: -300
        [NAN, NAN, NAN, 30.0, 100.0],  # asks vanished: +previous sizes
        [*top(10.01, 30, 10.00, 250), -30.0, -100.0],  # asks reappear: -sizes
    ])
    starts = np.array([0, S, 3 * S], dtype=np.int64)
    m1 = 0.5 * (10.01 + 10.00)
    bars = np.array([
        [50.0, 0.0, 0.5 * (10.02 + 10.00), 0.5 * (10.02 + 10.00), 10.02 - 10.00, tick[1, 2]],
        [0.0, -300.0, m1, m1, ((10.01 - 10.00) + (10.01 - 10.00)) / 2, tick[3, 2]],  # NaNs skipped
        [-30.0, -100.0, m1, m1, 10.01 - 10.00, tick[5, 2]],
    ])
    return tick, starts, bars


def test_core_tiny_book_hand_computed() -> None:
    book = _book(TINY_ROWS, TINY_TS, 2)
    tf, bf = compute_core(book)
    assert tf.columns == ["seq", "ts", *core_columns(2)]
    assert bf.columns == ["bar_start", *core_bar_columns(2)]
    assert core_columns(2) == ["mid", "spread", "microprice", "ofi_l1", "ofi_l2"]
    assert core_bar_columns(2) == ["ofi_l1", "ofi_l2", "mid_first", "mid_last", "spread_mean", "microprice_last"]
    tick, starts, bars = _expected_tiny()
    got = tf.select(core_columns(2)).to_numpy()
    np.testing.assert_allclose(got, tick, rtol=1e-15, atol=0, equal_nan=True)
    np.testing.assert_array_equal(bf["bar_start"].dt.epoch("ns").to_numpy(), starts)
    np.testing.assert_allclose(bf.select(core_bar_columns(2)).to_numpy(), bars, rtol=1e-15, atol=0)
    # the full feature set gives the same values, bit for bit
    inp = prepare_inputs(book)
    tp = TickParams().for_levels(2)
    full = tick_matrix(inp, tp)
    idx = [tick_columns(tp).index(c) for c in core_columns(2)]
    assert np.array_equal(got, full[:, idx], equal_nan=True)
    # and so does the streaming engine (float64 book rows, NaN sizes for empty levels are read as 0)
    eng = CoreFeatureEngine(levels=2)
    live, live_bars = [], []
    for t, r in zip(TINY_TS, TINY_ROWS, strict=True):
        live.append(eng.update(t, np.array(r, dtype=np.float64)).copy())
        if eng.bar is not None:
            live_bars.append((eng.bar.start, eng.bar.values))
    last = eng.finish()
    assert last is not None
    live_bars.append((last.start, last.values))
    assert np.array_equal(np.array(live), got, equal_nan=True)
    assert [s for s, _ in live_bars] == starts.tolist()
    assert np.array_equal(np.array([v for _, v in live_bars]), bf.select(core_bar_columns(2)).to_numpy())


def test_core_rejects_event_clocks() -> None:
    with pytest.raises(ValueError, match="time bars"):
        compute_core(_book(TINY_ROWS, TINY_TS, 2), clock="500ev")


@pytest.fixture(scope="module")
def goog_day():
    (day,) = read_lobster(lobster_zip("GOOG", 10))
    return day


@pytest.mark.real_data
def test_core_tick_equals_full_feature_set(goog_day) -> None:
    tf, _ = compute_core(goog_day.book)
    inp = prepare_inputs(goog_day.book, goog_day.events, goog_day.trades)
    tp = TickParams().for_levels(inp.levels)
    full = tick_matrix(inp, tp)
    cols = tick_columns(tp)
    assert tf.height == full.shape[0] == 147_916
    np.testing.assert_array_equal(tf["seq"].to_numpy(), inp.seq)
    for c in core_columns(inp.levels):
        a = tf[c].to_numpy()
        b = full[:, cols.index(c)]
        assert np.array_equal(a.view(np.int64), b.view(np.int64)), f"{c} differs from features_tick"


@pytest.mark.real_data
def test_core_bars_equal_pandas_baseline(goog_day) -> None:
    bench = _bench_module()
    L = goog_day.levels
    _, pbars = bench.pandas_event_features(goog_day.book.to_pandas(), L)
    _, bf = compute_core(goog_day.book, "1s")
    # the baseline's columns, flattened: (ofi_lk, sum) -> ofi_lk, (mid, first) -> mid_first, ...
    names = [a if b == "sum" else f"{a}_{b}" for a, b in pbars.columns]
    assert names == core_bar_columns(L)
    assert bf.height == len(pbars) > 10_000
    starts = pbars.index.values.astype("datetime64[ns]").astype(np.int64)
    np.testing.assert_array_equal(bf["bar_start"].dt.epoch("ns").to_numpy(), starts)
    ours = bf.select(core_bar_columns(L)).to_numpy()
    theirs = pbars.to_numpy(dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs))
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0, equal_nan=True)


@pytest.mark.real_data
def test_core_streaming_equals_batch(goog_day) -> None:
    ts, px, sz, L = core_arrays(goog_day.book)
    tick, starts, bars = core_matrices(ts, px, sz, S)
    rows = goog_day.book.select(book_level_columns(L)).to_numpy().astype(np.float64)  # LOBSTER order
    eng = CoreFeatureEngine(levels=L)
    live = np.empty_like(tick)
    lb_s, lb_v = [], []
    upd = eng.update
    for i in range(ts.shape[0]):
        live[i] = upd(int(ts[i]), rows[i])
        if eng.bar is not None:
            lb_s.append(eng.bar.start)
            lb_v.append(eng.bar.values)
    last = eng.finish()
    assert last is not None
    lb_s.append(last.start)
    lb_v.append(last.values)
    assert np.array_equal(live, tick, equal_nan=True)  # bit for bit
    assert np.array_equal(np.array(lb_s), starts)
    assert np.array_equal(np.array(lb_v), bars, equal_nan=True)


@pytest.mark.real_data
def test_core_chained_batches_and_engine_handover(goog_day) -> None:
    """Batch passes over consecutive chunks (state carried) == one pass; an engine continues a batch."""
    ts, px, sz, L = core_arrays(goog_day.book)
    tick, starts, bars = core_matrices(ts, px, sz, S)
    n = ts.shape[0]
    fs, ist = core_state(L)
    cuts = [0, 1, 777, 50_000, 50_001, 120_000]
    got_tick = np.empty_like(tick)
    got_s, got_b = [], []
    for a, b in zip(cuts, [*cuts[1:], n], strict=True):
        t = np.empty((b - a, 3 + L), order="F")
        bs = np.empty(b - a + 2, dtype=np.int64)
        bb = np.empty((b - a + 2, L + 4), order="F")
        k = core_batch(fs, ist, np.int64(S), ts[a:b], np.asfortranarray(px[a:b]), np.asfortranarray(sz[a:b]), t, bs,
                       bb, b == n)
        got_tick[a:b] = t
        got_s.append(bs[:k])
        got_b.append(bb[:k])
    assert np.array_equal(got_tick, tick, equal_nan=True)
    assert np.array_equal(np.concatenate(got_s), starts)
    assert np.array_equal(np.concatenate(got_b), bars, equal_nan=True)

    # the live engine picks up the state of a batch pass over the first part of the day
    h = 100_000
    fs, ist = core_state(L)
    t = np.empty((h, 3 + L), order="F")
    bs = np.empty(h + 2, dtype=np.int64)
    bb = np.empty((h + 2, L + 4), order="F")
    k = core_batch(fs, ist, np.int64(S), ts[:h], np.asfortranarray(px[:h]), np.asfortranarray(sz[:h]), t, bs, bb,
                   False)
    eng = CoreFeatureEngine(levels=L)
    eng._f[:] = fs
    eng._i[:] = ist
    rows = goog_day.book.select(book_level_columns(L)).slice(h).to_numpy().astype(np.float64)
    for i in range(n - h):
        out = eng.update(int(ts[h + i]), rows[i])
        assert np.array_equal(out, tick[h + i], equal_nan=True), h + i
        if eng.bar is not None:
            assert eng.bar.start == starts[k]
            assert np.array_equal(eng.bar.values, bars[k], equal_nan=True)
            k += 1
    last = eng.finish()
    assert last is not None and last.start == starts[k] and k + 1 == starts.shape[0]


@pytest.mark.real_data
def test_core_no_lookahead(goog_day) -> None:
    """Truncating the day at event ``h`` leaves every tick row <= h and every bar closed before it unchanged."""
    book = goog_day.book
    tf, bf = compute_core(book)
    for h in (1, 2_000, 73_501):
        tt, bt = compute_core(book.head(h))
        assert tt.equals(tf.head(h))
        # bars that ended before the truncation time are final; the last one of the head is partial
        end = int(tt["ts"].dt.epoch("ns")[-1]) // S * S
        done = bt.filter(pl.col("bar_start").dt.epoch("ns") < end)
        assert done.equals(bf.head(done.height))
        assert bt.height == done.height + 1
