"""Bar features (``features_<clock>``) at time, event-count or traded-volume clocks.

Clocks (:func:`parse_clock`): ``100ms``, ``1s``, ``10s``, ``1min``, ``5m``, ``1h`` (time bars on the UTC
epoch grid, ``[start, end)``), ``500ev`` (every 500 events), ``10000vol`` (every >= 10,000 traded shares;
the bar closing trade is kept whole, no carry-over). The table of clock ``c`` is ``features_<c>``.

Time bars: every grid bar between the day's first and last event is emitted, empty bars included (their
book values are those of the last event before them, flows are 0), so the clock is regular. A time bar is
closed by the first event at or after its end (or by :meth:`BarFeatureEngine.heartbeat`); event/volume
bars close on the event that completes them. The last bar of the data is emitted by the end-of-data flush
with ``partial = true``; tests and models should drop partial bars.

Bar ``open`` is the mid at the start of the bar (previous bar's close; the first valid mid for the day's
first bar), so ``mid_close - mid_open`` is the mid change over the bar (Cont et al.'s Delta P).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from flowsense.features import kernels as K
from flowsense.features.tick import EventArrays, TickParams

_TIME_UNITS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "min": 60_000_000_000,
               "m": 60_000_000_000, "h": 3_600_000_000_000}
_CLOCK_RE = re.compile(r"^(\d+(?:\.\d+)?)(ns|us|ms|s|min|m|h|ev|events|vol|shares)$")


@dataclass(frozen=True)
class Clock:
    name: str
    mode: int
    size: float  # ns, events or shares

    @property
    def table(self) -> str:
        return f"features_{self.name}"


def parse_clock(spec: str) -> Clock:
    """``"1s"`` -> time clock of 1e9 ns; ``"500ev"`` -> event clock; ``"10000vol"`` -> volume clock."""
    m = _CLOCK_RE.match(spec.strip())
    if not m:
        raise ValueError(f"bad clock {spec!r}: use e.g. 100ms, 1s, 10s, 1min, 500ev, 10000vol")
    val, unit = float(m[1]), m[2]
    if val <= 0:
        raise ValueError(f"clock {spec!r} must be positive")
    if unit in _TIME_UNITS:
        ns = val * _TIME_UNITS[unit]
        if ns != int(ns):
            raise ValueError(f"clock {spec!r} is not a whole number of ns")
        return Clock(spec.strip(), K.MODE_TIME, float(int(ns)))
    if unit in ("ev", "events"):
        return Clock(spec.strip(), K.MODE_EVENTS, float(int(val)))
    return Clock(spec.strip(), K.MODE_VOLUME, val)


@dataclass(frozen=True)
class BarParams:
    """Rolling windows of the bar features, in bars of the clock."""

    ret_horizons: tuple[int, int, int] = (1, 5, 20)
    rv_windows: tuple[int, int] = (20, 60)
    rsi: int = 14
    bb: int = 20
    bb_k: float = 2.0
    er_windows: tuple[int, int] = (10, 30)
    adx: int = 14
    kyle: int = 60

    def array(self, clock: Clock, tp: TickParams) -> np.ndarray:
        p = np.zeros(K.BP_NPAR)
        p[K.BP_MODE] = clock.mode
        p[K.BP_SIZE] = clock.size
        p[K.BP_L] = tp.levels
        p[K.BP_ND] = len(tp.depths)
        p[K.BP_T] = len(tp.columns())
        p[K.BP_R1:K.BP_R1 + 3] = sorted(self.ret_horizons)
        p[K.BP_RV1:K.BP_RV1 + 2] = sorted(self.rv_windows)
        p[K.BP_RSI] = self.rsi
        p[K.BP_BB] = self.bb
        p[K.BP_BBK] = self.bb_k
        p[K.BP_ER1:K.BP_ER1 + 2] = sorted(self.er_windows)
        p[K.BP_ADX] = self.adx
        p[K.BP_KYLE] = self.kyle
        if min(*self.ret_horizons, *self.rv_windows, self.rsi, self.bb, *self.er_windows, self.adx, self.kyle) < 1:
            raise ValueError("bar windows must be >= 1")
        return p

    def new_state(self, clock: Clock, tp: TickParams) -> tuple[np.ndarray, np.ndarray]:
        nf, ni = K.bar_state_sizes(self.array(clock, tp))
        return np.zeros(nf), np.zeros(ni, dtype=np.int64)


def bar_columns(tp: TickParams, bp: BarParams) -> list[str]:
    """Float feature columns of a bar table, in kernel order."""
    L = tp.levels
    r1, r2, r3 = sorted(bp.ret_horizons)
    v1, v2 = sorted(bp.rv_windows)
    e1, e2 = sorted(bp.er_windows)
    cols = ["mid_open", "mid_high", "mid_low", "mid_close", "microprice_close", "micro_dev_close",
            "spread_mean", "spread_close"]
    cols += [f"ofi_l{k}" for k in range(1, L + 1)] + ["ofi_int"]
    cols += [f"depth_imb_{d}" for d in tp.depths] + [f"depth_imb_{d}_mean" for d in tp.depths]
    cols += ["bid_sz_1", "ask_sz_1", "bid_depth", "ask_depth"]
    cols += ["volume", "signed_volume", "buy_volume", "sell_volume", "n_trades", "tfi", "vwap", "vwap_day",
             "dist_vwap_bps"]
    cols += ["n_add", "n_cancel", "cancel_add_ratio", "add_rate", "cancel_rate", "exec_rate", "event_rate"]
    cols += [f"ret_{r1}", f"ret_{r2}", f"ret_{r3}", f"rv_{v1}", f"rv_{v2}", "vol_ratio"]
    cols += [f"rsi_{bp.rsi}", f"bb_pctb_{bp.bb}", f"bb_width_{bp.bb}", f"er_{e1}", f"er_{e2}", f"adx_{bp.adx}"]
    cols += [f"kyle_lambda_{bp.kyle}", f"kyle_r2_{bp.kyle}", "vpin"]
    assert len(cols) == K.bar_ncols(L, len(tp.depths)), (len(cols), K.bar_ncols(L, len(tp.depths)))
    return cols


BAR_KEY_COLUMNS = ("symbol", "date", "bar_start", "ts", "first_seq", "last_seq", "n_events", "partial")


def bar_capacity(inp: EventArrays, clock: Clock) -> int:
    n = len(inp)
    if n == 0:
        return 1
    if clock.mode == K.MODE_TIME:
        size = int(clock.size)
        return int(inp.ts[-1] // size - inp.ts[0] // size) + 2
    if clock.mode == K.MODE_EVENTS:
        return n // int(clock.size) + 2
    return n + 2


def bar_matrices(inp: EventArrays, tick: np.ndarray, tp: TickParams, clock: Clock,
                 bp: BarParams | None = None, *, flush: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Batch bar pass: (float matrix, int matrix [start, end, first_seq, last_seq, n_events, partial])."""
    bp = bp or BarParams()
    p = bp.array(clock, tp)
    fst, ist = bp.new_state(clock, tp)
    cap = bar_capacity(inp, clock)
    fout = np.empty((cap, len(bar_columns(tp, bp))))  # row-major: bar rows are written whole
    iout = np.empty((cap, K.IO_N), dtype=np.int64)
    # the fused batch loop in its "tick rows given" mode (one compiled loop for every batch pass)
    counts = np.zeros(1, dtype=np.int64)
    tick = np.asfortranarray(tick, dtype=np.float64)
    tf, ti = tp.new_state()  # unused: the tick rows are given
    K.features_batch(tf, ti, tp.array(), inp.ts, inp.seq, inp.etype, inp.size,
                     inp.price, inp.agg, np.asfortranarray(inp.book[:, : 4 * tp.levels]), tick, fst[None, :],
                     ist[None, :], p[None, :], fout, iout, np.zeros(1, dtype=np.int64), counts, flush, True)
    k = int(counts[0])
    return fout[:k], iout[:k]


