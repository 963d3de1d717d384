"""Walk-forward evaluation: rolling train/test folds, out-of-sample backtests, regime-stratified results.

Folds (:func:`make_folds`)
--------------------------
* **Day-based** (``train``/``test``/``step`` given as ``int``): counted in distinct trading days present
  in the data (default 60-day train, 7-day test, step = test). Fold ``k`` trains on days
  ``[k*step, k*step + train)`` and tests on days ``[k*step + train + gap, ... + test)``.
* **Intraday** (durations: ``"2h"``, ``"30m"``, ``datetime.timedelta``...): wall-clock windows on the
  timestamps, for single-day data: train ``[a, a + train)``, test ``[a + train + gap, a + train + gap +
  test)``, ``a`` advancing by ``step`` from the first timestamp.

``gap`` is an embargo between the end of training and the start of testing (Lopez de Prado 2018,
*Advances in Financial Machine Learning*, ch. 7): use it when labels look ahead (a label at the last
training bar built from the next ``h`` bars overlaps the test window unless ``gap >= h``).
Every fold is checked: train and test rows are disjoint and every test timestamp is strictly after
every train timestamp.

Walk-forward (:func:`walk_forward`)
-----------------------------------
For each fold the user's ``fit(train_frame)`` sees the training rows only and returns a predictor
(an object with ``predict(frame)`` or a callable); its predictions on the test rows become positions
(``to_position``, default ``sign``) decided at each test bar's close and are backtested on the test
window alone with :func:`flowsense.backtest.vectorized.backtest_positions` (one-bar delay: the
position decided at ``t`` earns ``t -> t+1``; nothing is held into the first test bar). Naive
baselines are run on the same windows: ``flat`` (always 0), ``buy_and_hold`` (always 1) and
``last_return_sign`` (``sign(close[t] / close[t-1] - 1)``). The out-of-sample returns of
non-overlapping test windows are stitched into one curve per strategy; metrics are reported per fold,
overall and per regime (a label per bar: causally filtered HMM regimes, e.g.
:func:`flowsense.models.hmm.fold_regimes`, or the fallback :func:`rolling_vol_regimes`; the result's
``regime_source`` says which). Several strategies can run on the same folds (``fit`` as a mapping
``name -> fit``); :func:`flowsense.backtest.wfrun.run_walkforward` runs the built-in ones (``ofi_ridge``,
``ofi_threshold``, ``model_signal`` with a registered model) on a lake partition.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import polars as pl

from flowsense.backtest.metrics import compute_metrics, drawdown_stats
from flowsense.backtest.vectorized import backtest_positions

__all__ = [
    "BASELINES",
    "Fold",
    "WalkForwardResult",
    "make_folds",
    "regime_metrics",
    "rolling_vol_regimes",
    "walk_forward",
]

NS_PER_DAY = 86_400_000_000_000


class Predictor(Protocol):  # pragma: no cover - typing only
    def predict(self, frame: pl.DataFrame) -> np.ndarray: ...


# ------------------------------------------------------------------------------------------------
# folds
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fold:
    """One walk-forward fold: positional row indices and the time bounds (ns since epoch, UTC).

    ``*_end`` bounds are the last timestamp actually in the window (inclusive).
    """

    index: int
    train: np.ndarray
    test: np.ndarray
    train_start: int
    train_end: int
    test_start: int
    test_end: int

    def describe(self) -> dict[str, Any]:
        def iso(ns: int) -> str:
            return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).isoformat()

        return {"fold": self.index, "train_start": iso(self.train_start), "train_end": iso(self.train_end),
                "test_start": iso(self.test_start), "test_end": iso(self.test_end),
                "n_train": int(self.train.size), "n_test": int(self.test.size)}


_UNITS_NS = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000, "sec": 1_000_000_000,
             "m": 60_000_000_000, "min": 60_000_000_000, "h": 3_600_000_000_000, "d": NS_PER_DAY,
             "w": 7 * NS_PER_DAY}


def _duration_ns(x: str | dt.timedelta | np.timedelta64) -> int:
    if isinstance(x, dt.timedelta):
        return round(x.total_seconds() * 1e9)
    if isinstance(x, np.timedelta64):
        return int(x.astype("timedelta64[ns]").astype(np.int64))
    if isinstance(x, str):
        total = 0
        pos = 0
        for m in re.finditer(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]+)", x):
            if m.start() != pos or m.group(2).lower() not in _UNITS_NS:
                raise ValueError(f"bad duration {x!r} (use e.g. '2h', '30m', '90s', '1h30m', '7d')")
            total += round(float(m.group(1)) * _UNITS_NS[m.group(2).lower()])
            pos = m.end()
        if pos != len(x) or total <= 0:
            raise ValueError(f"bad duration {x!r} (use e.g. '2h', '30m', '90s', '1h30m', '7d')")
        return total
    raise TypeError(f"not a duration: {x!r}")


def _to_ns(values: Any) -> np.ndarray:
    """Timestamps or dates -> int64 ns since the epoch (UTC)."""
    if isinstance(values, pl.Series):
        s = values
        if s.dtype == pl.Date:
            return s.cast(pl.Int64).to_numpy().astype(np.int64) * NS_PER_DAY
        if isinstance(s.dtype, pl.Datetime):
            return s.dt.cast_time_unit("ns").to_physical().to_numpy().astype(np.int64)
        return s.cast(pl.Int64).to_numpy().astype(np.int64)
    arr = np.asarray(values)
    if arr.dtype == object and arr.size and isinstance(arr.flat[0], dt.date | dt.datetime):
        return _to_ns(pl.Series(list(arr)))
    if np.issubdtype(arr.dtype, np.datetime64):
        return arr.astype("datetime64[ns]").astype(np.int64)
    return arr.astype(np.int64)


def make_folds(
    values: Any,
    train: int | str | dt.timedelta = 60,
    test: int | str | dt.timedelta = 7,
    step: int | str | dt.timedelta | None = None,
    *,
    gap: int | str | dt.timedelta = 0,
    allow_partial: bool = True,
) -> list[Fold]:
    """Rolling walk-forward folds over sorted ``values`` (timestamps or dates, one per row).

    ``int`` sizes count distinct trading days (``values``' UTC calendar day); duration sizes are
    wall-clock windows. ``step`` defaults to ``test`` (adjacent, non-overlapping test windows).
    ``allow_partial`` keeps a last test window cut short by the end of the data.
    """
    ns = _to_ns(values)
    if ns.size == 0:
        return []
    if np.any(np.diff(ns) < 0):
        raise ValueError("timestamps must be sorted ascending")
    step = test if step is None else step
    day_mode = all(isinstance(x, int | np.integer) and not isinstance(x, bool) for x in (train, test, step))
    folds: list[Fold] = []
    if day_mode:
        gap_d = int(gap) if isinstance(gap, int | np.integer) else math.ceil(_duration_ns(gap) / NS_PER_DAY)
        tr, te, st = int(train), int(test), int(step)
        if min(tr, te, st) < 1 or gap_d < 0:
            raise ValueError("train, test and step must be >= 1 day, gap >= 0")
        day = ns // NS_PER_DAY
        days = np.unique(day)
        k = 0
        while True:
            a = k * st
            b = a + tr
            c = b + gap_d
            d = c + te
            if c >= days.size or (d > days.size and not allow_partial):
                break
            tr_idx = np.arange(np.searchsorted(day, days[a], "left"), np.searchsorted(day, days[b - 1], "right"))
            te_idx = np.arange(np.searchsorted(day, days[c], "left"),
                               np.searchsorted(day, days[min(d, days.size) - 1], "right"))
            folds.append(_fold(len(folds), ns, tr_idx, te_idx))
            k += 1
    else:
        tr_ns, te_ns, st_ns = (_duration_ns(x) if not isinstance(x, int | np.integer) else int(x) * NS_PER_DAY
                               for x in (train, test, step))
        gap_ns = _duration_ns(gap) if not isinstance(gap, int | np.integer) else int(gap) * NS_PER_DAY
        if gap_ns < 0:
            raise ValueError("gap must be >= 0")
        start = int(ns[0])
        last = int(ns[-1])
        a = start
        while True:
            b = a + tr_ns
            c = b + gap_ns
            d = c + te_ns
            if c > last or (d > last + 1 and not allow_partial):
                break
            tr_idx = np.arange(np.searchsorted(ns, a, "left"), np.searchsorted(ns, b, "left"))
            te_idx = np.arange(np.searchsorted(ns, c, "left"), np.searchsorted(ns, d, "left"))
            if tr_idx.size and te_idx.size:
                folds.append(_fold(len(folds), ns, tr_idx, te_idx))
            a += st_ns
    return folds


def _fold(i: int, ns: np.ndarray, tr: np.ndarray, te: np.ndarray) -> Fold:
    fold = Fold(i, tr, te, int(ns[tr[0]]), int(ns[tr[-1]]), int(ns[te[0]]), int(ns[te[-1]]))
    check_fold(fold, ns)
    return fold


def check_fold(fold: Fold, ns: np.ndarray | None = None) -> None:
    """Raise ``AssertionError`` unless train and test are disjoint and test is strictly after train."""
    if fold.train.size == 0 or fold.test.size == 0:
        raise AssertionError(f"fold {fold.index}: empty train or test window")
    if np.intersect1d(fold.train, fold.test).size:
        raise AssertionError(f"fold {fold.index}: train and test rows overlap")
    if fold.train.max() >= fold.test.min():
        raise AssertionError(f"fold {fold.index}: a test row precedes a train row")
    if ns is not None and ns[fold.train].max() >= ns[fold.test].min():
        raise AssertionError(f"fold {fold.index}: test does not start strictly after train ends")


# ------------------------------------------------------------------------------------------------
# regimes
# ------------------------------------------------------------------------------------------------


def rolling_vol_regimes(
    close: Any, window: int = 60, labels: Sequence[str] = ("low_vol", "mid_vol", "high_vol"),
) -> pl.Series:
    """Regime label per bar from the trailing rolling volatility, split at its terciles.

    ``vol[t] = std(log(close[t-w+1..t] / close[t-w..t-1]))`` uses closes up to ``t`` only; the tercile
    cut points are taken over the whole sample (an *ex-post* labelling for stratified evaluation, not a
    trading signal). Warm-up bars are labelled ``"warmup"``.
    """
    c = close if isinstance(close, pl.Series) else pl.Series(np.asarray(close, dtype=np.float64))
    lr = (c.cast(pl.Float64).log()).diff()
    vol = lr.rolling_std(window_size=window, min_samples=window)
    valid = vol.drop_nulls().drop_nans()
    k = len(labels)
    if valid.len() == 0:
        return pl.Series("regime", ["warmup"] * c.len())
    cuts = [valid.quantile(j / k, interpolation="linear") for j in range(1, k)]
    v = vol.to_numpy()
    idx = np.searchsorted(np.asarray(cuts, dtype=np.float64), np.nan_to_num(v, nan=-np.inf), side="right")
    out = np.asarray(labels, dtype=object)[np.minimum(idx, k - 1)]
    out[~np.isfinite(v)] = "warmup"
    return pl.Series("regime", out.tolist(), dtype=pl.String)


def regime_metrics(
    returns: np.ndarray | pl.Series,
    regimes: np.ndarray | pl.Series | Sequence[str],
    *,
    periods_per_year: float = 252.0,
    strategy: str | None = None,
) -> pl.DataFrame:
    """Metrics of the per-bar returns restricted to each regime (bars compounded within the regime).

    Columns: [strategy], regime, n_bars, share, total_return, mean_return, annualized_volatility, sharpe,
    hit_rate (share of non-zero returns that are positive), max_drawdown.
    """
    r = np.asarray(returns, dtype=np.float64)
    g = np.asarray(regimes.to_list() if isinstance(regimes, pl.Series) else regimes, dtype=object)
    if r.shape != g.shape:
        raise ValueError("returns and regimes differ in length")
    rows: list[dict[str, Any]] = []
    for label in sorted({str(x) for x in g.tolist()}):
        rr = r[g.astype(str) == label]
        eq = np.concatenate([[1.0], np.cumprod(1.0 + rr)])
        sd = float(np.std(rr, ddof=1)) if rr.size > 1 else float("nan")
        nz = rr[rr != 0]
        row: dict[str, Any] = {} if strategy is None else {"strategy": strategy}
        row |= {
            "regime": label,
            "n_bars": int(rr.size),
            "share": rr.size / max(r.size, 1),
            "total_return": float(eq[-1] - 1.0),
            "mean_return": float(rr.mean()) if rr.size else float("nan"),
            "annualized_volatility": sd * math.sqrt(periods_per_year),
            "sharpe": float(rr.mean() / sd * math.sqrt(periods_per_year)) if sd > 0 else float("nan"),
            "hit_rate": float(np.mean(nz > 0)) if nz.size else float("nan"),
            "max_drawdown": drawdown_stats(eq)[0],
        }
        rows.append(row)
    return pl.DataFrame(rows)


# ------------------------------------------------------------------------------------------------
# walk-forward
# ------------------------------------------------------------------------------------------------


def _flat(close: np.ndarray, prev: float | None) -> np.ndarray:
    return np.zeros_like(close)


def _buy_and_hold(close: np.ndarray, prev: float | None) -> np.ndarray:
    return np.ones_like(close)


def _last_return_sign(close: np.ndarray, prev: float | None) -> np.ndarray:
    """``sign(close[t] / close[t-1] - 1)`` with ``close[-1]`` the bar before the window (past data)."""
    lagged = np.concatenate([[prev if prev is not None else close[0]], close[:-1]])
    return np.sign(close / lagged - 1.0)


BASELINES: dict[str, Callable[[np.ndarray, float | None], np.ndarray]] = {
    "flat": _flat,
    "buy_and_hold": _buy_and_hold,
    "last_return_sign": _last_return_sign,
}
"""Naive baselines run next to the strategy: positions from the test window's closes (and the close
just before it) only."""


@dataclass(slots=True)
class WalkForwardResult:
    """``folds``; ``fold_metrics`` (one row per fold x strategy); ``oos`` (one row per test bar: ts, fold,
    close, regime, ``pos_<name>`` and ``ret_<name>`` per strategy); ``summary`` (stitched out-of-sample
    metrics per strategy); ``regimes`` (per strategy x regime, when labels were given)."""

    folds: list[Fold]
    fold_metrics: pl.DataFrame
    oos: pl.DataFrame
    summary: pl.DataFrame
    regimes: pl.DataFrame | None
    strategies: list[str]
    regime_source: str | None = None

    def equity(self, strategy: str) -> np.ndarray:
        """Stitched out-of-sample equity curve (starting at 1) of one strategy."""
        return np.concatenate([[1.0], np.cumprod(1.0 + self.oos[f"ret_{strategy}"].to_numpy())])


def _predict(model: Any, frame: pl.DataFrame) -> np.ndarray:
    pred = model.predict(frame) if hasattr(model, "predict") else model(frame)
    if isinstance(pred, pl.Series):
        pred = pred.to_numpy()
    return np.asarray(pred, dtype=np.float64).ravel()


_SUMMARY_KEYS = ("total_return", "annualized_return", "sharpe", "sortino", "max_drawdown",
                 "max_drawdown_duration", "win_rate", "profit_factor", "psr")


def walk_forward(
    data: pl.DataFrame,
    fit: Callable[[pl.DataFrame], Any] | Mapping[str, Callable[[pl.DataFrame], Any]],
    *,
    folds: Sequence[Fold] | None = None,
    train: int | str | dt.timedelta = 60,
    test: int | str | dt.timedelta = 7,
    step: int | str | dt.timedelta | None = None,
    gap: int | str | dt.timedelta = 0,
    ts_col: str = "ts",
    price_col: str = "close",
    to_position: Callable[[np.ndarray], np.ndarray] | Mapping[str, Callable[[np.ndarray], np.ndarray]] = np.sign,
    strategy_name: str = "strategy",
    baselines: Sequence[str] = ("flat", "buy_and_hold", "last_return_sign"),
    regime: str | pl.Series | np.ndarray | None = None,
    regime_source: str | None = None,
    fee_rate: float = 0.0,
    slippage_bps: float = 0.0,
    delay: int = 1,
    periods_per_year: float = 252.0,
) -> WalkForwardResult:
    """Fit on each fold's training rows, trade its test rows out of sample, next to naive baselines.

    ``data`` is one row per bar, sorted by ``ts_col``, with ``price_col`` and whatever features ``fit``
    and the predictor use. ``regime`` is a column name of ``data`` or a label per row. Test windows must
    not overlap (``step >= test``) so that the stitched out-of-sample curve counts each bar once.
    ``fit`` (and ``to_position``) may be mappings ``strategy name -> fit`` to run several strategies on the
    same folds; ``regime_source`` is recorded on the result (what the labels are). Missing labels (None)
    count as ``"unlabelled"``.

    Every strategy and baseline is **flat at the end of each test window**: the last ``delay + 1`` targets
    are 0, so the position is closed at the window's second-to-last close and the closing trade pays the
    costs (a position left open would carry into the next fold's window without ever paying its exit).
    """
    fits = dict(fit) if isinstance(fit, Mapping) else {strategy_name: fit}
    if not fits:
        raise ValueError("no strategy to walk forward")
    to_pos = {n: (to_position[n] if isinstance(to_position, Mapping) else to_position) for n in fits}
    clash = [b for b in baselines if b in fits]
    if clash:
        raise ValueError(f"strategy names {clash} clash with the baselines")
    unknown = [b for b in baselines if b not in BASELINES]
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; have {list(BASELINES)}")
    ns = _to_ns(data[ts_col])
    if folds is None:
        folds = make_folds(data[ts_col], train, test, step, gap=gap)
    if not folds:
        raise ValueError("no walk-forward fold fits in the data")
    for a, b in itertools.pairwise(folds):
        if b.test.min() <= a.test.max():
            raise ValueError("test windows overlap; use step >= test")
    for f in folds:
        check_fold(f, ns)
    if isinstance(regime, str):
        labels = data[regime].cast(pl.String).to_numpy()
    elif regime is not None:
        labels = np.asarray(regime.to_list() if isinstance(regime, pl.Series) else regime, dtype=object)
        labels = np.where(_missing(labels), "unlabelled", labels)
        if labels.shape[0] != data.height:
            raise ValueError("regime labels and data differ in length")
    else:
        labels = None
    close_all = data[price_col].cast(pl.Float64).to_numpy()
    names = [*fits, *baselines]
    fold_rows: list[dict[str, Any]] = []
    oos_parts: list[pl.DataFrame] = []
    for fold in folds:
        test_df = data[fold.test]
        close = close_all[fold.test]
        positions: dict[str, np.ndarray] = {}
        for sname, sfit in fits.items():
            model = sfit(data[fold.train])  # the training rows only
            pred = _predict(model, test_df)
            if pred.shape[0] != close.shape[0]:
                raise ValueError(f"fold {fold.index}: {sname} returned {pred.shape[0]} values for "
                                 f"{close.shape[0]} rows")
            positions[sname] = np.nan_to_num(np.asarray(to_pos[sname](pred), dtype=np.float64))
        prev = float(close_all[fold.test[0] - 1]) if fold.test[0] > 0 else None
        for b in baselines:
            positions[b] = BASELINES[b](close, prev)
        part: dict[str, Any] = {"ts": data[ts_col][fold.test], "fold": np.full(close.size, fold.index),
                                "close": close}
        if labels is not None:
            part["regime"] = labels[fold.test].astype(str)
        for name in names:
            target = positions[name].copy()
            target[max(0, target.size - delay - 1):] = 0.0  # flat (and the exit paid) by the window's end
            res = backtest_positions(close, target, fee_rate=fee_rate, slippage_bps=slippage_bps,
                                     delay=delay)
            part[f"pos_{name}"] = res.held
            part[f"ret_{name}"] = res.returns
            m = res.metrics(periods_per_year=periods_per_year)
            fold_rows.append({**fold.describe(), "strategy": name, **{k: m[k] for k in _SUMMARY_KEYS},
                              "n_trades": m["n_trades"], "turnover": m["turnover"]})
        oos_parts.append(pl.DataFrame(part))
    oos = pl.concat(oos_parts)
    summary_rows = []
    regime_frames = []
    for name in names:
        r = oos[f"ret_{name}"].to_numpy()
        eq = np.concatenate([[1.0], np.cumprod(1.0 + r)])
        m = compute_metrics(eq, periods_per_year=periods_per_year)
        held = oos[f"pos_{name}"].to_numpy()
        summary_rows.append({"strategy": name, **{k: m[k] for k in _SUMMARY_KEYS},
                             "exposure": float(np.mean(held != 0)), "n_bars": int(r.size)})
        if labels is not None:
            regime_frames.append(regime_metrics(r, oos["regime"], periods_per_year=periods_per_year,
                                                strategy=name))
    return WalkForwardResult(
        folds=list(folds),
        fold_metrics=pl.DataFrame(fold_rows),
        oos=oos,
        summary=pl.DataFrame(summary_rows),
        regimes=pl.concat(regime_frames) if regime_frames else None,
        strategies=names,
        regime_source=regime_source if labels is not None else None,
    )


def _missing(values: np.ndarray) -> np.ndarray:
    """True where a label is None or a float NaN."""
    return np.array([v is None or (isinstance(v, float) and math.isnan(v)) for v in values.tolist()], dtype=bool)
