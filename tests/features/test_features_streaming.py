"""Batch == streaming: a real LOBSTER day replayed event by event through the live engines reproduces the
batch ``features_tick`` and bar tables (every column, NaNs in the same places)."""

from __future__ import annotations

import numpy as np
import pytest

from flowsense.data.lobster import read_lobster
from flowsense.features.bars import BarParams, bar_columns, bar_matrices, parse_clock
from flowsense.features.streaming import BarFeatureEngine, StreamingFeatureEngine, TickFeatureEngine
from flowsense.features.tick import EventArrays, TickParams, prepare_inputs, tick_matrix
from tests.conftest import lobster_zip

CLOCKS = ("1s", "1min", "500ev", "10000vol")
RTOL = 1e-9


@pytest.fixture(scope="module")
def goog10() -> EventArrays:
    (day,) = read_lobster(lobster_zip("GOOG", 10))
    return prepare_inputs(day.book, day.events, day.trades)


def _close(a: np.ndarray, b: np.ndarray, what: str) -> None:
    assert a.shape == b.shape, (what, a.shape, b.shape)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{what}: NaN positions differ")
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=0, equal_nan=True, err_msg=what)


@pytest.mark.real_data
def test_streaming_replay_equals_batch(goog10: EventArrays) -> None:
    inp = goog10
    tp = TickParams().for_levels(inp.levels)
    batch_tick = tick_matrix(inp, tp)
    eng = StreamingFeatureEngine(levels=inp.levels, clocks=CLOCKS)
    live_tick = np.empty_like(batch_tick)
    bars: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {c: [] for c in CLOCKS}
    ts, seq, et, sz, px, agg, book = inp.ts, inp.seq, inp.etype, inp.size, inp.price, inp.agg, inp.book
    for i in range(len(inp)):
        row, closed = eng.update(int(ts[i]), int(seq[i]), int(et[i]), float(sz[i]), float(px[i]), float(agg[i]),
                                 book[i])
        live_tick[i] = row
        for clock, f, n in closed:
            bars[clock.name].append((f.copy(), n.copy()))
    for clock, f, n in eng.finish():
        bars[clock.name].append((f.copy(), n.copy()))

    _close(live_tick, batch_tick, "features_tick")
    assert np.array_equal(live_tick, batch_tick, equal_nan=True)  # in fact bit-identical
    for c in CLOCKS:
        fb, ib = bar_matrices(inp, batch_tick, tp, parse_clock(c))
        fl = np.concatenate([f for f, _ in bars[c]])
        il = np.concatenate([n for _, n in bars[c]])
        assert fb.shape[0] > 50, c
        np.testing.assert_array_equal(il, ib, err_msg=f"features_{c} keys")
        _close(fl, fb, f"features_{c}")
        assert fb.shape[1] == len(bar_columns(tp, BarParams()))


@pytest.mark.real_data
def test_tick_and_bar_engines_with_heartbeats(goog10: EventArrays) -> None:
    """The single-clock engines (and heartbeats closing time bars between events) give the batch rows."""
    inp = goog10
    n = 30_000
    part = inp.head(n)
    tp = TickParams().for_levels(part.levels)
    batch_tick = tick_matrix(part, tp)
    fb, ib = bar_matrices(part, batch_tick, tp, parse_clock("100ms"))
    tick_eng = TickFeatureEngine(part.levels)
    bar_eng = BarFeatureEngine("100ms", tick_eng.params)
    rows_f, rows_i = [], []
    for i in range(n):
        t = int(part.ts[i])
        if i and t - int(part.ts[i - 1]) > 250_000_000:  # a quiet spell: close bars by the clock
            f, k = bar_eng.heartbeat(t - 1)
            rows_f.append(f.copy())
            rows_i.append(k.copy())
        out = tick_eng.update(t, int(part.etype[i]), float(part.size[i]), float(part.price[i]), float(part.agg[i]),
                              part.book[i])
        assert np.array_equal(out, batch_tick[i], equal_nan=True), i
        f, k = bar_eng.update(t, int(part.seq[i]), int(part.etype[i]), float(part.size[i]), float(part.price[i]),
                              float(part.agg[i]), out)
        rows_f.append(f.copy())
        rows_i.append(k.copy())
    f, k = bar_eng.finish()
    rows_f.append(f.copy())
    rows_i.append(k.copy())
    np.testing.assert_array_equal(np.concatenate(rows_i), ib)
    _close(np.concatenate(rows_f), fb, "features_100ms")


def test_streaming_event_convenience_matches_codes() -> None:
    """``update_event`` (names, LOBSTER aggressor convention) equals ``update`` with codes."""
    row = np.array([10.02, 200, 10.00, 100], dtype=np.float64)
    a, b = TickFeatureEngine(1), TickFeatureEngine(1)
    ra = a.update_event(1_000, "add", 1, 100, 10.00, row).copy()
    rb = b.update(1_000, 1, 100.0, 10.00, 0.0, row).copy()
    assert np.array_equal(ra, rb, equal_nan=True)
    ra = a.update_event(2_000, "execute_visible", 1, 50, 10.00, row).copy()
    rb = b.update(2_000, 3, 50.0, 10.00, -1.0, row).copy()
    assert np.array_equal(ra, rb, equal_nan=True)
    assert a.as_dict()["signed_volume"] == -50.0
