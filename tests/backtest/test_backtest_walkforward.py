"""Walk-forward folds (day-based and intraday), out-of-sample discipline, baselines, regimes."""

from __future__ import annotations

import datetime as dt
import itertools

import numpy as np
import polars as pl
import pytest

from flowsense.backtest.walkforward import (
    Fold,
    check_fold,
    make_folds,
    regime_metrics,
    rolling_vol_regimes,
    walk_forward,
)

UTC = dt.UTC


def _daily_bars(n_days: int = 100, per_day: int = 4, seed: int = 0) -> pl.DataFrame:
    """``per_day`` bars on each business day from 2024-01-01."""
    days = pl.date_range(dt.date(2024, 1, 1), dt.date(2025, 12, 31), "1d", eager=True)
    days = days.filter(days.dt.weekday() <= 5)[:n_days]
    ts = [dt.datetime.combine(d, dt.time(14 + h), UTC) for d in days for h in range(per_day)]
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, len(ts))))
    return pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Datetime("ns", "UTC")), "close": close}).with_columns(
        ret=pl.col("close").pct_change().fill_null(0.0))


def _assert_disciplined(folds: list[Fold], ts: np.ndarray) -> None:
    for f in folds:
        check_fold(f, ts)
        assert np.intersect1d(f.train, f.test).size == 0
        assert ts[f.train].max() < ts[f.test].min()
    for a, b in itertools.pairwise(folds):
        assert a.test.max() < b.test.min()  # non-overlapping, ordered test windows


def test_day_folds_default_60_7() -> None:
    bars = _daily_bars(100)
    ts = bars["ts"].dt.epoch("ns").to_numpy()
    folds = make_folds(bars["ts"])  # default: 60 trading days train, 7 test, step 7
    # tests start at day 60, 67, ..., 95 (the last one partial: days 95-99)
    assert len(folds) == 6
    day = bars["ts"].dt.date().to_numpy()
    for k, f in enumerate(folds):
        assert len(np.unique(day[f.train])) == 60
        assert f.train.size == 60 * 4
        assert len(np.unique(day[f.test])) == (7 if k < 5 else 5)
    assert folds[1].test.min() == folds[0].test.max() + 1  # adjacent test windows
    _assert_disciplined(folds, ts)
    assert len(make_folds(bars["ts"], allow_partial=False)) == 5
    # on plain dates too, with an embargo of 2 days between train and test
    dates = bars["ts"].dt.date()
    gapped = make_folds(dates, 20, 5, gap=2)
    for f in gapped:
        gap_days = np.setdiff1d(np.unique(dates.to_numpy()[f.train[-1]:f.test[0]]),
                                [dates[int(f.train[-1])], dates[int(f.test[0])]])
        assert gap_days.size == 2


def test_intraday_folds_2h_30m() -> None:
    t0 = dt.datetime(2024, 1, 2, 14, 30, tzinfo=UTC)
    ts = pl.datetime_range(t0, t0 + dt.timedelta(minutes=389), "1m", eager=True, time_unit="ns")
    folds = make_folds(ts, "2h", "30m")
    assert len(folds) == 9  # tests at 11:30, 12:00, ..., 15:30 local
    for f in folds:
        assert f.train.size == 120 and f.test.size == 30
        assert f.test_start - f.train_end == 60_000_000_000  # the next minute
    _assert_disciplined(folds, ts.dt.epoch("ns").to_numpy())
    step = make_folds(ts, dt.timedelta(hours=1), "15m", step="1h", gap="5m")
    for f in step:
        assert f.test_start - f.train_end == 6 * 60_000_000_000
    with pytest.raises(ValueError, match="duration"):
        make_folds(ts, "2 fortnights", "30m")


def test_unsorted_timestamps_rejected() -> None:
    with pytest.raises(ValueError, match="sorted"):
        make_folds(np.array([3, 1, 2], dtype="datetime64[s]"), "1s", "1s")


