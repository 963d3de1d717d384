"""Walk-forward evaluation: every model beside every baseline, scored out of sample on the same events.

For each symbol, fold (:mod:`flowsense.models.folds`) and horizon (:data:`~flowsense.models.targets.HORIZONS`):

1. per fold, the regime HMM is fitted on the training part's 1 s bars and its *causally filtered* state
   probabilities are joined to every event (columns ``reg_p0..``, ``reg_state``; :mod:`flowsense.models.hmm`);
2. every model is fitted on the training rows with labels purged at the validation start
   (:func:`fit_model`), and may use the validation rows (labels purged at the test start) for early
   stopping; the ensemble learns its per-regime weights on the validation part;
3. the model predicts ``P(up)`` for every test event; events with a label are scored.

One row per (model, symbol, horizon, fold): ``model, symbol, horizon, fold, test_start, test_end`` (ISO 8601
UTC, the half-open test window), ``n`` (events scored), ``n_excluded`` (labelled events a baseline abstained
on: predictor exactly 0; 0 for models), ``accuracy`` with ``accuracy_ci_low``/``accuracy_ci_high``, ``f1``
(macro over up/down), ``log_loss`` (``None`` for the no-fit baselines ``majority``, ``ofi_sign``, ``qi_sign``).

Confidence intervals: events are strongly autocorrelated, so the 95 % interval is a **non-overlapping block
bootstrap** over blocks of :data:`CI_BLOCK` consecutive scored events (:data:`CI_BOOT` resamples, percentile
interval), not a binomial (Wilson) interval, which would be far too narrow. :func:`compare` gives the same
kind of interval for the accuracy difference of two models on the events both scored (paired).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowsense.models.base import DirectionModel, ModelError
from flowsense.models.baselines import NO_FIT_BASELINES, LogitOfi, Majority, OfiSign, QiSign
from flowsense.models.dataset import OFI_FEATURES, TICK_FEATURES, SymbolData
from flowsense.models.folds import WFold, assert_not_peeking, check_fold, iso, make_folds, purge
from flowsense.models.targets import HORIZONS

CI_BLOCK = 200
CI_BOOT = 400
BASELINE_NAMES: tuple[str, ...] = ("majority", "ofi_sign", "qi_sign", "logit_ofi")
MODEL_NAMES: tuple[str, ...] = ("xgboost", "hawkes", "transformer", "graph", "ensemble")
ALL_NAMES: tuple[str, ...] = (*BASELINE_NAMES, *MODEL_NAMES)
ENSEMBLE_MEMBERS: tuple[str, ...] = ("logit_ofi", "xgboost", "hawkes", "transformer", "graph")


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------


def block_bootstrap_ci(values: np.ndarray, block: int = CI_BLOCK, n_boot: int = CI_BOOT, alpha: float = 0.05,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile CI of the mean of ``values`` (time-ordered) by resampling non-overlapping blocks."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return float("nan"), float("nan")
    nb = max(1, v.size // block)
    edges = np.linspace(0, v.size, nb + 1).astype(np.int64)
    sums = np.add.reduceat(v, edges[:-1])
    lens = np.diff(edges).astype(np.float64)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, nb, size=(n_boot, nb))
    means = sums[pick].sum(axis=1) / lens[pick].sum(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def score(y: np.ndarray, p: np.ndarray, *, probabilistic: bool = True, abstains: bool = False
          ) -> dict[str, Any]:
    """Scores of ``P(up)`` predictions ``p`` against labels ``y`` (NaN = not scored)."""
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    lab = np.isfinite(y)
    excl = lab & (p == 0.5) if abstains else np.zeros_like(lab)
    ok = lab & ~excl & np.isfinite(p)
    yy = y[ok]
    pred = (p[ok] > 0.5).astype(np.float64)
    n = int(ok.sum())
    out: dict[str, Any] = {"n": n, "n_excluded": int(excl.sum())}
    if n == 0:
        return out | {"accuracy": None, "accuracy_ci_low": None, "accuracy_ci_high": None, "f1": None,
                      "log_loss": None, "up_share": None}
    correct = (pred == yy).astype(np.float64)
    lo, hi = block_bootstrap_ci(correct)
    f1s = []
    for cls in (1.0, 0.0):
        tp = float(np.sum((pred == cls) & (yy == cls)))
        fp = float(np.sum((pred == cls) & (yy != cls)))
        fn = float(np.sum((pred != cls) & (yy == cls)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn > 0 else 0.0)
    ll = None
    if probabilistic:
        q = np.clip(p[ok], 1e-6, 1 - 1e-6)
        ll = float(-np.mean(yy * np.log(q) + (1 - yy) * np.log(1 - q)))
    return out | {"accuracy": float(correct.mean()), "accuracy_ci_low": lo, "accuracy_ci_high": hi,
                  "f1": float(np.mean(f1s)), "log_loss": ll, "up_share": float(yy.mean())}


def compare(y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, *, abstain_a: bool = False,
            abstain_b: bool = False) -> dict[str, Any]:
    """Paired accuracy difference a - b on the events both score, with a block-bootstrap 95 % CI."""
    y = np.asarray(y, dtype=np.float64)
    ok = np.isfinite(y) & np.isfinite(p_a) & np.isfinite(p_b)
    if abstain_a:
        ok &= p_a != 0.5
    if abstain_b:
        ok &= p_b != 0.5
    if not ok.any():
        return {"n": 0, "diff": None, "ci_low": None, "ci_high": None}
    ca = ((p_a[ok] > 0.5) == (y[ok] > 0.5)).astype(np.float64)
    cb = ((p_b[ok] > 0.5) == (y[ok] > 0.5)).astype(np.float64)
    lo, hi = block_bootstrap_ci(ca - cb)
    return {"n": int(ok.sum()), "acc_a": float(ca.mean()), "acc_b": float(cb.mean()),
            "diff": float((ca - cb).mean()), "ci_low": lo, "ci_high": hi}


# ------------------------------------------------------------------------------------------------
# models
# ------------------------------------------------------------------------------------------------


def xgb_features(data: SymbolData) -> list[str]:
    """XGBoost's inputs: tick features, as-of bar features of both clocks and the regime columns."""
    bar = [c for c in data.frame.columns if c.startswith(("b1_", "m1_", "reg_p"))]
    return data.available(TICK_FEATURES) + bar


