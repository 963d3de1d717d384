"""Market regimes from a Gaussian HMM (``hmmlearn``) on 1 s bar returns and volatility, filtered causally.

* Inputs per 1 s bar: ``ret_20`` in basis points and ``log(rv_20)`` (:func:`bar_matrix`), standardised with
  the training mean and deviation; bars with a
  missing input contribute no evidence (their emission log-likelihood is 0: the filter only predicts).
* Fit: ``n_restarts`` EM runs from different seeds on the training bars; the run with the best
  **held-out** log-likelihood (validation bars) is kept. States are then **ordered by volatility**
  (mean ``log rv_20``, ascending): state 0 is the calm regime.
* Regime probabilities are **filtered** (forward pass only): ``P(state_t | bars_0..t)``. hmmlearn's
  ``predict_proba``/``predict`` smooth with the backward pass and look ahead (measured: removing later rows
  changes earlier posteriors by up to 0.019); :meth:`RegimeHMM.filter` never does, which the tests check by
  truncation.
* :attr:`RegimeHMM.info` records the held-out log-likelihood per bar of the chosen model and of a 1-state
  model fitted on the same bars (the out-of-sample comparison), the BIC, the transition matrix and the
  expected state durations ``1 / (1 - p_ii)``.

Lake: :func:`regimes_frame` / :func:`write_regimes` produce the derived table ``regimes`` (one row per 1 s
bar: ``symbol, date, ts, regime, p_regime_0..``), and :func:`hmm_regimes` labels bars for the
walk-forward's per-regime results (``regime_0`` calm ... ``regime_{K-1}`` most volatile).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
from numba import njit

from flowsense.models.base import ModelError

REGIMES_TABLE = "regimes"


@njit(cache=True)
def _forward_filter(log_start, log_trans, frame_ll, resets):  # pragma: no cover - numba
    n, k = frame_ll.shape
    out = np.empty((n, k))
    prev = np.empty(k)
    for t in range(n):
        cur = np.empty(k)
        for j in range(k):
            if t == 0 or resets[t]:
                a = log_start[j]
            else:
                m = -np.inf
                for i in range(k):
                    v = prev[i] + log_trans[i, j]
                    if v > m:
                        m = v
                s = 0.0
                for i in range(k):
                    s += np.exp(prev[i] + log_trans[i, j] - m)
                a = m + np.log(s)
            cur[j] = a + frame_ll[t, j]
        m = cur.max()
        s = 0.0
        for j in range(k):
            s += np.exp(cur[j] - m)
        lz = m + np.log(s)
        for j in range(k):
            prev[j] = cur[j] - lz
            out[t, j] = np.exp(prev[j])
    return out


def bar_matrix(bars: pl.DataFrame) -> np.ndarray:
    """HMM inputs ``[ret_20 (bps), log(rv_20)]`` per 1 s bar (NaN where undefined): the 20-bar return rather
    than the 1-bar one, which is exactly 0 on most bars and lets EM spend a state on that point mass."""
    r = bars["ret_20"].cast(pl.Float64).fill_null(np.nan).to_numpy() * 1e4
    rv = bars["rv_20"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        lv = np.log(np.where(rv > 0, rv, np.nan))
    return np.column_stack([r, lv])


def _score(m: Any, X: np.ndarray, lengths: list[int]) -> float:
    try:
        return float(m.score(X, lengths))
    except ValueError:  # underflow in the scaled forward pass
        impl = m.implementation
        m.implementation = "log"
        try:
            return float(m.score(X, lengths))
        finally:
            m.implementation = impl


def _lengths(day: np.ndarray) -> list[int]:
    if day.size == 0:
        return []
    cut = np.flatnonzero(np.diff(day) != 0) + 1
    return np.diff(np.concatenate([[0], cut, [day.size]])).astype(int).tolist()


class RegimeHMM:
    """Gaussian HMM regimes (see the module docstring)."""

    def __init__(self, n_states: int = 3, n_restarts: int = 3, n_iter: int = 40, max_fit_bars: int = 40_000,
                 seed: int = 0) -> None:
        self.n_states = n_states
        self.n_restarts = n_restarts
        self.n_iter = n_iter
        self.max_fit_bars = max_fit_bars
        self.seed = seed
        self.model: Any = None
        self.mu = np.zeros(2)
        self.sd = np.ones(2)
        self.info: dict[str, Any] = {}

    def _fit_one(self, X: np.ndarray, lengths: list[int], k: int, seed: int) -> Any:
        from hmmlearn.hmm import GaussianHMM

        # means from random rows of each volatility quantile band (sklearn's k-means init is slow on a busy box)
        rng = np.random.default_rng(seed)
        order = np.argsort(X[:, 1], kind="stable")
        bands = np.array_split(order, k)
        means = np.array([X[rng.choice(b, size=min(50, b.size), replace=False)].mean(axis=0) for b in bands])

        def fresh(implementation: str) -> Any:
            m = GaussianHMM(n_components=k, covariance_type="diag", n_iter=self.n_iter, random_state=seed,
                            min_covar=1e-3, implementation=implementation, init_params="stc")
            m.means_ = means
            return m

        m = fresh("scaling")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                m.fit(X, lengths)
            except ValueError:  # "forward pass failed with underflow": redo in log space (slower, exact)
                m = fresh("log")  # a new model: refitting the old one logs a warning per parameter
                m.fit(X, lengths)
        m.implementation = "log"  # scoring in log space never underflows (EM above ran scaled for speed)
        return m

    def fit(self, X: np.ndarray, day: np.ndarray, X_val: np.ndarray | None = None,
            day_val: np.ndarray | None = None) -> RegimeHMM:
        """Fit on complete rows of ``X`` (bars of the training part; ``day`` = day id per row to split
        sequences); keep the restart with the best log-likelihood on ``X_val`` (else on ``X``)."""
        ok = np.isfinite(X).all(axis=1)
        Xf, df = X[ok], np.asarray(day)[ok]
        if Xf.shape[0] > self.max_fit_bars:  # the most recent bars
            Xf, df = Xf[-self.max_fit_bars:], df[-self.max_fit_bars:]
        if Xf.shape[0] < 10 * self.n_states:
            raise ModelError(f"hmm: {Xf.shape[0]} complete bars, too few to fit {self.n_states} states")
        self.mu = Xf.mean(axis=0)
        self.sd = np.where(Xf.std(axis=0) > 0, Xf.std(axis=0), 1.0)
        Xf = (Xf - self.mu) / self.sd
        lengths = _lengths(df)
        if X_val is not None and day_val is not None:
            vok = np.isfinite(X_val).all(axis=1)
            Xv, lv = (X_val[vok] - self.mu) / self.sd, _lengths(np.asarray(day_val)[vok])
        else:
            Xv, lv = Xf, lengths
        if Xv.shape[0] == 0:
            Xv, lv = Xf, lengths
        best, best_ll, lls = None, -np.inf, []
        for r in range(self.n_restarts):
            m = self._fit_one(Xf, lengths, self.n_states, self.seed + r)
            ll = _score(m, Xv, lv)
            lls.append(ll)
            if ll > best_ll:
                best, best_ll = m, ll
        one = self._fit_one(Xf, lengths, 1, self.seed)
        ll1 = _score(one, Xv, lv)
        self.model = self._ordered(best)
        trans = self.model.transmat_
        with np.errstate(divide="ignore"):
            dur = 1.0 / (1.0 - np.diag(trans))
        self.info = {
            "n_states": self.n_states, "n_fit_bars": int(Xf.shape[0]), "n_heldout_bars": int(Xv.shape[0]),
            "heldout_loglik_per_bar": best_ll / max(Xv.shape[0], 1),
            "heldout_loglik_per_bar_1state": ll1 / max(Xv.shape[0], 1),
            "restart_heldout_loglik": lls, "bic": float(self.model.bic(Xf, lengths)),
            "bic_1state": float(one.bic(Xf, lengths)), "transmat": trans.tolist(),
            "expected_duration_bars": dur.tolist(), "state_means": self.model.means_.tolist(),
        }
        return self

    def _ordered(self, m: Any) -> Any:
        order = np.argsort(m.means_[:, 1])  # by mean log volatility: 0 = calm
        if np.all(order == np.arange(order.size)):
            return m
        from hmmlearn.hmm import GaussianHMM

        o = GaussianHMM(n_components=m.n_components, covariance_type="diag", init_params="", params="",
                        implementation="log")
        o.startprob_ = m.startprob_[order]
        o.transmat_ = m.transmat_[np.ix_(order, order)]
        o.means_ = m.means_[order]
        o.covars_ = np.array([np.diag(c) for c in m.covars_[order]])
        o.n_features = m.n_features
        return o

    def frame_loglik(self, X: np.ndarray) -> np.ndarray:
        """Emission log-likelihood per row and state (0 for rows with a missing input)."""
        if self.model is None:
            raise ModelError("hmm: not fitted")
        ok = np.isfinite(X).all(axis=1)
        out = np.zeros((X.shape[0], self.n_states))
        if ok.any():
            out[ok] = self.model._compute_log_likelihood((X[ok] - self.mu) / self.sd)  # hmmlearn 0.3.3 (pinned)
        return out

    def filter(self, X: np.ndarray, day: np.ndarray | None = None) -> np.ndarray:
        """Causal state probabilities ``P(s_t | x_0..t)`` (forward pass; restarts at each new ``day``)."""
        ll = self.frame_loglik(np.asarray(X, dtype=np.float64))
        resets = np.zeros(ll.shape[0], dtype=np.bool_)
        if day is not None and ll.shape[0]:
            d = np.asarray(day)
            resets[1:] = d[1:] != d[:-1]
        with np.errstate(divide="ignore"):
            return _forward_filter(np.log(self.model.startprob_), np.log(self.model.transmat_), ll, resets)


def _bar_days(bars: pl.DataFrame) -> np.ndarray:
    return bars["date"].cast(pl.Int32).to_numpy() if "date" in bars.columns else np.zeros(bars.height, np.int32)


def fit_bars(bars: pl.DataFrame, train_end_ns: int, val_end_ns: int | None = None, **kw: Any) -> RegimeHMM:
    """Fit a :class:`RegimeHMM` on the bars ending before ``train_end_ns``; held-out = bars up to ``val_end_ns``."""
    ts = bars["ts"].dt.epoch("ns").to_numpy()
    X = bar_matrix(bars)
    day = _bar_days(bars)
    tr = ts < train_end_ns
    va = (ts >= train_end_ns) & (ts < val_end_ns) if val_end_ns is not None else None
    return RegimeHMM(**kw).fit(X[tr], day[tr], None if va is None else X[va], None if va is None else day[va])


def regimes_frame(bars: pl.DataFrame, hmm: RegimeHMM) -> pl.DataFrame:
    """The ``regimes`` table for ``bars`` (one 1 s bar table, possibly several days): filtered probabilities."""
    p = hmm.filter(bar_matrix(bars), _bar_days(bars))
    cols = [pl.Series(f"p_regime_{k}", p[:, k]) for k in range(hmm.n_states)]
    keys = [c for c in ("symbol", "date") if c in bars.columns]
    return bars.select(*keys, "ts").with_columns(
        pl.Series("regime", p.argmax(axis=1).astype(np.int8)), *cols)


def write_regimes(lake: Any, bars_by_part: dict[Any, pl.DataFrame], hmm: RegimeHMM) -> list[Any]:
    """Write the ``regimes`` derived table for each partition (via :meth:`Lake.write_derived`)."""
    return [lake.write_derived(REGIMES_TABLE, part, regimes_frame(b, hmm)) for part, b in bars_by_part.items()]


def add_regime_columns(data: Any, fold: Any, **kw: Any) -> RegimeHMM:
    """Fit the fold's HMM (train bars, held-out = validation bars) and join its filtered probabilities to
    every event as of the last closed bar: columns ``reg_p0..`` and ``reg_state`` (-1 before any bar)."""
    hmm = fit_bars(data.bars, fold.val_start, fold.test_start, **kw)
    reg = regimes_frame(data.bars, hmm)
    right = reg.select(pl.col("ts").alias("_reg_ts"), pl.col("regime").cast(pl.Float64).alias("reg_state"),
                       *[pl.col(f"p_regime_{k}").alias(f"reg_p{k}") for k in range(hmm.n_states)])
    f = data.frame.drop([c for c in data.frame.columns if c.startswith("reg_")])
    f = f.join_asof(right, left_on="ts", right_on="_reg_ts", strategy="backward")
    # a bar from a previous day is not evidence for today: only bars of the same day count
    same_day = f["_reg_ts"].dt.date() == f["ts"].dt.date()
    f = f.with_columns([pl.when(same_day).then(pl.col(c)).otherwise(None).alias(c)
                        for c in ["reg_state", *[f"reg_p{k}" for k in range(hmm.n_states)]]]).drop("_reg_ts")
    data.frame = f.with_columns(pl.col("reg_state").fill_null(-1.0))
    return hmm


def hmm_regimes(close: Any, *, window: int = 20, n_states: int = 3, train_share: float = 0.5,
                labels: Sequence[str] | None = None, seed: int = 0) -> pl.Series:
    """Regime label per bar from closes, for stratified results (replaces rolling-vol terciles).

    Features: one-bar log return (bps) and ``log`` of its trailing ``window`` standard deviation (closes up
    to ``t`` only). The HMM is fitted on the first ``train_share`` of the bars (held-out = the rest) and
    the labels are the argmax of the **causally filtered** probabilities (never smoothed), ordered by
    volatility: ``regime_0`` calm .. ``regime_{K-1}`` most volatile; ``"warmup"`` before the first complete
    input.
    """
    c = close if isinstance(close, pl.Series) else pl.Series(np.asarray(close, dtype=np.float64))
    lr = c.cast(pl.Float64).log().diff()
    vol = lr.rolling_std(window_size=window, min_samples=window)
    with np.errstate(divide="ignore", invalid="ignore"):
        X = np.column_stack([lr.fill_null(np.nan).to_numpy() * 1e4,
                             np.log(np.where(vol.fill_null(np.nan).to_numpy() > 0, vol.fill_null(np.nan).to_numpy(),
                                             np.nan))])
    n = X.shape[0]
    names = list(labels) if labels is not None else [f"regime_{k}" for k in range(n_states)]
    ok = np.isfinite(X).all(axis=1)
    cut = int(n * train_share)
    try:
        hmm = RegimeHMM(n_states=n_states, seed=seed).fit(X[:cut], np.zeros(cut), X[cut:], np.zeros(n - cut))
    except ModelError:
        return pl.Series("regime", ["warmup"] * n, dtype=pl.String)
    p = hmm.filter(X)
    out = np.asarray(names, dtype=object)[p.argmax(axis=1)]
    first = int(np.argmax(ok)) if ok.any() else n
    out[:first] = "warmup"
    return pl.Series("regime", out.tolist(), dtype=pl.String)


# ---- regimes for backtest reports and the bar walk-forward ---------------------------------------
REGIME_SOURCES = {
    "hmm_table": "the lake's `regimes` table (causally filtered HMM probabilities)",
    "hmm_prior_days": "an HMM fitted on the symbol's earlier days' 1 s bars, filtered causally over the day",
    "hmm_fold_train": "an HMM fitted on each fold's training bars, filtered causally through its test bars",
    "rolling_vol_terciles": "fallback: terciles of the trailing rolling volatility (no regime model available)",
}
"""What each ``regime_source`` of a backtest / walk-forward report means."""


def _labels(states: np.ndarray) -> np.ndarray:
    return np.array([f"regime_{int(k)}" for k in states], dtype=object)


def table_regimes(lake: Any, symbol: str, date: Any) -> pl.DataFrame | None:
    """``ts, regime`` (``regime_0`` calm ..) of the partition's ``regimes`` table, or None when absent."""
    from flowsense.data.lake import Partition

    part = Partition(symbol, date)
    if not lake.exists(REGIMES_TABLE, part):
        return None
    t = lake.read(REGIMES_TABLE, part, columns=["ts", "regime"]).sort("ts")
    if t.height == 0:
        return None
    return pl.DataFrame({"ts": t["ts"], "regime": _labels(t["regime"].to_numpy()).tolist()},
                        schema={"ts": t["ts"].dtype, "regime": pl.String})


