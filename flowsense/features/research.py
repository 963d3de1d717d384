"""Research helpers: integrated-OFI weights (training only) and the OFI price-impact regression.

Cont, Kukanov & Stoikov (2014) regress the mid-price change over 10-second intervals on the OFI of the
same interval, one OLS per 30-minute window, and report an average R^2 of about 65% for S&P 500 stocks.
:func:`ofi_price_impact_r2` reproduces that (contemporaneous, in-sample) design on our bar tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl


def fit_ofi_weights(ofi_levels: np.ndarray) -> np.ndarray:
    """First principal component of multi-level OFI (rows = intervals, columns = levels 1..L), as
    weights with positive sum normalised to ``sum |w| = 1`` (Cont, Cucuringu & Zhang 2023, eq. 6).

    CCZ scale each interval's OFI by the average depth; a common scale does not change the principal
    direction, so the raw covariance is used. Fit on *training* days only and pass the result as
    ``TickParams(ofi_weights=...)``; fitting on the day being scored looks ahead.
    """
    x = np.asarray(ofi_levels, dtype=np.float64)
    x = x[np.isfinite(x).all(axis=1)]
    if x.shape[0] < 2:
        raise ValueError("need at least 2 intervals to fit OFI weights")
    x = x - x.mean(axis=0)
    cov = x.T @ x / (x.shape[0] - 1)
    vals, vecs = np.linalg.eigh(cov)
    w = vecs[:, np.argmax(vals)]
    if w.sum() < 0:
        w = -w
    return w / np.abs(w).sum()


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if x.size < 3:
        return float("nan")
    xc, yc = x - x.mean(), y - y.mean()
    sxx, syy = float(xc @ xc), float(yc @ yc)
    if sxx == 0 or syy == 0:
        return float("nan")
    return float((xc @ yc) ** 2 / (sxx * syy))


@dataclass(frozen=True)
class ImpactR2:
    """R^2 of Delta mid on OFI: mean over windows, and pooled over the day."""

    column: str
    mean_window_r2: float
    day_r2: float
    windows: int
    bars: int


def ofi_price_impact_r2(
    bars: pl.DataFrame,
    ofi_columns: tuple[str, ...] = ("ofi_l1", "ofi_int"),
    *,
    window: str = "30m",
    min_bars: int = 30,
) -> dict[str, ImpactR2]:
    """Contemporaneous R^2 of ``mid_close - mid_open`` on each OFI column of a bar table (10 s bars for
    the CKS design), per ``window`` (mean over windows with >= ``min_bars`` bars) and for the whole day.
    Partial bars are dropped."""
    df = bars.filter(~pl.col("partial")).with_columns((pl.col("mid_close") - pl.col("mid_open")).alias("_dp"))
    out: dict[str, ImpactR2] = {}
    grouped = df.with_columns(pl.col("ts").dt.truncate(window).alias("_w")).partition_by("_w", maintain_order=True)
    for col in ofi_columns:
        if col not in df.columns:
            continue
        r2s = [
            _r2(g[col].to_numpy(), g["_dp"].to_numpy()) for g in grouped if g.height >= min_bars
        ]
        r2s = [r for r in r2s if np.isfinite(r)]
        out[col] = ImpactR2(col, float(np.mean(r2s)) if r2s else float("nan"),
                            _r2(df[col].to_numpy(), df["_dp"].to_numpy()), len(r2s), df.height)
    return out
