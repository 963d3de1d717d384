"""Streaming (live) feature engines: the batch kernels, one event at a time.

The engines own the state arrays and call the very same ``@njit`` step functions as the batch pass
(:func:`~flowsense.features.kernels.tick_step`, :func:`~flowsense.features.kernels.bar_event`), so a
replay of a day through :class:`StreamingFeatureEngine` reproduces ``features_tick`` and every
``features_<clock>`` table bit for bit (tested in ``tests/features/test_features_streaming.py``).

Input per event (the "wire format"): ``ts`` (int ns UTC), ``seq``, event type code (``ET_*``, see
:func:`flowsense.features.tick.event_code`), event size, event price, aggressor side of a trade
(+1/-1/0) and the book row after the event in LOBSTER order (``ask_px_1, ask_sz_1, bid_px_1, bid_sz_1,
...``; float64, NaN price for an empty level).

Example::

    eng = StreamingFeatureEngine(levels=10, clocks=("1s",))
    for ev in feed:
        tick, bars = eng.update(ev.ts, ev.seq, ev.code, ev.size, ev.price, ev.agg, ev.book_row)
        for clock, frows, irows in bars:   # bars closed by this event (usually none)
            ...
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from flowsense.features import kernels as K
from flowsense.features.bars import BarParams, Clock, bar_columns, parse_clock
from flowsense.features.tick import TickParams, event_code, tick_columns


@njit(cache=True)
def stream_step(tf, ti, tp, ts, seq, etype, size, price, agg, row, tout, bf, bi, bp, fout, iout, counts):
    """One event through the tick step and every bar clock. Returns the number of bars emitted, or -needed when a time clock
    would emit more bars than the output buffers hold (nothing is changed then; grow and call again)."""
    nc = bf.shape[0]
    cap = fout.shape[1]
    need = 0
    for c in range(nc):
        m = K.bar_pending(bi[c], bp[c], ts) + 1
        if m > need:
            need = m
    if need > cap:
        return -need
    K.tick_step(tf, ti, tp, ts, etype, size, price, agg, row, tout)
    tot = 0
    for c in range(nc):
        counts[c] = K.bar_event(bf[c], bi[c], bp[c], ts, seq, etype, size, price, agg, tout, fout[c], iout[c], np.int64(0))
        tot += counts[c]
    return tot


@njit(cache=True)
def stream_close(bf, bi, bp, now, flush, fout, iout, counts):
    """Close bars without an event: ``flush`` = end of data (each clock's open bar, partial), else a heartbeat
    at ``now`` (time bars that ended). One compiled function for both (returns -needed when the buffers
    are too small for a heartbeat; nothing is changed then)."""
    if flush:
        for c in range(bf.shape[0]):
            counts[c] = K.bar_flush(bf[c], bi[c], bp[c], fout[c], iout[c], np.int64(0))
        return 0
    need = 0
    for c in range(bf.shape[0]):
        m = K.bar_pending(bi[c], bp[c], now)
        if m > need:
            need = m
    if need > fout.shape[1]:
        return -need
    for c in range(bf.shape[0]):
        counts[c] = K.bar_roll(bf[c], bi[c], bp[c], now, fout[c], iout[c], np.int64(0))
    return 0


class TickFeatureEngine:
    """Event-level features, one event at a time (``features_tick`` row per :meth:`update`)."""

    def __init__(self, levels: int = 10, params: TickParams | None = None) -> None:
        self.params = (params or TickParams()).for_levels(levels)
        self._p = self.params.array()
        self._f, self._i = self.params.new_state()
        self.columns = tick_columns(self.params)
        self._out = np.zeros(len(self.columns))

    def update(self, ts: int, etype: int, size: float, price: float, agg: float, book_row: np.ndarray) -> np.ndarray:
        """Feed one event; returns the feature row (an internal buffer, overwritten by the next call)."""
        if not book_row.flags.c_contiguous:  # one compiled specialization (contiguous rows), as the batch pass
            book_row = np.ascontiguousarray(book_row)
        K.tick_step(self._f, self._i, self._p, ts, etype, size, price, agg, book_row, self._out)
        return self._out

    def update_event(self, ts: int, event_type: str, side: int | None, size: float, price: float,
                     book_row: np.ndarray, aggressor: int | None = None) -> np.ndarray:
        """Convenience form with a canonical event type name; the aggressor of an execution defaults to
        the opposite of the resting order's ``side`` (LOBSTER convention), 0 for crosses."""
        code = event_code(event_type)
        if aggressor is None:
            aggressor = -(side or 0) if code == K.ET_TRADE and event_type != "cross" else 0
        return self.update(ts, code, float(size or 0), float(price) if price is not None else np.nan,
                           float(aggressor), np.asarray(book_row, dtype=np.float64))

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.columns, self._out.tolist(), strict=True))


