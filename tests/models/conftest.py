"""Tiny synthetic inputs for the model tests (no lake needed): a mid that tends to move with OFI."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import pytest

from flowsense.models.dataset import SymbolData
from flowsense.models.targets import HORIZONS, targets


def synthetic_symbol(n: int = 6000, days: int = 1, seed: int = 0, symbol: str = "SYN") -> SymbolData:
    """``n`` events per day, ~5 events/s; the next mid move follows the sign of recent OFI 70 % of the time."""
    rng = np.random.default_rng(seed)
    frames, bars, ys, ends = [], [], {h: [] for h in HORIZONS}, {h: [] for h in HORIZONS}
    for d in range(days):
        date = dt.date(2024, 1, 2) + dt.timedelta(days=d)
        t0 = int(dt.datetime(date.year, date.month, date.day, 14, 30, tzinfo=dt.UTC).timestamp() * 1e9)
        ts = t0 + np.cumsum(rng.exponential(0.2e9, n)).astype(np.int64)
        ofi = rng.normal(0, 100, n)
        ofi10 = np.convolve(ofi, np.ones(10), "full")[:n]
        move = rng.random(n) < 0.15
        agree = rng.random(n) < 0.7
        step = np.where(move, np.where(agree, np.sign(ofi10), -np.sign(ofi10)), 0.0) * 0.01
        mid = 100 + np.cumsum(step)
        vol_regime = (np.arange(n) // 1500) % 2
        f = pl.DataFrame({
            "symbol": symbol, "date": date, "seq": np.arange(n), "ts": pl.Series(ts).cast(pl.Datetime("ns", "UTC")),
            "mid": mid, "ofi_l1": ofi, "ofi_sum_10": ofi10, "qi_l1": rng.normal(0, 50, n) + 0.3 * ofi10,
            "ofi_int": ofi * 0.8, "ofi_l1_sum_100": np.convolve(ofi, np.ones(100), "full")[:n],
            "depth_imb_1": np.tanh(ofi10 / 300), "micro_rel": np.tanh(ofi10 / 500) / 2, "dmid": np.r_[0, np.diff(mid)],
            "signed_volume": rng.normal(0, 10, n), "spread_bps": 1 + rng.random(n), "dt_prev": rng.random(n),
            "b1_ret_1": rng.normal(0, 1e-4, n), "b1_ofi_l1": rng.normal(0, 1, n), "tod": np.linspace(0, 1, n),
            "t_day": (ts - ts[0]) / 1e9, "hk_dim": rng.integers(-1, 6, n).astype(np.int8),
            "ev_size": rng.integers(1, 500, n).astype(float), "day": d,
        })
        nb = int((ts[-1] - t0) // 1_000_000_000) + 1
        bts = t0 + (np.arange(nb) + 1) * 1_000_000_000
        bvol = np.where(((np.arange(nb) // 300) % 2) == 1, 3.0, 1.0)
        r = rng.normal(0, 1e-4, nb) * bvol
        b = pl.DataFrame({"symbol": symbol, "date": date, "ts": pl.Series(bts).cast(pl.Datetime("ns", "UTC")),
                          "ret_1": r, "ret_20": np.convolve(r, np.ones(20), "full")[:nb],
                          "rv_20": np.sqrt(np.convolve(r * r, np.ones(20), "full")[:nb]),
                          "ofi_l1": rng.normal(0, 100, nb)})
        for h, (y, e) in targets(ts, mid).items():
            ys[h].append(y)
            ends[h].append(e)
        frames.append(f.with_columns(pl.lit(0.0).alias("regime_truth") + vol_regime))
        bars.append(b)
    return SymbolData(symbol, pl.concat(frames), {h: np.concatenate(v) for h, v in ys.items()},
                      {h: np.concatenate(v) for h, v in ends.items()}, pl.concat(bars),
                      [dt.date(2024, 1, 2) + dt.timedelta(days=d) for d in range(days)])


@pytest.fixture(scope="session")
def syn() -> SymbolData:
    return synthetic_symbol()
