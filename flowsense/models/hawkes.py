"""Multivariate Hawkes order flow (``tick``) and the OFI forecast it implies, scored like every model.

Dimensions (:data:`flowsense.models.dataset.HAWKES_DIM_NAMES`): market buy, market sell, limit add bid,
limit add ask, cancel bid, cancel ask (LOBSTER executions are classified by the resting side: a hit bid is
a market sell). Kernel: sum of exponentials ``phi_ij(t) = sum_u a_iju b_u exp(-b_u t)`` with fixed decays
``b_u`` (``HawkesSumExpKern``, least-squares fit, L2 penalty), one realization per training sub-window,
each rebased to start at 0 s (tick is biased by a large time origin; see ``shared/notes/models.md``).

Reported (:meth:`HawkesProcess.summary`): the baselines ``mu_i``, the branching matrix
``G_ij = sum_u a_iju`` (expected number of type-i children of one type-j event), its spectral radius (the
endogeneity) with a **bootstrap CI over sub-windows** (the training window cut into ``n_windows`` pieces,
resampled with replacement, refitted), and a goodness-of-fit test: the time-rescaled inter-arrival times
``Lambda_i(t_{k-1}, t_k)`` (compensator of the fitted intensity) are Exp(1) under the model; KS statistic
and p-value against Exp(1), next to the same test for a homogeneous Poisson fit (the contrast).

Forecast: right after each event ``t`` the fitted intensities give the expected number of events of
each type in ``(t, t + D]`` (first order: baseline plus the decay of the current excitation),
``E_i = mu_i D + sum_ju a_iju R_ju(t) (1 - exp(-b_u D))``; the OFI forecast is
``sum_i s_i m_i E_i`` with signs ``s`` = (+, -, +, -, -, +) and ``m_i`` the mean size of type-i events in
training. :class:`HawkesModel` maps that forecast to ``P(up)`` with a one-feature logistic calibration
fitted on the training labels. ``D`` is the horizon for 100 ms / 500 ms, else 500 ms (``forecast_ms``).
"""

from __future__ import annotations

import itertools
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from flowsense.models.base import DirectionModel, ModelError
from flowsense.models.dataset import HAWKES_COLUMNS, HAWKES_DIM_NAMES, N_HAWKES_DIMS

OFI_SIGNS = np.array([1.0, -1.0, 1.0, -1.0, -1.0, 1.0])
DEFAULT_DECAYS = (2.0, 20.0, 200.0)


@njit(cache=True)
def _pass(t, dim, day, mu, alpha, beta, horizon):  # pragma: no cover - numba
    """Expected counts per type in (t, t+horizon] after each row, and the time-rescaled residuals.

    ``alpha`` (D, D, U): influence of type j on type i through decay u. State ``R[j, u]`` = sum over past
    type-j events of exp(-b_u (t - t_k)), reset at each new day.
    """
    n = t.shape[0]
    D = mu.shape[0]
    U = beta.shape[0]
    R = np.zeros((D, U))
    comp = np.zeros(D)  # compensator accumulated since the last event of each type
    seen = np.zeros(D, dtype=np.bool_)
    expct = np.empty((n, D))
    resid = np.empty(n)
    rdim = np.empty(n, dtype=np.int64)
    nres = 0
    decay_h = np.exp(-beta * horizon)
    last_t = t[0] if n else 0.0
    last_day = day[0] if n else 0
    for k in range(n):
        if day[k] != last_day:
            R[:, :] = 0.0
            comp[:] = 0.0
            seen[:] = False
            last_day = day[k]
            last_t = t[k]
        dt = t[k] - last_t
        if dt > 0:
            for u in range(U):
                f = 1.0 - np.exp(-beta[u] * dt)
                for i in range(D):
                    s = 0.0
                    for j in range(D):
                        s += alpha[i, j, u] * R[j, u]
                    comp[i] += s * f
            for i in range(D):
                comp[i] += mu[i] * dt
            for u in range(U):
                e = np.exp(-beta[u] * dt)
                for j in range(D):
                    R[j, u] *= e
        last_t = t[k]
        d = dim[k]
        if d >= 0:
            if seen[d]:
                resid[nres] = comp[d]
                rdim[nres] = d
                nres += 1
            seen[d] = True
            comp[d] = 0.0
            for u in range(U):
                R[d, u] += 1.0
        for i in range(D):
            s = mu[i] * horizon
            for u in range(U):
                a = 0.0
                for j in range(D):
                    a += alpha[i, j, u] * R[j, u]
                s += a * (1.0 - decay_h[u])
            expct[k, i] = s
    return expct, resid[:nres], rdim[:nres]


