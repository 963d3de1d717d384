"""Performance metrics of a backtest: returns, risk, drawdowns, trades, and selection-bias-aware Sharpe.

Notation: ``E_0..E_T`` is the equity curve, ``r_t = E_t / E_{t-1} - 1`` (``t = 1..T``, ``T`` periods),
``q`` the number of periods per year, ``rf`` the per-period risk-free rate (default 0).

* total return            ``E_T / E_0 - 1``
* annualized return       ``(E_T / E_0) ** (q / T) - 1``                      (geometric, CAGR)
* annualized volatility   ``std(r, ddof=1) * sqrt(q)``
* Sharpe (annualized)     ``mean(r - rf) / std(r, ddof=1) * sqrt(q)``          (Sharpe 1966, 1994)
* Sortino (annualized)    ``mean(r - rf) / DD * sqrt(q)``, ``DD = sqrt(mean(min(r - rf, 0)^2))``
                          over *all* periods (Sortino & van der Meer 1991; as empyrical/pyfolio)
* max drawdown            ``max_t (1 - E_t / max_{s<=t} E_s)`` (a positive fraction)
* max drawdown duration   longest run, in periods, from a peak to the first period at or above it
                          again (or to the end of the sample when never recovered)
* Calmar                  ``annualized return / max drawdown``
* win rate                winning trades / closed trades (per-period PnL when there are no trades)
* profit factor           ``sum(gains) / |sum(losses)|`` over the same trades (or periods)
* turnover                traded notional / mean equity (fills) or ``sum |h_t - h_{t-1}|`` (positions)
* fill rate               distinct filled orders / submitted orders (and filled / ordered size)
* probabilistic Sharpe    ``PSR(SR*) = Phi( (SR - SR*) sqrt(T - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2) )``
                          with the *per-period* Sharpe ``SR``, skewness ``g3`` and (non-excess)
                          kurtosis ``g4`` of the returns (Bailey & Lopez de Prado 2012, "The Sharpe
                          Ratio Efficient Frontier", J. of Risk 15(2), eq. 6).
* deflated Sharpe         ``DSR = PSR(SR_0)`` with the expected maximum Sharpe of ``N`` unskilled trials
                          ``SR_0 = sqrt(V[SR_n]) * ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))``,
                          ``gamma`` = Euler-Mascheroni constant, ``V[SR_n]`` the variance of the trials'
                          per-period Sharpe ratios (Bailey & Lopez de Prado 2014, "The Deflated Sharpe
                          Ratio", J. of Portfolio Management 40(5), eqs. 1-2). With ``N = 1`` it equals
                          ``PSR(0)``.

Skewness and kurtosis are the population (biased) moment ratios ``m3 / m2^1.5`` and ``m4 / m2^2``.
Undefined values (e.g. the Sharpe ratio of a flat curve) are ``nan``; :func:`jsonable` maps them to None.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import polars as pl

__all__ = [
    "EULER_GAMMA",
    "METRIC_KEYS",
    "compute_metrics",
    "deflated_sharpe_ratio",
    "drawdown_stats",
    "expected_max_sharpe",
    "jsonable",
    "probabilistic_sharpe_ratio",
    "trades_from_fills",
]

EULER_GAMMA = 0.5772156649015329
_STD_NORMAL = NormalDist()
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    """Standard normal CDF ``Phi(z) = erfc(-z / sqrt(2)) / 2`` (stdlib; no SciPy import at start-up)."""
    return 0.5 * _erfc(-np.asarray(z, dtype=np.float64) / math.sqrt(2.0))

METRIC_KEYS = (
    "start_equity", "final_equity", "total_return", "annualized_return", "annualized_volatility",
    "sharpe", "sortino", "calmar", "max_drawdown", "max_drawdown_duration", "max_drawdown_duration_s",
    "n_trades", "win_rate", "profit_factor", "avg_trade_pnl", "turnover", "traded_notional",
    "fees_paid", "fill_rate", "fill_rate_size", "sharpe_per_period", "skew", "kurtosis", "psr", "dsr",
    "n_trials", "n_periods", "periods_per_year",
)
"""Keys of the dict returned by :func:`compute_metrics` (always all present)."""


# ------------------------------------------------------------------------------------------------
# Sharpe-ratio statistics
# ------------------------------------------------------------------------------------------------


def probabilistic_sharpe_ratio(
    sr: float | np.ndarray,
    n: float | np.ndarray,
    skew: float | np.ndarray = 0.0,
    kurtosis: float | np.ndarray = 3.0,
    sr_benchmark: float | np.ndarray = 0.0,
) -> float | np.ndarray:
    """Probability that the true per-period Sharpe exceeds ``sr_benchmark`` (Bailey & Lopez de Prado 2012).

    ``PSR = Phi((SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurtosis - 1) / 4 SR^2))`` where ``SR`` is the
    *non-annualized* Sharpe ratio estimated on ``n`` returns and ``kurtosis`` is non-excess (3 = normal).
    """
    sr_a = np.asarray(sr, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        denom = 1.0 - np.asarray(skew) * sr_a + (np.asarray(kurtosis) - 1.0) / 4.0 * sr_a**2
        z = (sr_a - np.asarray(sr_benchmark)) * np.sqrt(np.asarray(n, dtype=np.float64) - 1.0) / np.sqrt(denom)
        ok = np.isfinite(z) & (denom > 0)
        out = np.where(ok, _norm_cdf(np.where(ok, z, 0.0)), np.nan)
    return float(out) if out.ndim == 0 else out


def expected_max_sharpe(n_trials: int, trials_sharpe_var: float) -> float:
    """Expected maximum of ``n_trials`` per-period Sharpe estimates whose true value is 0.

    ``E[max SR] ~= sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e)))`` (Bailey & Lopez de
    Prado 2014, eq. 2, from the False Strategy Theorem); 0 for a single trial.
    """
    if n_trials < 1:
        raise ValueError("n_trials must be >= 1")
    if n_trials == 1:
        return 0.0
    if trials_sharpe_var < 0:
        raise ValueError("trials_sharpe_var must be >= 0")
    z1 = _STD_NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
    z2 = _STD_NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))
    return float(math.sqrt(trials_sharpe_var) * ((1.0 - EULER_GAMMA) * z1 + EULER_GAMMA * z2))


def deflated_sharpe_ratio(
    sr: float | np.ndarray,
    n: float | np.ndarray,
    skew: float | np.ndarray = 0.0,
    kurtosis: float | np.ndarray = 3.0,
    *,
    n_trials: int = 1,
    trials_sharpe_var: float | None = None,
) -> float | np.ndarray:
    """DSR = PSR(SR_0), SR_0 = :func:`expected_max_sharpe` (Bailey & Lopez de Prado 2014).

    All Sharpe ratios are per period (not annualized). With ``n_trials > 1`` the variance of the trials'
    Sharpe ratios is required; ``None`` gives ``nan`` (the deflation is unknown).
    """
    if n_trials > 1 and trials_sharpe_var is None:
        shape = np.shape(sr)
        return float("nan") if shape == () else np.full(shape, np.nan)
    sr0 = expected_max_sharpe(n_trials, float(trials_sharpe_var or 0.0))
    return probabilistic_sharpe_ratio(sr, n, skew, kurtosis, sr0)


# ------------------------------------------------------------------------------------------------
# drawdowns and trades
# ------------------------------------------------------------------------------------------------


def drawdown_stats(equity: np.ndarray) -> tuple[float, int, np.ndarray]:
    """``(max_drawdown, max_duration_periods, drawdown_series)``; drawdown ``1 - E_t / max_{s<=t} E_s``.

    Duration: for each under-water spell starting at peak index ``p``, the number of periods until the
    first ``t`` with ``E_t >= E_p`` (``t - p``), or ``T - p`` when the sample ends under water.
    """
    e = np.asarray(equity, dtype=np.float64)
    if e.size == 0:
        return 0.0, 0, e
    peak = np.maximum.accumulate(e)
    dd = 1.0 - e / peak
    at_peak = e >= peak
    idx = np.arange(e.size)
    peak_idx = np.maximum.accumulate(np.where(at_peak, idx, 0))
    max_dur = 0
    under = ~at_peak
    if under.any():
        # under-water periods t: duration so far t - peak_idx[t]; a recovery at t adds one period
        durs = np.where(under, idx - peak_idx, 0)
        max_dur = int(durs.max())
        rec = np.flatnonzero(at_peak[1:] & under[:-1]) + 1
        if rec.size:
            max_dur = max(max_dur, int((rec - peak_idx[rec - 1]).max()))
    return float(dd.max()), max_dur, dd


def _side_sign(side: pl.Series) -> np.ndarray:
    if side.dtype.is_numeric():
        return np.sign(side.cast(pl.Float64).fill_null(0.0).to_numpy())
    s = side.cast(pl.String).str.to_lowercase()
    return np.where(s.str.starts_with("b").to_numpy(), 1.0,
                    np.where(s.str.starts_with("s").to_numpy(), -1.0, 0.0))


def trades_from_fills(fills: pl.DataFrame, mark_price: float | None = None) -> pl.DataFrame:
    """Round trips from fills: a trade runs from flat to flat (a fill through zero is split).

    ``fills`` needs ``side`` (+1/-1 or buy/sell), ``price``, ``size``; ``ts`` and ``fee`` are optional.
    ``pnl = sum(-side * size * price) - fees`` over the trade's fills; a trade still open at the end is
    marked at ``mark_price`` (or the last fill price) and flagged ``open``. Columns: entry_ts, exit_ts,
    direction (+1 long / -1 short), max_position, n_fills, fees, pnl, open.
    """
    schema = {"entry_ts": pl.Int64, "exit_ts": pl.Int64, "direction": pl.Int8, "max_position": pl.Float64,
              "n_fills": pl.Int64, "fees": pl.Float64, "pnl": pl.Float64, "open": pl.Boolean}
    if fills is None or fills.height == 0:
        return pl.DataFrame(schema=schema)
    f = fills.sort("ts", maintain_order=True) if "ts" in fills.columns else fills
    sign = _side_sign(f["side"])
    price = f["price"].cast(pl.Float64).to_numpy()
    size = np.abs(f["size"].cast(pl.Float64).to_numpy())
    fee = f["fee"].cast(pl.Float64).fill_null(0.0).to_numpy() if "fee" in f.columns else np.zeros(f.height)
    ts = f["ts"].to_physical().to_numpy() if "ts" in f.columns else np.arange(f.height)
    out: dict[str, list[Any]] = {k: [] for k in schema}
    pos = cash = fees = maxpos = 0.0
    nf = 0
    entry = 0
    eps = 1e-9
    for i in range(f.height):
        q = sign[i] * size[i]
        if q == 0:
            continue
        parts = [(q, fee[i])]
        if abs(pos) > eps and np.sign(pos + q) == -np.sign(pos) and abs(pos + q) > eps:  # through zero
            close_q = -pos
            frac = abs(close_q) / abs(q)
            parts = [(close_q, fee[i] * frac), (q - close_q, fee[i] * (1 - frac))]
        for qq, ff in parts:
            if abs(pos) <= eps:
                entry, cash, fees, maxpos, nf = int(ts[i]), 0.0, 0.0, 0.0, 0
                direction = 1 if qq > 0 else -1
            pos += qq
            cash += -qq * price[i] - ff
            fees += ff
            nf += 1
            maxpos = max(maxpos, abs(pos))
            if abs(pos) <= eps:
                for k, v in zip(schema, (entry, int(ts[i]), direction, maxpos, nf, fees, cash, False), strict=True):
                    out[k].append(v)
                pos = 0.0
    if abs(pos) > eps:
        mark = float(mark_price) if mark_price is not None and math.isfinite(mark_price) else float(price[-1])
        for k, v in zip(schema, (entry, int(ts[-1]), direction, maxpos, nf, fees, cash + pos * mark, True),
                        strict=True):
            out[k].append(v)
    df = pl.DataFrame(out, schema=schema)
    if "ts" in f.columns and f["ts"].dtype != pl.Int64:
        df = df.with_columns(pl.col("entry_ts", "exit_ts").cast(f["ts"].dtype))
    return df


# ------------------------------------------------------------------------------------------------
# compute_metrics
# ------------------------------------------------------------------------------------------------


def _equity_series(
    equity: pl.DataFrame | np.ndarray | pl.Series | Sequence[float], resample: str | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Equity values (and ts in ns when known), optionally last-value resampled to a regular grid."""
    if isinstance(equity, pl.DataFrame):
        if "equity" not in equity.columns:
            raise ValueError(f"equity frame needs an 'equity' column, has {equity.columns}")
        df = equity
        if "ts" in df.columns:
            df = df.sort("ts", maintain_order=True)
            if resample:
                # bar k = [start_k, start_k + every) labelled by its end, valued at its last equity;
                # the first observation, at the start of its bar, is the starting value
                df = df.select(pl.col("ts").dt.cast_time_unit("ns"), pl.col("equity").cast(pl.Float64))
                first = df.head(1).with_columns(pl.col("ts").dt.truncate(resample))
                bars = df.group_by_dynamic("ts", every=resample, closed="left", label="right").agg(
                    pl.col("equity").last())
                df = (pl.concat([first, bars]).upsample("ts", every=resample)
                      .with_columns(pl.col("equity").forward_fill()))
            ts = df["ts"].dt.cast_time_unit("ns").to_physical().to_numpy().astype(np.int64) \
                if isinstance(df["ts"].dtype, pl.Datetime) else df["ts"].to_numpy().astype(np.int64)
        else:
            ts = None
        return df["equity"].cast(pl.Float64).to_numpy(), ts
    if isinstance(equity, pl.Series):
        return equity.cast(pl.Float64).to_numpy(), None
    return np.asarray(equity, dtype=np.float64).ravel(), None


