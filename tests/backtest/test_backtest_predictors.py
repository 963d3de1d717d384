"""The walk-forward predictor finds a planted signal out of sample and cannot see the test window."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from flowsense.backtest.predictors import OfiLinearPredictor
from flowsense.backtest.walkforward import walk_forward


def planted(n: int = 6000, seed: int = 3) -> pl.DataFrame:
    """Bars whose next return is 2 bp x ofi_int (plus noise); the other features are noise."""
    rng = np.random.default_rng(seed)
    ofi = rng.standard_normal(n)
    rets = np.empty(n)
    rets[0] = 0.0
    rets[1:] = 2e-4 * ofi[:-1] + 5e-5 * rng.standard_normal(n - 1)
    price = 100 * np.exp(np.cumsum(rets))
    ts = [dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC) + dt.timedelta(seconds=i) for i in range(n)]
    return pl.DataFrame({"ts": ts, "mid_close": price, "ofi_int": ofi, "ofi_l1": rng.standard_normal(n),
                         "tfi": rng.standard_normal(n)})


def test_recovers_planted_signal_out_of_sample() -> None:
    df = planted()
    model = OfiLinearPredictor()(df[:3000])
    assert model.columns == ("ofi_int", "ofi_l1", "tfi")
    assert model.coef[0] > 10 * max(abs(model.coef[1]), abs(model.coef[2]))
    pred = model.predict(df[3000:-1])
    realized = np.diff(np.log(df["mid_close"].to_numpy()[3000:]))
    assert np.mean(np.sign(pred) == np.sign(realized)) > 0.9


def test_last_training_target_is_not_used() -> None:
    """The last training row's next bar lies in the test window: its features pair with no target, so the
    fit must not depend on them at all (bit for bit), while any other row does matter."""
    df = planted(500)
    base = OfiLinearPredictor()(df)
    last = pl.int_range(pl.len()) == df.height - 1
    changed_last = OfiLinearPredictor()(df.with_columns(
        pl.when(last).then(99.0).otherwise(pl.col("ofi_int")).alias("ofi_int")))
    assert np.array_equal(base.coef, changed_last.coef) and base.intercept == changed_last.intercept
    first = pl.int_range(pl.len()) == 0
    changed_first = OfiLinearPredictor()(df.with_columns(
        pl.when(first).then(99.0).otherwise(pl.col("ofi_int")).alias("ofi_int")))
    assert not np.array_equal(base.coef, changed_first.coef)


def test_walk_forward_beats_baselines_on_planted_signal() -> None:
    df = planted()
    res = walk_forward(df, OfiLinearPredictor(), train="30m", test="10m", price_col="mid_close",
                       strategy_name="ofi_ridge", periods_per_year=252 * 23_400)
    summary = {r["strategy"]: r for r in res.summary.to_dicts()}
    assert summary["ofi_ridge"]["total_return"] > 0.5
    assert summary["ofi_ridge"]["total_return"] > summary["buy_and_hold"]["total_return"]
    assert summary["ofi_ridge"]["total_return"] > summary["last_return_sign"]["total_return"]
    for fold in res.folds:
        assert fold.train_end <= fold.test_start