@njit(cache=True)
def collapse_bursts(t, dim):  # pragma: no cover - numba
    """``dim`` with repeats removed: an event of the same type at the same timestamp as the previous one of
    that type (a marketable order walking several resting orders is one LOBSTER row per order touched)
    becomes -1, so one order is one point of the process."""
    out = dim.copy()
    last = np.full(6, -1.0)
    for k in range(t.shape[0]):
        d = dim[k]
        if d >= 0:
            if t[k] == last[d]:
                out[k] = -1
            last[d] = t[k]
    return out


def _realizations(t: np.ndarray, dim: np.ndarray, n_windows: int) -> list[list[np.ndarray]]:
    """The rows cut into ``n_windows`` equal-time pieces, each rebased to 0 s: one list of D arrays each."""
    if t.size == 0:
        return []
    edges = np.linspace(t[0], t[-1] + 1e-9, n_windows + 1)
    out = []
    for a, b in itertools.pairwise(edges):
        m = (t >= a) & (t < b)
        out.append([np.ascontiguousarray(np.sort(t[m & (dim == d)] - a), dtype=np.float64) for d in range(N_HAWKES_DIMS)])
    return [r for r in out if all(x.size >= 2 for x in r)]


def _fit_tick(reals: list[list[np.ndarray]], decays: np.ndarray, C: float, max_iter: int = 100) -> tuple[np.ndarray, np.ndarray]:
    from tick.hawkes import HawkesSumExpKern

    learner = HawkesSumExpKern(decays=decays, penalty="l2", C=C, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learner.fit(reals)
    return np.asarray(learner.baseline, dtype=np.float64).copy(), np.asarray(learner.adjacency, dtype=np.float64).copy()


def spectral_radius(branching: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(branching))))


def _ks_exp1(x: np.ndarray) -> tuple[float, float]:
    from scipy import stats

    if x.size < 5:
        return float("nan"), float("nan")
    r = stats.kstest(x, "expon")
    return float(r.statistic), float(r.pvalue)


