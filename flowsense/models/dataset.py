"""Model inputs from the lake: one time-ordered frame per symbol with every feature and target.

:func:`load_symbol` reads, for each day of one symbol, ``features_tick`` (one row per book event),
``events`` (event type and side, for the Hawkes dimensions) and the ``features_1s`` / ``features_1min`` bars,
and returns a :class:`SymbolData`:

* tick features as in the lake, plus ``ofi_sum_10`` (level-1 OFI summed over the last 10 events including
  this one, within the day), ``qi_l1`` (bid size - ask size at level 1 after the event), ``spread_bps``,
  ``micro_rel`` (microprice - mid over the spread), ``tod`` (fraction of the session elapsed);
* bar features joined *as of* the event: the last bar whose end is ``<=`` the event time (so only closed
  bars, never the one in progress), prefixed ``b1_`` (1 s) and ``m1_`` (1 min);
* cross-asset node features for the graph model (:func:`add_cross_asset`): ``g{k}_ofi``, ``g{k}_ret`` for
  node ``k`` (0 = this symbol, then the others sorted) from their last closed 1 s bar, and ``gc_{i}_{j}``
  the trailing correlation of 1 s mid returns between nodes ``i < j`` over ``corr_window`` bars;
* point-process columns for the Hawkes model: ``t_day`` (seconds since the day's first event), ``hk_dim``
  (0 market buy, 1 market sell, 2 limit add bid, 3 limit add ask, 4 cancel bid, 5 cancel ask, -1 other),
  ``ev_size`` and ``day`` (0-based day index);
* targets :data:`flowsense.models.targets.HORIZONS` (``y[h]``, ``end[h]``).

Nothing here looks ahead except the targets, which live apart from the feature frame.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from flowsense.data.lake import Lake, Partition
from flowsense.models.targets import HORIZONS, targets

KEYS = ("symbol", "date", "seq", "ts")
TICK_FEATURES = (
    "spread_bps", "micro_rel", "dmid", "ofi_l1", "ofi_int", "ofi_sum_10", "ofi_l1_sum_100", "qi_l1",
    "depth_imb_1", "depth_imb_3", "depth_imb_5", "depth_imb_10", "bid_sz_1", "ask_sz_1", "bid_depth",
    "ask_depth", "trade_volume", "signed_volume", "tfi_100", "tfi_1000", "event_rate", "trade_rate", "add_rate",
    "cancel_rate", "dt_prev", "t_since_trade", "vpin", "tod",
)
BAR_FEATURES_1S = ("ret_1", "ret_5", "ret_20", "rv_20", "rv_60", "vol_ratio", "ofi_l1", "ofi_int", "tfi",
                   "er_10", "depth_imb_1_mean", "event_rate")
BAR_FEATURES_1MIN = ("ret_1", "ret_5", "rv_20", "rsi_14", "bb_pctb_20", "adx_14", "dist_vwap_bps")
OFI_FEATURES = ("ofi_l1", "ofi_sum_10", "ofi_l1_sum_100", "ofi_int", "b1_ofi_l1", "b1_ofi_int")
"""The OFI-only inputs of the fitted baseline ``logit_ofi``."""
HAWKES_COLUMNS = ("t_day", "hk_dim", "ev_size", "day")
SEQ_FEATURES = ("ofi_l1", "ofi_sum_10", "qi_l1", "depth_imb_1", "micro_rel", "dmid", "signed_volume",
                "spread_bps", "dt_prev", "b1_ret_1", "b1_ofi_l1")
"""The per-event vector the Transformer reads over its sequence window."""
HMM_BAR_FEATURES = ("ret_1", "rv_20")
N_HAWKES_DIMS = 6
HAWKES_DIM_NAMES = ("market_buy", "market_sell", "add_bid", "add_ask", "cancel_bid", "cancel_ask")


@dataclass
class SymbolData:
    """All events of one symbol over the selected days, in time order."""

    symbol: str
    frame: pl.DataFrame
    y: dict[str, np.ndarray]
    end: dict[str, np.ndarray]
    bars: pl.DataFrame
    dates: list[dt.date] = field(default_factory=list)

    @property
    def ts(self) -> np.ndarray:
        return self.frame["ts"].dt.epoch("ns").to_numpy().astype(np.int64)

    def X(self, names: Sequence[str], rows: np.ndarray | slice | None = None) -> np.ndarray:
        """The feature matrix (float64, NaN where undefined) of ``names``, optionally a row subset."""
        missing = [c for c in names if c not in self.frame.columns]
        if missing:
            raise KeyError(f"{self.symbol}: no feature columns {missing}")
        f = self.frame if rows is None else self.frame[rows]
        return f.select([pl.col(c).cast(pl.Float64) for c in names]).to_numpy()

    def available(self, names: Sequence[str]) -> list[str]:
        return [c for c in names if c in self.frame.columns]

    def add_columns(self, cols: dict[str, np.ndarray]) -> None:
        self.frame = self.frame.with_columns([pl.Series(k, v) for k, v in cols.items()])


def _hawkes_dims(events: pl.DataFrame) -> pl.DataFrame:
    et = pl.col("event_type").cast(pl.String)
    side = pl.col("side")
    dim = (
        pl.when(et.is_in(["execute_visible", "execute_hidden"]) & (side == -1)).then(0)  # resting sell hit: buy
        .when(et.is_in(["execute_visible", "execute_hidden"]) & (side == 1)).then(1)
        .when((et == "add") & (side == 1)).then(2)
        .when((et == "add") & (side == -1)).then(3)
        .when(et.is_in(["cancel", "delete"]) & (side == 1)).then(4)
        .when(et.is_in(["cancel", "delete"]) & (side == -1)).then(5)
        .otherwise(-1)
    )
    return events.select("seq", dim.cast(pl.Int8).alias("hk_dim"), pl.col("size").cast(pl.Float64).alias("ev_size"))


def _day_frame(lake: Lake, part: Partition, day_index: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    tick = lake.read("features_tick", part).sort("seq")
    ev = _hawkes_dims(lake.read("events", part, columns=["seq", "event_type", "side", "size"]))
    tick = tick.join(ev, on="seq", how="left")
    t0 = tick["ts"].min()
    span = 6.5 * 3600.0
    tick = tick.with_columns(
        pl.col("ofi_l1").rolling_sum(window_size=10, min_samples=1).alias("ofi_sum_10"),
        (pl.col("bid_sz_1") - pl.col("ask_sz_1")).alias("qi_l1"),
        (pl.col("spread") / pl.col("mid") * 1e4).alias("spread_bps"),
        pl.when(pl.col("spread") > 0).then(pl.col("micro_dev") / pl.col("spread")).otherwise(0.0).alias("micro_rel"),
        ((pl.col("ts") - t0).dt.total_nanoseconds() / 1e9).alias("t_day"),
        pl.lit(day_index, dtype=pl.Int32).alias("day"),
        pl.col("hk_dim").fill_null(-1),
    ).with_columns((pl.col("t_day") / span).alias("tod"))
    bars_1s = lake.read("features_1s", part).filter(~pl.col("partial")).sort("ts")
    for table, prefix, cols in (("features_1s", "b1_", BAR_FEATURES_1S), ("features_1min", "m1_", BAR_FEATURES_1MIN)):
        if not lake.exists(table, part):
            continue
        bars = bars_1s if table == "features_1s" else lake.read(table, part).filter(~pl.col("partial")).sort("ts")
        have = [c for c in cols if c in bars.columns]
        right = bars.select(pl.col("ts").alias("_bar_ts"), *[pl.col(c).alias(prefix + c) for c in have])
        tick = tick.join_asof(right, left_on="ts", right_on="_bar_ts", strategy="backward").drop("_bar_ts")
    return tick, bars_1s


def load_symbol(lake: Lake, symbol: str, dates: Sequence[dt.date] | None = None,
                horizons: Sequence[str] = HORIZONS) -> SymbolData:
    """Every event of ``symbol`` on ``dates`` (default: every day in the lake with features)."""
    parts = [p for p in lake.partitions("features_tick") if p.symbol == symbol]
    if dates is not None:
        want = set(dates)
        parts = [p for p in parts if p.date in want]
    if not parts:
        raise FileNotFoundError(f"no features_tick partitions for {symbol} in {lake.root}")
    frames, bars, ys, ends = [], [], {h: [] for h in horizons}, {h: [] for h in horizons}
    for i, part in enumerate(parts):
        f, b = _day_frame(lake, part, i)
        ts = f["ts"].dt.epoch("ns").to_numpy().astype(np.int64)
        for h, (y, e) in targets(ts, f["mid"].to_numpy().astype(np.float64), tuple(horizons)).items():
            ys[h].append(y)
            ends[h].append(e)
        frames.append(f)
        bars.append(b)
    frame = pl.concat(frames, how="diagonal_relaxed")
    return SymbolData(symbol, frame, {h: np.concatenate(v) for h, v in ys.items()},
                      {h: np.concatenate(v) for h, v in ends.items()},
                      pl.concat(bars, how="diagonal_relaxed"), [p.date for p in parts])


def add_cross_asset(datas: dict[str, SymbolData], corr_window: int = 300) -> None:
    """Add the graph model's node and edge columns to every symbol's frame (in place).

    Node order for symbol ``s``: ``s`` first, then the other symbols sorted. All values come from 1 s bars
    closed at or before the event (as-of join), so they are causal.
    """
    symbols = sorted(datas)
    grid = None
    for s in symbols:
        b = datas[s].bars.select("date", "ts", pl.col("ret_1").fill_nan(0.0).fill_null(0.0).alias(f"r_{s}"),
                                 pl.col("ofi_l1").fill_nan(0.0).alias(f"o_{s}"))
        grid = b if grid is None else grid.join(b, on=["date", "ts"], how="full", coalesce=True)
    assert grid is not None
    grid = grid.sort("ts").with_columns([pl.col(c).fill_null(0.0) for c in grid.columns if c[:2] in ("r_", "o_")])
    for s in symbols:
        # OFI scaled by the trailing mean absolute OFI of that symbol (causal, comparable across symbols)
        scale = pl.col(f"o_{s}").abs().rolling_mean(window_size=corr_window, min_samples=1).over("date") + 1.0
        grid = grid.with_columns((pl.col(f"o_{s}") / scale).alias(f"o_{s}"))
    corr: dict[tuple[str, str], pl.Expr] = {}
    for i, a in enumerate(symbols):
        for b_ in symbols[i + 1:]:
            c = pl.rolling_corr(pl.col(f"r_{a}"), pl.col(f"r_{b_}"), window_size=corr_window,
                                min_samples=30).over("date")
            # a window where a mid did not move has no correlation: polars gives NaN or +-inf there -> 0
            corr[(a, b_)] = pl.when(c.is_finite()).then(c.clip(-1.0, 1.0)).otherwise(0.0).fill_null(0.0)
    grid = grid.with_columns([e.alias(f"c_{a}_{b}") for (a, b), e in corr.items()])
    for s in symbols:
        order = [s, *[x for x in symbols if x != s]]
        sel = [pl.col("ts").alias("_g_ts")]
        for k, x in enumerate(order):
            sel += [pl.col(f"o_{x}").alias(f"g{k}_ofi"), (pl.col(f"r_{x}") * 1e4).alias(f"g{k}_ret")]
        for i in range(len(order)):
            for j in range(i + 1, len(order)):
                a, b_ = sorted((order[i], order[j]))
                sel.append(pl.col(f"c_{a}_{b_}").alias(f"gc_{i}_{j}"))
        right = grid.select(sel)
        d = datas[s]
        cols = [c for c in d.frame.columns if c.startswith(("g0_", "gc_")) or (c[:1] == "g" and c[1:2].isdigit())]
        d.frame = d.frame.drop(cols).join_asof(right, left_on="ts", right_on="_g_ts", strategy="backward",
                                               check_sortedness=False).drop("_g_ts")


def graph_columns(n_nodes: int) -> list[str]:
    """The graph model's input columns for ``n_nodes`` symbols (see :func:`add_cross_asset`)."""
    cols = [f"g{k}_{f}" for k in range(n_nodes) for f in ("ofi", "ret")]
    cols += [f"gc_{i}_{j}" for i in range(n_nodes) for j in range(i + 1, n_nodes)]
    return cols
