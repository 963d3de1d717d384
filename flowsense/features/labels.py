"""Forward-looking labels (table ``labels``), kept apart from every feature module on purpose.

Labels look into the future; features must not. This module reads only the book (mid price and
timestamps) and is never imported by :mod:`flowsense.features.kernels`, ``tick``, ``bars`` or
``streaming``, and no label column appears in a feature table.

For event ``i`` at time ``t_i`` with mid ``m_i`` (after the event):

* time horizon ``h``: ``m(t_i + h)`` is the mid after the last event with ``ts <= t_i + h`` (as-of);
  ``fwd_ret_<h> = log(m(t_i + h) / m_i)``; null when ``t_i + h`` is after the day's last event (the
  future is unknown there) or a mid is missing;
* event horizon ``k``: ``fwd_ret_<k>ev = log(m_{i+k} / m_i)``, null for the last ``k`` events;
* ``fwd_dir_<h>`` = +1 / -1 when the return exceeds +/- ``dead_band_bps`` basis points, else 0 (null
  where the return is null).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numba import njit

NS = {"ms": 1_000_000, "s": 1_000_000_000, "min": 60_000_000_000}


@dataclass(frozen=True)
class LabelParams:
    time_horizons: tuple[str, ...] = ("100ms", "500ms", "1s", "10s")
    event_horizons: tuple[int, ...] = (10, 100)
    dead_band_bps: float = 0.5

    def columns(self) -> list[str]:
        cols: list[str] = []
        for h in (*self.time_horizons, *(f"{k}ev" for k in self.event_horizons)):
            cols += [f"fwd_ret_{h}", f"fwd_dir_{h}"]
        return cols


def horizon_ns(h: str) -> int:
    for unit in ("ms", "min", "s"):
        if h.endswith(unit) and h[: -len(unit)].isdigit():
            return int(h[: -len(unit)]) * NS[unit]
    raise ValueError(f"bad label horizon {h!r}")


def _direction_of(ret: pl.Series, band: float) -> pl.Series:
    """+1 / -1 where the return is above +band / below -band, else 0; null where the return is null."""
    return (ret > band).cast(pl.Int8) - (ret < -band).cast(pl.Int8)


@njit(cache=True)
def asof_index(ts, target):
    """``searchsorted(ts, target, side="right") - 1`` for sorted ``ts`` and sorted ``target`` (one merge pass)."""
    n = ts.shape[0]
    out = np.empty(target.shape[0], dtype=np.int64)
    j = 0
    for i in range(target.shape[0]):
        t = target[i]
        while j < n and ts[j] <= t:
            j += 1
        out[i] = j - 1
    return out


def label_arrays(ts: np.ndarray, mid: np.ndarray, lp: LabelParams | None = None) -> dict[str, np.ndarray]:
    """Forward log returns per horizon (float arrays with NaN where unknown)."""
    lp = lp or LabelParams()
    n = ts.shape[0]
    out: dict[str, np.ndarray] = {}
    sorted_ = n < 2 or bool(np.all(ts[1:] >= ts[:-1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        logm = np.log(mid)
        for h in lp.time_horizons:
            target = ts + horizon_ns(h)
            j = asof_index(ts, target) if sorted_ else np.searchsorted(ts, target, side="right") - 1
            r = logm[j] - logm
            r[target > ts[-1]] = np.nan
            out[h] = r
        for k in lp.event_horizons:
            r = np.full(n, np.nan)
            if n > k:
                r[: n - k] = logm[k:] - logm[: n - k]
            out[f"{k}ev"] = r
    return out


def labels_frame(symbol: str, date: object, seq: np.ndarray, ts: np.ndarray, mid: np.ndarray,
                 lp: LabelParams | None = None) -> pl.DataFrame:
    """The ``labels`` table from seq-sorted keys and the mid after each event (NaN where undefined)."""
    lp = lp or LabelParams()
    n = ts.shape[0]
    rets = label_arrays(ts, np.asarray(mid, dtype=np.float64), lp) if n else {}
    band = lp.dead_band_bps * 1e-4
    cols = [
        pl.repeat(symbol, n, dtype=pl.String, eager=True).alias("symbol"),
        pl.repeat(date, n, dtype=pl.Date, eager=True).alias("date"),
        pl.Series("seq", seq, dtype=pl.Int64),
        pl.Series("ts", ts, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
    ]
    for h in (*lp.time_horizons, *(f"{k}ev" for k in lp.event_horizons)):
        r = rets.get(h, np.empty(0))
        ret = pl.Series(f"fwd_ret_{h}", r, dtype=pl.Float64, nan_to_null=True)
        cols.append(ret)
        cols.append(_direction_of(ret, band).alias(f"fwd_dir_{h}"))
    return pl.DataFrame(cols)


def compute_labels(book: pl.DataFrame, lp: LabelParams | None = None) -> pl.DataFrame:
    """The ``labels`` table of one day from its ``book`` (keys ``symbol, date, seq, ts``)."""
    lp = lp or LabelParams()
    book = book.sort("seq")
    mid = ((pl.col("ask_px_1") + pl.col("bid_px_1")) / 2).fill_null(np.nan)
    base = book.select("symbol", "date", "seq", "ts", mid.alias("_mid"))
    ts = base["ts"].dt.epoch("ns").to_numpy().astype(np.int64)
    rets = label_arrays(ts, base["_mid"].to_numpy().astype(np.float64), lp) if base.height else {}
    band = lp.dead_band_bps * 1e-4
    cols = []
    for h in (*lp.time_horizons, *(f"{k}ev" for k in lp.event_horizons)):
        r = rets.get(h, np.empty(0))
        ret = pl.Series(f"fwd_ret_{h}", r, dtype=pl.Float64, nan_to_null=True)
        cols.append(ret)
        cols.append(_direction_of(ret, band).alias(f"fwd_dir_{h}"))
    return base.drop("_mid").with_columns(cols)