class BarFeatureEngine:
    """Bars of one clock from tick feature rows; :meth:`update` returns the bars the event closed."""

    def __init__(self, clock: str | Clock, tick_params: TickParams, params: BarParams | None = None,
                 capacity: int = 64) -> None:
        self.clock = parse_clock(clock) if isinstance(clock, str) else clock
        self.tick_params = tick_params
        self.params = params or BarParams()
        self._p = self.params.array(self.clock, tick_params)
        self._f, self._i = self.params.new_state(self.clock, tick_params)
        self.columns = bar_columns(tick_params, self.params)
        self._alloc(capacity)

    def _alloc(self, cap: int) -> None:
        self._fout = np.zeros((cap, len(self.columns)))
        self._iout = np.zeros((cap, K.IO_N), dtype=np.int64)

    def update(self, ts: int, seq: int, etype: int, size: float, price: float, agg: float,
               tick_row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Returns (float rows, int rows [start, end, first_seq, last_seq, n_events, partial]) closed by
        this event (views into internal buffers, valid until the next call; usually 0 rows)."""
        need = K.bar_pending(self._i, self._p, ts) + 1
        if need > self._fout.shape[0]:
            self._alloc(2 * need)
        if not tick_row.flags.c_contiguous:
            tick_row = np.ascontiguousarray(tick_row)
        k = K.bar_event(self._f, self._i, self._p, ts, seq, etype, size, price, agg, tick_row,
                        self._fout, self._iout, 0)
        return self._fout[:k], self._iout[:k]

    def heartbeat(self, now: int) -> tuple[np.ndarray, np.ndarray]:
        """Close time bars that ended at or before ``now`` without waiting for the next event."""
        need = K.bar_pending(self._i, self._p, now)
        if need > self._fout.shape[0]:
            self._alloc(2 * need)
        k = K.bar_roll(self._f, self._i, self._p, now, self._fout, self._iout, 0)
        return self._fout[:k], self._iout[:k]

    def finish(self) -> tuple[np.ndarray, np.ndarray]:
        """End of data: emit the open bar as partial."""
        k = K.bar_flush(self._f, self._i, self._p, self._fout, self._iout, 0)
        return self._fout[:k], self._iout[:k]


class StreamingFeatureEngine:
    """Tick features plus bars at several clocks, one ``@njit`` dispatch per event."""

    def __init__(self, levels: int = 10, clocks: Sequence[str] = ("1s",), tick_params: TickParams | None = None,
                 bar_params: BarParams | None = None, capacity: int = 64) -> None:
        self.tick_params = (tick_params or TickParams()).for_levels(levels)
        self.bar_params = bar_params or BarParams()
        self.clocks = [parse_clock(c) for c in clocks]
        self.tick_columns = tick_columns(self.tick_params)
        self.bar_columns = bar_columns(self.tick_params, self.bar_params)
        self._tp = self.tick_params.array()
        self._tf, self._ti = self.tick_params.new_state()
        self._tout = np.zeros(len(self.tick_columns))
        nc = max(1, len(self.clocks))
        arrays = [self.bar_params.array(c, self.tick_params) for c in self.clocks]
        sizes = [K.bar_state_sizes(a) for a in arrays]
        nf = max([s[0] for s in sizes], default=1)
        self._bp = np.zeros((len(self.clocks), K.BP_NPAR))
        self._bf = np.zeros((len(self.clocks), nf))
        self._bi = np.zeros((len(self.clocks), K.BI_HDR), dtype=np.int64)
        for c, a in enumerate(arrays):
            self._bp[c] = a
        self._counts = np.zeros(nc, dtype=np.int64)
        self._alloc(capacity)

    def _alloc(self, cap: int) -> None:
        self._fout = np.zeros((len(self.clocks), cap, len(self.bar_columns)))
        self._iout = np.zeros((len(self.clocks), cap, K.IO_N), dtype=np.int64)

    def _emitted(self) -> list[tuple[Clock, np.ndarray, np.ndarray]]:
        counts = self._counts
        out = []
        for c, clock in enumerate(self.clocks):
            k = counts[c]
            if k:
                out.append((clock, self._fout[c, :k], self._iout[c, :k]))
        return out

    def update(self, ts: int, seq: int, etype: int, size: float, price: float, agg: float,
               book_row: np.ndarray) -> tuple[np.ndarray, list[tuple[Clock, np.ndarray, np.ndarray]]]:
        """Feed one event. Returns (tick feature row, [(clock, float rows, int rows) for closed bars]);
        the arrays are internal buffers, valid until the next call."""
        if not book_row.flags.c_contiguous:  # one compiled specialization (contiguous rows), as the batch pass
            book_row = np.ascontiguousarray(book_row)
        r = stream_step(self._tf, self._ti, self._tp, ts, seq, etype, size, price, agg, book_row, self._tout,
                        self._bf, self._bi, self._bp, self._fout, self._iout, self._counts)
        if r < 0:
            self._alloc(-2 * r)
            r = stream_step(self._tf, self._ti, self._tp, ts, seq, etype, size, price, agg, book_row, self._tout,
                            self._bf, self._bi, self._bp, self._fout, self._iout, self._counts)
        if r:
            return self._tout, self._emitted()
        return self._tout, []

    def heartbeat(self, now: int) -> list[tuple[Clock, np.ndarray, np.ndarray]]:
        r = stream_close(self._bf, self._bi, self._bp, now, False, self._fout, self._iout, self._counts)
        if r < 0:
            self._alloc(-2 * r)
            stream_close(self._bf, self._bi, self._bp, now, False, self._fout, self._iout, self._counts)
        return self._emitted()

    def finish(self) -> list[tuple[Clock, np.ndarray, np.ndarray]]:
        """End of data: emit each clock's open bar (partial)."""
        stream_close(self._bf, self._bi, self._bp, np.int64(0), True, self._fout, self._iout, self._counts)
        return self._emitted()