def _complete_bars(bars: pl.DataFrame) -> pl.DataFrame:
    b = bars.filter(~pl.col("partial")) if "partial" in bars.columns else bars
    return b.sort("ts")


def prior_day_regimes(lake: Any, symbol: str, date: Any, bars: pl.DataFrame | None = None, *,
                      max_days: int = 5, table: str = "features_1s", **kw: Any) -> pl.DataFrame | None:
    """``ts, regime`` for the day's bars from an HMM fitted on up to ``max_days`` earlier days of ``symbol``
    (never on the day itself), filtered forward only; None without an earlier day or when the fit fails."""
    from flowsense.data.lake import Partition

    earlier = sorted((p for p in lake.partitions(table) if p.symbol == symbol and p.date < date),
                     key=lambda p: p.date)[-max_days:]
    if not earlier:
        return None
    if bars is None:
        part = Partition(symbol, date)
        if not lake.exists(table, part):
            return None
        bars = lake.read(table, part)
    past = pl.concat([_complete_bars(lake.read(table, p)) for p in earlier], how="diagonal_relaxed")
    kw.setdefault("n_restarts", 2)
    try:
        hmm = RegimeHMM(**kw).fit(bar_matrix(past), _bar_days(past))
    except (ModelError, ValueError):
        return None
    day = _complete_bars(bars)
    p = hmm.filter(bar_matrix(day))
    return pl.DataFrame({"ts": day["ts"], "regime": _labels(p.argmax(axis=1)).tolist()},
                        schema={"ts": day["ts"].dtype, "regime": pl.String})


def fold_regimes(bars: pl.DataFrame, folds: Sequence[Any], **kw: Any) -> np.ndarray | None:
    """A label per row of ``bars`` (sorted by ``ts``) for the walk-forward's per-regime table: for each fold
    an HMM fitted on the fold's **training rows only**, filtered forward from the training start through
    the test rows; test rows get that fold's labels (``None`` elsewhere). None when no fold's HMM fits.

    Causal: a test label depends on the training rows and the test rows up to itself, never on later rows.
    """
    X = bar_matrix(bars)
    out = np.full(bars.height, None, dtype=object)
    kw.setdefault("n_restarts", 2)
    fitted = 0
    for f in folds:
        try:
            hmm = RegimeHMM(**kw).fit(X[f.train], np.zeros(f.train.size))
        except (ModelError, ValueError):
            continue
        lo, hi = int(f.train[0]), int(f.test[-1]) + 1
        p = hmm.filter(X[lo:hi])
        out[f.test] = _labels(p[f.test - lo].argmax(axis=1))
        fitted += 1
    return out if fitted else None