def test_walk_forward_fits_on_train_only_and_trades_test_only() -> None:
    bars = _daily_bars(120)
    seen: list[tuple[int, int]] = []
    predicted: list[tuple[int, int]] = []

    class SignModel:
        def __init__(self, beta: float) -> None:
            self.beta = beta

        def predict(self, frame: pl.DataFrame) -> np.ndarray:
            predicted.append((frame["ts"].dt.epoch("ns").min(), frame["ts"].dt.epoch("ns").max()))
            return self.beta * frame["ret"].to_numpy()

    def fit(train: pl.DataFrame) -> SignModel:
        seen.append((train["ts"].dt.epoch("ns").min(), train["ts"].dt.epoch("ns").max()))
        r = train["ret"].to_numpy()
        return SignModel(float(np.sign(np.corrcoef(r[:-1], r[1:])[0, 1])))

    regime = rolling_vol_regimes(bars["close"], window=20)
    res = walk_forward(bars, fit, train=60, test=7, regime=regime, periods_per_year=252 * 4)
    assert len(seen) == len(res.folds) == len(predicted)
    for (tr_lo, tr_hi), (te_lo, te_hi), f in zip(seen, predicted, res.folds, strict=True):
        assert (tr_lo, tr_hi) == (f.train_start, f.train_end)
        assert (te_lo, te_hi) == (f.test_start, f.test_end)
        assert tr_hi < te_lo
    assert res.strategies == ["strategy", "flat", "buy_and_hold", "last_return_sign"]
    assert set(res.summary["strategy"]) == set(res.strategies)
    assert res.fold_metrics.height == len(res.folds) * 4
    # the out-of-sample frame holds exactly the test rows, each once
    assert res.oos.height == sum(f.test.size for f in res.folds)
    assert res.oos["ts"].is_unique().all()
    # nothing is held into the first bar of a fold (no position carried across the train/test boundary)
    firsts = res.oos.group_by("fold").agg(pl.col("pos_buy_and_hold").first())
    assert (firsts["pos_buy_and_hold"] == 0).all()
    flat = res.summary.filter(pl.col("strategy") == "flat").row(0, named=True)
    assert flat["total_return"] == 0.0
    # buy-and-hold earns exactly the close-to-close returns inside each test window, and is flat over its
    # last bar (closed at the second-to-last close)
    close = res.oos["close"].to_numpy()
    fold = res.oos["fold"].to_numpy()
    inside = np.r_[False, fold[1:] == fold[:-1]] & np.r_[fold[1:] == fold[:-1], False]
    expected = np.where(inside, close / np.r_[close[0], close[:-1]] - 1, 0.0)
    np.testing.assert_allclose(res.oos["ret_buy_and_hold"].to_numpy(), expected, atol=1e-15)
    lasts = res.oos.group_by("fold").agg(pl.col("pos_buy_and_hold").last())
    assert (lasts["pos_buy_and_hold"] == 0).all()
    assert res.regimes is not None and set(res.regimes["strategy"]) == set(res.strategies)
    np.testing.assert_allclose(res.equity("strategy")[-1] - 1,
                               res.summary.filter(pl.col("strategy") == "strategy")["total_return"][0])


def test_last_return_sign_baseline_uses_past_only() -> None:
    bars = _daily_bars(80)
    res = walk_forward(bars, lambda tr: (lambda fr: np.zeros(fr.height)), train=60, test=5)
    oos = res.oos
    # position held over (t-1, t] is the sign of the return ending at t-1 (decided at t-1's close)
    close_all = bars["close"].to_numpy()
    for f in res.folds:
        part = oos.filter(pl.col("fold") == f.index)
        held = part["pos_last_return_sign"].to_numpy()
        idx = f.test
        expected = np.sign(close_all[idx[:-1]] / close_all[idx[:-1] - 1] - 1)
        np.testing.assert_array_equal(held[1:-1], expected[:-1])
        assert held[-1] == 0.0  # flat over the window's last bar


def test_each_fold_pays_its_exit() -> None:
    """Buy-and-hold inside a test window: one entry and one exit, both charged, exactly."""
    bars = _daily_bars(80)
    c = 0.001 + 2e-4
    res = walk_forward(bars, lambda tr: (lambda fr: np.zeros(fr.height)), train=60, test=5,
                       fee_rate=0.001, slippage_bps=2.0)
    close_all = bars["close"].to_numpy()
    for f in res.folds:
        part = res.oos.filter(pl.col("fold") == f.index)
        px = close_all[f.test]
        # in at the first close, out at the second-to-last: (1-c) * px[-2]/px[0] * (1-c)
        want = (1 - c) ** 2 * px[-2] / px[0]
        np.testing.assert_allclose(np.prod(1 + part["ret_buy_and_hold"].to_numpy()), want, rtol=1e-12)
        assert part["pos_buy_and_hold"].diff().abs().sum() == 2.0


def test_overlapping_test_windows_rejected() -> None:
    bars = _daily_bars(90)
    with pytest.raises(ValueError, match="overlap"):
        walk_forward(bars, lambda tr: (lambda fr: np.zeros(fr.height)), train=20, test=10, step=5)


def test_regime_metrics_by_hand() -> None:
    r = np.array([0.01, -0.02, 0.03, 0.0, 0.01])
    g = ["a", "b", "a", "b", "a"]
    out = regime_metrics(r, g, periods_per_year=1).sort("regime")
    a = out.row(0, named=True)
    assert a["n_bars"] == 3 and a["share"] == pytest.approx(0.6)
    assert a["total_return"] == pytest.approx(1.01 * 1.03 * 1.01 - 1)
    assert a["hit_rate"] == 1.0
    b = out.row(1, named=True)
    assert b["total_return"] == pytest.approx(-0.02) and b["max_drawdown"] == pytest.approx(0.02)
    assert b["hit_rate"] == 0.0  # the zero return is not counted


def test_rolling_vol_regimes_terciles() -> None:
    rng = np.random.default_rng(5)
    vol = np.repeat([0.001, 0.01, 0.03], 300)
    close = 100 * np.exp(np.cumsum(rng.normal(0, vol)))
    lab = rolling_vol_regimes(close, window=20)
    assert lab[:20].to_list() == ["warmup"] * 20
    counts = lab.value_counts().sort("regime")
    assert set(counts["regime"]) == {"warmup", "low_vol", "mid_vol", "high_vol"}
    assert lab[150] == "low_vol" and lab[450] == "mid_vol" and lab[850] == "high_vol"