def make_model(name: str, data: SymbolData, context: dict[str, Any] | None = None, **params: Any
               ) -> DirectionModel:
    """A fresh, unfitted model ``name`` with its feature columns chosen from ``data``'s frame."""
    if name == "majority":
        return Majority()
    if name == "ofi_sign":
        return OfiSign()
    if name == "qi_sign":
        return QiSign()
    if name == "logit_ofi":
        return LogitOfi(data.available(OFI_FEATURES), **params)
    if name == "xgboost":
        from flowsense.models.xgb import XGBoostModel

        return XGBoostModel(xgb_features(data), **params)
    if name == "hawkes":
        from flowsense.models.hawkes import HawkesModel

        return HawkesModel(**params)
    if name == "transformer":
        from flowsense.models.dataset import SEQ_FEATURES
        from flowsense.models.transformer import TransformerModel

        return TransformerModel(data.available(SEQ_FEATURES), **params)
    if name == "graph":
        from flowsense.models.graph import GraphModel, graph_inputs

        return GraphModel(graph_inputs(data), **params)
    if name == "ensemble":
        from flowsense.models.ensemble import EnsembleModel

        members = (context or {}).get("members", ENSEMBLE_MEMBERS)
        return EnsembleModel([f"p_{m}" for m in members] + ["reg_state"], **params)
    raise ModelError(f"unknown model {name!r}; have {', '.join(ALL_NAMES)}")


def fit_model(model: DirectionModel, data: SymbolData, fold: WFold, horizon: str) -> DirectionModel:
    """Fit ``model`` on ``fold``'s training rows (labels purged at the validation start), validation rows
    (purged at the test start) given for early stopping; records ``model.train_window``."""
    ts = data.ts
    y, end = data.y[horizon], data.end[horizon]
    ytr = purge(y[fold.train], end[fold.train], fold.val_start)
    yva = purge(y[fold.val], end[fold.val], fold.test_start)
    Xtr = data.X(model.feature_names, fold.train)
    Xva = data.X(model.feature_names, fold.val)
    model.fit(Xtr, ytr, Xva, yva)
    seen = np.concatenate([end[fold.train][np.isfinite(ytr)], end[fold.val][np.isfinite(yva)], ts[fold.val]])
    model.train_window = (int(ts[fold.train[0]]), int(seen.max()) if seen.size else int(ts[fold.train[-1]]))
    return model


