"""Baselines scored exactly like the models.

No-fit (hard predictions; ``log_loss`` is not reported for them):

* ``majority``: the training part's majority class, for every event;
* ``ofi_sign``: sign of the level-1 OFI (Cont, Kukanov & Stoikov ``e_n``) summed over the last 10 events
  including event ``t`` (column ``ofi_sum_10``);
* ``qi_sign``: sign of bid size - ask size at level 1 after event ``t`` (column ``qi_l1``).

``ofi_sign`` and ``qi_sign`` abstain (predict 0.5) where their predictor is 0: those events are left out of
their accuracy and counted in ``n_excluded``.

Fitted: ``logit_ofi``, an L2 logistic regression on the OFI features only
(:data:`flowsense.models.dataset.OFI_FEATURES`), standardised with the training mean and deviation.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from flowsense.models.base import DirectionModel, ModelError


class Majority(DirectionModel):
    kind = "majority"
    probabilistic = False

    def __init__(self, feature_names: list[str] | None = None, **params: Any) -> None:
        super().__init__(feature_names or ["ofi_sum_10"], **params)
        self.up = 1.0

    def _fit(self, X, y, X_val, y_val) -> None:
        ok = np.isfinite(y)
        if not ok.any():
            raise ModelError("majority: no labelled training events")
        self.up = 1.0 if float(np.mean(y[ok])) >= 0.5 else 0.0
        self.info = {"majority_up": bool(self.up), "train_up_share": float(np.mean(y[ok]))}

    def p_up(self, X: np.ndarray) -> np.ndarray:
        return np.full(self._check(X).shape[0], self.up)

    def _save(self, path: Path) -> dict[str, Any]:
        return {"up": self.up}

    def _load(self, path: Path, extra: dict[str, Any]) -> None:
        self.up = float(extra["up"])


class _SignBaseline(DirectionModel):
    probabilistic = False
    abstains = True
    column = ""

    def __init__(self, feature_names: list[str] | None = None, **params: Any) -> None:
        super().__init__(feature_names or [self.column], **params)

    def _fit(self, X, y, X_val, y_val) -> None:
        pass  # nothing to learn

    def p_up(self, X: np.ndarray) -> np.ndarray:
        v = self.col(self._check(X), self.column)
        return np.where(v > 0, 1.0, np.where(v < 0, 0.0, 0.5))

    def _save(self, path: Path) -> dict[str, Any]:
        return {}


class OfiSign(_SignBaseline):
    kind = "ofi_sign"
    column = "ofi_sum_10"


class QiSign(_SignBaseline):
    kind = "qi_sign"
    column = "qi_l1"


class LogitOfi(DirectionModel):
    """Logistic regression on OFI features (NaN -> 0 after standardising)."""

    kind = "logit_ofi"

    def __init__(self, feature_names: list[str], C: float = 1.0, **params: Any) -> None:
        super().__init__(feature_names, C=C, **params)
        self.mu = np.zeros(len(self.feature_names))
        self.sd = np.ones(len(self.feature_names))
        self.coef = np.zeros(len(self.feature_names))
        self.intercept = 0.0

    def _z(self, X: np.ndarray) -> np.ndarray:
        return np.nan_to_num((X - self.mu) / self.sd, nan=0.0, posinf=0.0, neginf=0.0).clip(-10, 10)

    def _fit(self, X, y, X_val, y_val) -> None:
        from sklearn.linear_model import LogisticRegression

        ok = np.isfinite(y)
        if ok.sum() < 10 or len(np.unique(y[ok])) < 2:
            raise ModelError("logit_ofi: fewer than 10 labelled training events or one class only")
        Xo = X[ok]
        self.mu = np.nanmean(Xo, axis=0)
        self.sd = np.nanstd(Xo, axis=0)
        self.mu = np.nan_to_num(self.mu)
        self.sd = np.where(np.isfinite(self.sd) & (self.sd > 0), self.sd, 1.0)
        lr = LogisticRegression(C=float(self.params["C"]), max_iter=200)
        lr.fit(self._z(Xo), y[ok].astype(int))
        self.coef = lr.coef_[0].astype(np.float64)
        self.intercept = float(lr.intercept_[0])
        self.info = {"coef": dict(zip(self.feature_names, self.coef.tolist(), strict=True)),
                     "intercept": self.intercept}

    def p_up(self, X: np.ndarray) -> np.ndarray:
        z = self._z(self._check(X)) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def _save(self, path: Path) -> dict[str, Any]:
        (path / "logit.json").write_text(json.dumps({"mu": self.mu.tolist(), "sd": self.sd.tolist(),
                                                     "coef": self.coef.tolist(), "intercept": self.intercept}))
        return {"file": "logit.json"}

    def _load(self, path: Path, extra: dict[str, Any]) -> None:
        d = json.loads((path / "logit.json").read_text())
        self.mu, self.sd, self.coef = (np.asarray(d[k]) for k in ("mu", "sd", "coef"))
        self.intercept = float(d["intercept"])


NO_FIT_BASELINES = ("majority", "ofi_sign", "qi_sign")
BASELINE_CLASSES: tuple[type[DirectionModel], ...] = (Majority, OfiSign, QiSign, LogitOfi)