def bar_frame(symbol: str, date: object, fout: np.ndarray, iout: np.ndarray, tp: TickParams,
              bp: BarParams | None = None) -> pl.DataFrame:
    """Wrap bar matrices into a ``features_<clock>`` frame (keys first)."""
    bp = bp or BarParams()
    n = fout.shape[0]
    keys = pl.DataFrame({
        "symbol": pl.repeat(symbol, n, dtype=pl.String, eager=True),
        "date": pl.repeat(date, n, dtype=pl.Date, eager=True),
        "bar_start": pl.Series(iout[:, K.IO_START], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        "ts": pl.Series(iout[:, K.IO_END], dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        "first_seq": pl.Series(iout[:, K.IO_FIRST_SEQ], dtype=pl.Int64),
        "last_seq": pl.Series(iout[:, K.IO_LAST_SEQ], dtype=pl.Int64),
        "n_events": pl.Series(iout[:, K.IO_NEV], dtype=pl.Int64),
        "partial": pl.Series(iout[:, K.IO_PARTIAL] != 0, dtype=pl.Boolean),
    })
    keys = keys.with_columns(
        pl.when(pl.col("first_seq") < 0).then(None).otherwise(pl.col("first_seq")).alias("first_seq"),
        pl.when(pl.col("last_seq") < 0).then(None).otherwise(pl.col("last_seq")).alias("last_seq"),
    )
    # one transpose to column-major, then every column is a zero-copy view (one from_numpy call)
    feats = pl.from_numpy(np.asfortranarray(fout), schema=bar_columns(tp, bp), orient="row")
    return pl.concat([keys, feats], how="horizontal")


def compute_bars(inp: EventArrays, tick: np.ndarray, tp: TickParams, clock: Clock | str,
                 bp: BarParams | None = None) -> pl.DataFrame:
    """``features_<clock>`` for one day from the tick matrix of the same day."""
    clock = parse_clock(clock) if isinstance(clock, str) else clock
    fout, iout = bar_matrices(inp, tick, tp, clock, bp)
    return bar_frame(inp.symbol, inp.date, fout, iout, tp, bp)