class HawkesProcess:
    """A fitted 6-type Hawkes process (see the module docstring)."""

    def __init__(self, mu: np.ndarray, alpha: np.ndarray, decays: np.ndarray, mean_size: np.ndarray) -> None:
        self.mu = np.asarray(mu, dtype=np.float64)
        self.alpha = np.asarray(alpha, dtype=np.float64)
        self.decays = np.asarray(decays, dtype=np.float64)
        self.mean_size = np.asarray(mean_size, dtype=np.float64)
        self.stats: dict[str, Any] = {}

    @property
    def branching(self) -> np.ndarray:
        return self.alpha.sum(axis=2)

    def expected_counts(self, t: np.ndarray, dim: np.ndarray, day: np.ndarray, horizon_s: float) -> np.ndarray:
        t = np.asarray(t, np.float64)
        e, _, _ = _pass(t, collapse_bursts(t, np.asarray(dim, np.int64)), np.asarray(day, np.int64), self.mu,
                        self.alpha, self.decays, float(horizon_s))
        return e

    def ofi_forecast(self, t: np.ndarray, dim: np.ndarray, day: np.ndarray, horizon_s: float) -> np.ndarray:
        return self.expected_counts(t, dim, day, horizon_s) @ (OFI_SIGNS * self.mean_size)

    def residuals(self, t: np.ndarray, dim: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(t, np.float64)
        _, r, d = _pass(t, collapse_bursts(t, np.asarray(dim, np.int64)), np.asarray(day, np.int64), self.mu,
                        self.alpha, self.decays, 0.0)
        return r, d

    def goodness_of_fit(self, t: np.ndarray, dim: np.ndarray, day: np.ndarray) -> dict[str, Any]:
        """KS of the time-rescaled residuals vs Exp(1), per type and pooled, and for a Poisson fit."""
        r, d = self.residuals(t, dim, day)
        dim = collapse_bursts(np.asarray(t, np.float64), np.asarray(dim, np.int64))
        out: dict[str, Any] = {}
        ks, p = _ks_exp1(r)
        out["ks_hawkes"], out["ks_p_hawkes"] = ks, p
        # homogeneous Poisson per type and day: residuals = rate * inter-arrival time
        pr = []
        for dd in np.unique(day):
            m = day == dd
            tt, dm = t[m], dim[m]
            span = max(tt[-1] - tt[0], 1e-9)
            for i in range(N_HAWKES_DIMS):
                ti = tt[dm == i]
                if ti.size > 2:
                    pr.append(np.diff(ti) * ti.size / span)
        pois = np.concatenate(pr) if pr else np.empty(0)
        out["ks_poisson"], out["ks_p_poisson"] = _ks_exp1(pois)
        out["ks_by_type"] = {HAWKES_DIM_NAMES[i]: _ks_exp1(r[d == i])[0] for i in range(N_HAWKES_DIMS)}
        out["n_residuals"] = int(r.size)
        return out

    def summary(self) -> dict[str, Any]:
        return {"dims": list(HAWKES_DIM_NAMES), "baseline": self.mu.tolist(), "branching": self.branching.tolist(),
                "decays": self.decays.tolist(), "spectral_radius": spectral_radius(self.branching), **self.stats}

    def to_dict(self) -> dict[str, Any]:
        return {"mu": self.mu.tolist(), "alpha": self.alpha.tolist(), "decays": self.decays.tolist(),
                "mean_size": self.mean_size.tolist(), "stats": self.stats}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> HawkesProcess:
        p = cls(np.array(d["mu"]), np.array(d["alpha"]), np.array(d["decays"]), np.array(d["mean_size"]))
        p.stats = d.get("stats", {})
        return p


def fit_arrays(t: np.ndarray, dim: np.ndarray, day: np.ndarray, size: np.ndarray, *,
               decays: tuple[float, ...] = DEFAULT_DECAYS, C: float = 1e3, n_windows: int = 8,
               n_boot: int = 10, seed: int = 0, gof: bool = True) -> HawkesProcess:
    """Fit on event rows (``t`` seconds within the day, ``dim`` type or -1, ``day`` id, ``size`` shares)."""
    t = np.asarray(t, np.float64)
    dim = collapse_bursts(t, np.asarray(dim, np.int64))
    day = np.asarray(day, np.int64)
    reals: list[list[np.ndarray]] = []
    per_day = max(1, n_windows // max(1, np.unique(day).size))
    for dd in np.unique(day):
        m = day == dd
        reals += _realizations(t[m], dim[m], per_day)
    if len(reals) < 2:
        raise ModelError(f"hawkes: {len(reals)} usable sub-window(s) (each type needs >= 2 events in each)")
    dec = np.asarray(decays, dtype=np.float64)
    mu, alpha = _fit_tick(reals, dec, C)
    size = np.asarray(size, np.float64)
    mean_size = np.array([np.nanmean(size[dim == i]) if np.any(dim == i) else 0.0 for i in range(N_HAWKES_DIMS)])
    proc = HawkesProcess(mu, alpha, dec, np.nan_to_num(mean_size))
    rng = np.random.default_rng(seed)
    radii = []
    for _ in range(n_boot):
        pick = rng.integers(0, len(reals), len(reals))
        try:
            _, a = _fit_tick([reals[i] for i in pick], dec, C)
        except Exception:
            continue
        radii.append(spectral_radius(a.sum(axis=2)))
    lo, hi = (np.quantile(radii, [0.025, 0.975]).tolist() if len(radii) >= 5 else [float("nan")] * 2)
    proc.stats = {"spectral_radius_ci": [lo, hi], "n_boot": len(radii), "n_windows": len(reals),
                  "n_events": int(np.sum(dim >= 0)), "ci_method": "bootstrap over training sub-windows"}
    if gof:
        proc.stats["gof"] = proc.goodness_of_fit(t, dim, day)
    return proc


def fit_process(data: Any, fold: Any, **kw: Any) -> HawkesProcess:
    """Fit on a fold's training rows of a :class:`~flowsense.models.dataset.SymbolData`."""
    X = data.X(list(HAWKES_COLUMNS), fold.train)
    return fit_arrays(X[:, 0], X[:, 1].astype(np.int64), X[:, 3].astype(np.int64), X[:, 2], **kw)


def _horizon_s(params: dict[str, Any]) -> float:
    return float(params.get("forecast_ms", 500.0)) / 1000.0


class HawkesModel(DirectionModel):
    """Direction from the Hawkes OFI forecast (columns :data:`~flowsense.models.dataset.HAWKES_COLUMNS`)."""

    kind = "hawkes"

    def __init__(self, feature_names: list[str] | None = None, forecast_ms: float = 500.0, **params: Any) -> None:
        super().__init__(feature_names or list(HAWKES_COLUMNS), forecast_ms=forecast_ms, **params)
        self.process: HawkesProcess | None = None
        self.a = 0.0
        self.b = 1.0
        self.scale = 1.0

    def use_process(self, proc: HawkesProcess) -> HawkesModel:
        """Reuse a process already fitted on the same training rows (one fit per fold, all horizons)."""
        self.process = proc
        return self

    def forecast(self, X: np.ndarray) -> np.ndarray:
        assert self.process is not None
        return self.process.ofi_forecast(self.col(X, "t_day"), self.col(X, "hk_dim").astype(np.int64),
                                         self.col(X, "day").astype(np.int64), _horizon_s(self.params))

    def _fit(self, X, y, X_val, y_val) -> None:
        if self.process is None:
            kw = {k: v for k, v in self.params.items() if k in ("decays", "C", "n_windows", "n_boot", "seed")}
            self.process = fit_arrays(self.col(X, "t_day"), self.col(X, "hk_dim").astype(np.int64),
                                      self.col(X, "day").astype(np.int64), self.col(X, "ev_size"), **kw)
        f = self.forecast(X)
        ok = np.isfinite(y) & np.isfinite(f)
        if ok.sum() < 10 or len(np.unique(y[ok])) < 2:
            raise ModelError("hawkes: fewer than 10 labelled training events or one class only")
        from sklearn.linear_model import LogisticRegression

        self.scale = float(np.std(f[ok])) or 1.0
        lr = LogisticRegression(C=1.0).fit((f[ok] / self.scale)[:, None], y[ok].astype(int))
        self.a, self.b = float(lr.intercept_[0]), float(lr.coef_[0, 0])
        self.info = {**self.process.summary(), "calibration": [self.a, self.b, self.scale]}

    def p_up(self, X: np.ndarray) -> np.ndarray:
        if self.process is None:
            raise ModelError("hawkes: not fitted")
        f = np.nan_to_num(self.forecast(self._check(X)) / self.scale)
        return 1.0 / (1.0 + np.exp(-(self.a + self.b * f)))

    def _save(self, path: Path) -> dict[str, Any]:
        assert self.process is not None
        (path / "hawkes.json").write_text(json.dumps({"process": self.process.to_dict(), "a": self.a, "b": self.b,
                                                      "scale": self.scale}, default=float))
        return {"file": "hawkes.json"}

    def _load(self, path: Path, extra: dict[str, Any]) -> None:
        d = json.loads((path / "hawkes.json").read_text())
        self.process = HawkesProcess.from_dict(d["process"])
        self.a, self.b, self.scale = float(d["a"]), float(d["b"]), float(d["scale"])


MODEL_CLASS = HawkesModel