def _nan() -> float:
    return float("nan")


def compute_metrics(
    equity: pl.DataFrame | np.ndarray | pl.Series | Sequence[float],
    fills: pl.DataFrame | None = None,
    orders: pl.DataFrame | None = None,
    *,
    periods_per_year: float = 252.0,
    n_trials: int = 1,
    trials_sharpe_var: float | None = None,
    trial_sharpes: Sequence[float] | np.ndarray | None = None,
    risk_free: float = 0.0,
    resample: str | None = None,
    trades: pl.DataFrame | None = None,
    multiplier: float = 1.0,
) -> dict[str, Any]:
    """Metrics of one backtest (formulas in the module docstring); every key of :data:`METRIC_KEYS`.

    ``multiplier``: the contract multiplier of the fills' instrument (currency per price point and unit,
    50 for CME ES): trade PnL and traded notional are price x size x multiplier.

    Parameters
    ----------
    equity
        An equity curve: array of values, or a frame with ``equity`` (and ``ts``, used for drawdown
        durations in seconds and for ``resample``).
    fills
        Optional fills (``side``, ``price``, ``size``, ``fee``, ``ts``): trades, fees, turnover.
    orders
        Optional submitted orders (``order_id``, optional ``size``): fill rate.
    periods_per_year
        Periods per year of the (resampled) equity curve: 252 for daily bars, ``252 * 390`` for
        1-minute bars of a US equity session.
    n_trials, trials_sharpe_var, trial_sharpes
        Number of configurations tried and the variance of their per-period Sharpe ratios (or the
        Sharpe ratios themselves, per period) for the deflated Sharpe ratio.
    resample
        A Polars duration (``"1m"``, ``"1s"``) to sample an irregular (per-event) equity curve on a
        regular grid (last value per interval, forward-filled) before computing return statistics.
    trades
        Optional pre-computed round trips with a ``pnl`` column (overrides the fills-derived trades).
    """
    e, ts = _equity_series(equity, resample)
    if e.size == 0:
        raise ValueError("empty equity curve")
    if not np.all(np.isfinite(e)):
        raise ValueError("equity curve has non-finite values")
    m: dict[str, Any] = dict.fromkeys(METRIC_KEYS)
    q = float(periods_per_year)
    n = e.size - 1
    m |= {"start_equity": float(e[0]), "final_equity": float(e[-1]), "n_periods": n,
          "periods_per_year": q, "n_trials": int(n_trials)}
    with np.errstate(divide="ignore", invalid="ignore"):
        r = e[1:] / e[:-1] - 1.0 if n > 0 else np.empty(0)
    m["total_return"] = float(e[-1] / e[0] - 1.0) if e[0] != 0 else _nan()
    if n > 0 and e[0] > 0 and e[-1] > 0:
        # compounded in log space: a short, very profitable sample annualizes to +inf, honestly, not an error
        with np.errstate(over="ignore"):
            m["annualized_return"] = float(np.expm1(np.log(e[-1] / e[0]) * (q / n)))
    elif n > 0 and e[0] > 0:
        m["annualized_return"] = -1.0
    else:
        m["annualized_return"] = _nan()
    ex = r - risk_free
    sd = float(np.std(r, ddof=1)) if n > 1 else _nan()
    mean = float(np.mean(ex)) if n > 0 else _nan()
    sr = mean / sd if n > 1 and sd > 0 else _nan()
    m["annualized_volatility"] = sd * math.sqrt(q) if n > 1 else _nan()
    m["sharpe"] = sr * math.sqrt(q)
    m["sharpe_per_period"] = sr
    down = float(np.sqrt(np.mean(np.minimum(ex, 0.0) ** 2))) if n > 0 else _nan()
    m["sortino"] = mean / down * math.sqrt(q) if n > 0 and down > 0 else _nan()
    m2 = float(np.mean((r - r.mean()) ** 2)) if n > 0 else 0.0
    m["skew"] = float(np.mean((r - r.mean()) ** 3) / m2**1.5) if m2 > 0 else _nan()
    m["kurtosis"] = float(np.mean((r - r.mean()) ** 4) / m2**2) if m2 > 0 else _nan()

    mdd, mdur, _ = drawdown_stats(e)
    m["max_drawdown"] = mdd
    m["max_drawdown_duration"] = mdur
    if ts is not None and mdur > 0:
        # the same spell's duration in seconds: recompute on the time axis
        peak = np.maximum.accumulate(e)
        at_peak = e >= peak
        idx = np.arange(e.size)
        pidx = np.maximum.accumulate(np.where(at_peak, idx, 0))
        under = ~at_peak
        dur_s = np.where(under, (ts - ts[pidx]) / 1e9, 0.0)
        rec = np.flatnonzero(at_peak[1:] & under[:-1]) + 1
        best = float(dur_s.max()) if dur_s.size else 0.0
        if rec.size:
            best = max(best, float(((ts[rec] - ts[pidx[rec - 1]]) / 1e9).max()))
        m["max_drawdown_duration_s"] = best
    elif ts is not None:
        m["max_drawdown_duration_s"] = 0.0
    m["calmar"] = m["annualized_return"] / mdd if mdd > 0 else _nan()

    # PSR / DSR on per-period returns
    skew = m["skew"] if m["skew"] is not None else _nan()
    kurt = m["kurtosis"] if m["kurtosis"] is not None else _nan()
    m["psr"] = float(probabilistic_sharpe_ratio(sr, n, skew, kurt, 0.0)) if n > 1 else _nan()
    if trial_sharpes is not None and trials_sharpe_var is None:
        ts_arr = np.asarray(trial_sharpes, dtype=np.float64)
        ts_arr = ts_arr[np.isfinite(ts_arr)]
        trials_sharpe_var = float(np.var(ts_arr, ddof=1)) if ts_arr.size > 1 else 0.0
        n_trials = max(int(n_trials), int(np.asarray(trial_sharpes).size))
        m["n_trials"] = n_trials
    m["dsr"] = (float(deflated_sharpe_ratio(sr, n, skew, kurt, n_trials=int(n_trials),
                                            trials_sharpe_var=trials_sharpe_var)) if n > 1 else _nan())

    if fills is not None and multiplier != 1.0 and fills.height:
        # PnL and notional are linear in price: a price in "currency per unit held" carries the multiplier
        fills = fills.with_columns(pl.col("price").cast(pl.Float64) * multiplier)
    # trades: fills-derived round trips (or given), else per-period PnL
    if trades is None and fills is not None:
        mark = None
        if isinstance(equity, pl.DataFrame) and "mid" in equity.columns and equity.height:
            mids = equity["mid"].drop_nulls().drop_nans() if equity["mid"].dtype.is_float() else equity["mid"].drop_nulls()
            mark = float(mids[-1]) * multiplier if mids.len() else None
        trades = trades_from_fills(fills, mark)
    if trades is not None:
        pnl = trades["pnl"].cast(pl.Float64).to_numpy() if trades.height else np.empty(0)
        pnl_closed = pnl[~trades["open"].to_numpy()] if "open" in trades.columns and trades.height else pnl
        m["n_trades"] = int(trades.height)
    else:
        pnl_closed = np.diff(e)
        pnl_closed = pnl_closed[pnl_closed != 0]
        m["n_trades"] = 0
    if pnl_closed.size:
        gains = float(pnl_closed[pnl_closed > 0].sum())
        losses = float(-pnl_closed[pnl_closed < 0].sum())
        m["win_rate"] = float(np.mean(pnl_closed > 0))
        m["profit_factor"] = gains / losses if losses > 0 else (math.inf if gains > 0 else _nan())
        m["avg_trade_pnl"] = float(pnl_closed.mean())
    else:
        m["win_rate"] = m["profit_factor"] = m["avg_trade_pnl"] = _nan()

    # fills: fees, notional, turnover
    if fills is not None:
        notional = float((fills["price"].cast(pl.Float64) * fills["size"].cast(pl.Float64).abs()).sum()) \
            if fills.height else 0.0
        m["traded_notional"] = notional
        m["fees_paid"] = float(fills["fee"].cast(pl.Float64).fill_null(0.0).sum()) \
            if "fee" in fills.columns and fills.height else 0.0
        mean_eq = float(np.mean(e))
        m["turnover"] = notional / mean_eq if mean_eq > 0 else _nan()
    else:
        m["fees_paid"] = 0.0
        m["traded_notional"] = _nan()
        m["turnover"] = _nan()
    if orders is not None:
        n_orders = orders["order_id"].n_unique() if "order_id" in orders.columns else orders.height
        filled = fills["order_id"].n_unique() if fills is not None and "order_id" in fills.columns else 0
        m["fill_rate"] = filled / n_orders if n_orders else _nan()
        if "size" in orders.columns and fills is not None and orders.height:
            ordered = float(orders["size"].cast(pl.Float64).abs().sum())
            got = float(fills["size"].cast(pl.Float64).abs().sum())
            m["fill_rate_size"] = got / ordered if ordered > 0 else _nan()
    return m


def jsonable(obj: Any) -> Any:
    """Recursively make ``obj`` strict-JSON safe: nan/inf -> None, numpy scalars -> Python, dates -> ISO."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj
