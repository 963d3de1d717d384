"""Simple, honest predictors for walk-forward tests (the learned models live in :mod:`flowsense.models`).

``OfiLinearPredictor`` is a ridge regression of the next bar's mid log return on order-flow features of
the current bar (integrated OFI, L1 OFI, depth imbalance, microprice deviation, trade-flow imbalance, the
last return), standardized with the training window's mean and deviation. It is fitted on the training rows
only; the target of the last training row is unknown (its next bar lies in the test window) and dropped, so
nothing of the test window leaks into the fit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

DEFAULT_FEATURES = ("ofi_int", "ofi_l1", "depth_imb_1", "micro_dev_close", "tfi", "ret_1")


@dataclass(frozen=True)
class LinearModel:
    columns: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def predict(self, frame: pl.DataFrame) -> np.ndarray:
        x = frame.select([pl.col(c).cast(pl.Float64) for c in self.columns]).to_numpy()
        x = np.nan_to_num((x - self.mean) / self.scale, nan=0.0, posinf=0.0, neginf=0.0)
        return x @ self.coef + self.intercept


@dataclass(frozen=True)
class OfiLinearPredictor:
    """``fit(train) -> LinearModel``; usable as the ``fit`` argument of ``walk_forward``."""

    features: Sequence[str] = DEFAULT_FEATURES
    price_col: str = "mid_close"
    ridge: float = 1.0

    def __call__(self, train: pl.DataFrame) -> LinearModel:
        cols = tuple(c for c in self.features if c in train.columns)
        if not cols:
            raise ValueError(f"none of the features {list(self.features)} are in the training frame")
        price = train[self.price_col].cast(pl.Float64).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            target = np.log(np.roll(price, -1) / price)
        target[-1] = np.nan  # the next bar of the last training row is in the test window
        x = train.select([pl.col(c).cast(pl.Float64) for c in cols]).to_numpy()
        ok = np.isfinite(target) & np.all(np.isfinite(x), axis=1)
        if ok.sum() < len(cols) + 2:
            return LinearModel(cols, np.zeros(len(cols)), np.ones(len(cols)), np.zeros(len(cols)), 0.0)
        x, y = x[ok], target[ok]
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale == 0] = 1.0
        z = (x - mean) / scale
        y_mean = float(y.mean())
        coef = np.linalg.solve(z.T @ z + self.ridge * np.eye(len(cols)), z.T @ (y - y_mean))
        return LinearModel(cols, mean, scale, coef, y_mean)
