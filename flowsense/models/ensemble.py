"""Regime-aware ensemble: per HMM regime, convex weights over the members' ``P(up)``, learned on validation.

Inputs (feature names): ``p_<member>`` for each member model and ``reg_state`` (the causally filtered HMM
regime of the event, -1 before the first bar). For each regime with at least ``min_events`` labelled
validation events the weights minimise the validation log loss (softmax-parametrised, L-BFGS); other
regimes use the weights learned on all validation events. Members are fitted on the training part only,
so the validation predictions are out of sample for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from flowsense.models.base import DirectionModel, ModelError


def _fit_weights(P: np.ndarray, y: np.ndarray) -> np.ndarray:
    from scipy.optimize import minimize

    Pc = np.clip(P, 1e-4, 1 - 1e-4)

    def loss(z: np.ndarray) -> float:
        w = np.exp(z - z.max())
        w /= w.sum()
        q = np.clip(Pc @ w, 1e-6, 1 - 1e-6)
        return float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))

    r = minimize(loss, np.zeros(P.shape[1]), method="L-BFGS-B")
    w = np.exp(r.x - r.x.max())
    return w / w.sum()


class EnsembleModel(DirectionModel):
    kind = "ensemble"

    def __init__(self, feature_names: list[str], min_events: int = 200, **params: Any) -> None:
        super().__init__(feature_names, min_events=min_events, **params)
        self.weights: dict[int, np.ndarray] = {}
        self.default = np.array([])

    @property
    def members(self) -> list[str]:
        return [c[2:] for c in self.feature_names if c.startswith("p_")]

    def _fit(self, X, y, X_val, y_val) -> None:
        P = X[:, :-1]
        reg = X[:, -1].astype(np.int64)
        ok = np.isfinite(y) & np.isfinite(P).all(axis=1)
        if ok.sum() < 20:
            raise ModelError("ensemble: fewer than 20 labelled validation events")
        self.default = _fit_weights(P[ok], y[ok])
        self.weights = {}
        for r in np.unique(reg[ok]):
            m = ok & (reg == r)
            if m.sum() >= int(self.params["min_events"]) and len(np.unique(y[m])) == 2:
                self.weights[int(r)] = _fit_weights(P[m], y[m])
        self.info = {"members": self.members, "weights_all": self.default.tolist(),
                     "weights_by_regime": {str(k): v.tolist() for k, v in self.weights.items()},
                     "n_val": int(ok.sum())}

    def p_up(self, X: np.ndarray) -> np.ndarray:
        X = self._check(X)
        P = np.nan_to_num(X[:, :-1], nan=0.5)
        reg = X[:, -1].astype(np.int64)
        W = np.tile(self.default, (X.shape[0], 1))
        for r, w in self.weights.items():
            W[reg == r] = w
        return np.sum(P * W, axis=1)

    def _save(self, path: Path) -> dict[str, Any]:
        (path / "ensemble.json").write_text(json.dumps({"default": self.default.tolist(),
                                                        "weights": {str(k): v.tolist() for k, v in self.weights.items()}}))
        return {"file": "ensemble.json"}

    def _load(self, path: Path, extra: dict[str, Any]) -> None:
        d = json.loads((path / "ensemble.json").read_text())
        self.default = np.asarray(d["default"])
        self.weights = {int(k): np.asarray(v) for k, v in d["weights"].items()}


@dataclass
class FittedEnsemble:
    model: EnsembleModel
    predict_test: np.ndarray


def fit_ensemble(data: Any, fold: Any, horizon: str, val_preds: dict[str, np.ndarray],
                 test_preds: dict[str, np.ndarray], **params: Any) -> FittedEnsemble:
    """Learn the per-regime weights on ``fold``'s validation part (labels purged at the test start) from the
    members' validation predictions, and apply them to their test predictions."""
    from flowsense.models.folds import purge

    members = list(val_preds)
    names = [f"p_{m}" for m in members] + ["reg_state"]
    reg = data.frame["reg_state"].to_numpy() if "reg_state" in data.frame.columns else np.full(data.frame.height, -1.0)
    Xv = np.column_stack([val_preds[m] for m in members] + [reg[fold.val]])
    Xt = np.column_stack([test_preds[m] for m in members] + [reg[fold.test]])
    y, end = data.y[horizon], data.end[horizon]
    yv = purge(y[fold.val], end[fold.val], fold.test_start)
    model = EnsembleModel(names, **params)
    model.fit(Xv, yv)
    seen = end[fold.val][np.isfinite(yv)]
    model.train_window = (int(data.ts[fold.train[0]]), int(seen.max()) if seen.size else int(data.ts[fold.val[-1]]))
    return FittedEnsemble(model, model.p_up(Xt))


MODEL_CLASS = EnsembleModel