# ------------------------------------------------------------------------------------------------
# walk-forward
# ------------------------------------------------------------------------------------------------


@dataclass
class EvaluationResult:
    """``rows`` (see the module docstring); ``predictions[(symbol, horizon, fold)][model]`` = test P(up);
    ``labels[(symbol, horizon, fold)]`` = test labels; ``folds`` per symbol; ``info`` per model (diagnostics);
    ``timings`` seconds per model."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    predictions: dict[tuple[str, str, int], dict[str, np.ndarray]] = field(default_factory=dict)
    labels: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict)
    folds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "folds": self.folds, "ci_method": f"non-overlapping block bootstrap, "
                f"{CI_BLOCK} events per block, {CI_BOOT} resamples, 95% percentile", "timings_s": self.timings,
                "summary": summarize(self)}


def _tick(res: EvaluationResult, name: str, t0: float) -> None:
    res.timings[name] = res.timings.get(name, 0.0) + time.perf_counter() - t0


def evaluate_symbol(data: SymbolData, folds: Sequence[WFold], *, models: Sequence[str] = ALL_NAMES,
                    horizons: Sequence[str] = HORIZONS, regimes: bool = True,
                    params: dict[str, dict[str, Any]] | None = None, result: EvaluationResult | None = None,
                    progress: Callable[[str], None] | None = None) -> EvaluationResult:
    """Walk-forward evaluation of ``models`` on one symbol (rows appended to ``result``)."""
    res = result or EvaluationResult()
    params = params or {}
    ts = data.ts
    res.folds[data.symbol] = [f.describe() for f in folds]
    need_reg = regimes and any(m in ("ensemble", "xgboost") for m in models)
    for fold in folds:
        check_fold(fold, ts)
        ctx: dict[str, Any] = {}
        if need_reg:
            t0 = time.perf_counter()
            from flowsense.models.hmm import add_regime_columns

            ctx["hmm"] = add_regime_columns(data, fold)
            _tick(res, "hmm", t0)
        if "hawkes" in models:
            t0 = time.perf_counter()
            from flowsense.models.hawkes import fit_process

            ctx["hawkes_process"] = fit_process(data, fold, **params.get("hawkes_process", {}))
            res.info.setdefault("hawkes", {}).setdefault(data.symbol, []).append(ctx["hawkes_process"].summary())
            _tick(res, "hawkes", t0)
        for h in horizons:
            key = (data.symbol, h, fold.index)
            y_test = data.y[h][fold.test]
            res.labels[key] = y_test
            preds: dict[str, np.ndarray] = {}
            val_preds: dict[str, np.ndarray] = {}
            for name in models:
                if name == "ensemble":
                    continue
                t0 = time.perf_counter()
                try:
                    m = make_model(name, data, ctx, **params.get(name, {}))
                    if name == "hawkes":
                        m.use_process(ctx["hawkes_process"])
                    fit_model(m, data, fold, h)
                    assert_not_peeking(m, fold)
                    preds[name] = m.p_up(data.X(m.feature_names, fold.test))
                    if name in ENSEMBLE_MEMBERS and "ensemble" in models:
                        val_preds[name] = m.p_up(data.X(m.feature_names, fold.val))
                except ModelError as exc:
                    if progress:
                        progress(f"{data.symbol} {h} fold {fold.index}: {name} skipped ({exc})")
                    continue
                finally:
                    _tick(res, name, t0)
                res.rows.append(_row(name, m, data.symbol, h, fold, y_test, preds[name]))
                if progress:
                    progress(f"{data.symbol} {h} fold {fold.index}: {name}")
            if "ensemble" in models and val_preds:
                t0 = time.perf_counter()
                from flowsense.models.ensemble import fit_ensemble

                try:
                    ens = fit_ensemble(data, fold, h, val_preds, {k: preds[k] for k in val_preds},
                                       **params.get("ensemble", {}))
                    preds["ensemble"] = ens.predict_test
                    res.rows.append(_row("ensemble", ens.model, data.symbol, h, fold, y_test, ens.predict_test))
                    res.info.setdefault("ensemble_weights", []).append(
                        {"symbol": data.symbol, "horizon": h, "fold": fold.index, **ens.model.info})
                except ModelError as exc:
                    if progress:
                        progress(f"{data.symbol} {h} fold {fold.index}: ensemble skipped ({exc})")
                _tick(res, "ensemble", t0)
            res.predictions[key] = preds
    return res


def _row(name: str, model: DirectionModel, symbol: str, h: str, fold: WFold, y: np.ndarray, p: np.ndarray
         ) -> dict[str, Any]:
    s = score(y, p, probabilistic=model.probabilistic and name not in NO_FIT_BASELINES,
              abstains=model.abstains)
    return {"model": name, "symbol": symbol, "horizon": h, "fold": fold.index, "test_start": iso(fold.test_start),
            "test_end": iso(fold.test_end), **s}


def summarize(res: EvaluationResult) -> list[dict[str, Any]]:
    """Per horizon, pooled over symbols and folds: each model's accuracy (block-bootstrap CI) and its paired
    difference against the best no-fit baseline of that horizon (chosen by pooled accuracy)."""
    out: list[dict[str, Any]] = []
    horizons = sorted({k[1] for k in res.predictions}, key=lambda h: HORIZONS.index(h) if h in HORIZONS else 99)
    for h in horizons:
        keys = [k for k in res.predictions if k[1] == h]
        names = sorted({m for k in keys for m in res.predictions[k]}, key=lambda m: ALL_NAMES.index(m)
                       if m in ALL_NAMES else 99)
        pooled: dict[str, np.ndarray] = {}
        y = np.concatenate([res.labels[k] for k in keys])
        for m in names:
            pooled[m] = np.concatenate([res.predictions[k].get(m, np.full(res.labels[k].size, np.nan)) for k in keys])
        acc = {m: score(y, pooled[m], probabilistic=False, abstains=m in ("ofi_sign", "qi_sign")) for m in names}
        nofit = [m for m in NO_FIT_BASELINES if m in acc and acc[m]["accuracy"] is not None]
        best = max(nofit, key=lambda m: acc[m]["accuracy"]) if nofit else None
        for m in names:
            row: dict[str, Any] = {"horizon": h, "model": m, "n": acc[m]["n"], "accuracy": acc[m]["accuracy"],
                                   "accuracy_ci_low": acc[m]["accuracy_ci_low"],
                                   "accuracy_ci_high": acc[m]["accuracy_ci_high"], "best_no_fit_baseline": best}
            if best is not None and m != best:
                c = compare(y, pooled[m], pooled[best], abstain_a=m in ("ofi_sign", "qi_sign"),
                            abstain_b=best in ("ofi_sign", "qi_sign"))
                row |= {"vs_best_n": c["n"], "vs_best_diff": c["diff"], "vs_best_ci_low": c["ci_low"],
                        "vs_best_ci_high": c["ci_high"]}
            out.append(row)
    return out


def run_evaluation(datas: dict[str, SymbolData], *, train: Any, val: Any, test: Any, step: Any = None,
                   embargo: Any = 0, unit: str = "auto", allow_partial: bool = False, models: Sequence[str] = ALL_NAMES,
                   horizons: Sequence[str] = HORIZONS, params: dict[str, dict[str, Any]] | None = None,
                   progress: Callable[[str], None] | None = None) -> EvaluationResult:
    """Evaluate every symbol of ``datas`` (load them with :func:`flowsense.models.dataset.load_symbol`; call
    :func:`~flowsense.models.dataset.add_cross_asset` first when the graph model is included)."""
    res = EvaluationResult()
    for sym, data in datas.items():
        folds = make_folds(data.ts, train, val, test, step, embargo=embargo, unit=unit,  # type: ignore[arg-type]
                           allow_partial=allow_partial)
        if not folds:
            raise ModelError(f"{sym}: no walk-forward fold fits in {len(data.dates)} day(s) with train={train}, "
                             f"val={val}, test={test}")
        evaluate_symbol(data, folds, models=models, horizons=horizons, params=params, result=res,
                        progress=progress)
    return res
