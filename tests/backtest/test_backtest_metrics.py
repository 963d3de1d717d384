"""Metrics against hand-computed values and the published deflated-Sharpe example."""

from __future__ import annotations

import datetime as dt
import json
import math
from statistics import NormalDist

import numpy as np
import polars as pl
import pytest

from flowsense.backtest.metrics import (
    METRIC_KEYS,
    compute_metrics,
    deflated_sharpe_ratio,
    drawdown_stats,
    expected_max_sharpe,
    jsonable,
    probabilistic_sharpe_ratio,
    trades_from_fills,
)

PHI = NormalDist().cdf


def test_returns_sharpe_sortino_drawdown_by_hand() -> None:
    eq = np.array([100.0, 110.0, 99.0, 108.9, 108.9])
    m = compute_metrics(eq, periods_per_year=252)
    assert set(m) == set(METRIC_KEYS)
    # r = [0.1, -0.1, 0.1, 0.0]
    assert m["total_return"] == pytest.approx(0.089)
    assert m["annualized_return"] == pytest.approx(1.089 ** (252 / 4) - 1)
    sd = math.sqrt((0.075**2 + 0.125**2 + 0.075**2 + 0.025**2) / 3)  # mean 0.025, ddof=1
    assert m["sharpe_per_period"] == pytest.approx(0.025 / sd)
    assert m["sharpe"] == pytest.approx(0.025 / sd * math.sqrt(252))
    assert m["annualized_volatility"] == pytest.approx(sd * math.sqrt(252))
    # downside deviation over all 4 periods: sqrt(0.1^2 / 4) = 0.05
    assert m["sortino"] == pytest.approx(0.025 / 0.05 * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    assert m["max_drawdown_duration"] == 3  # peak at t=1, never recovered by t=4
    assert m["calmar"] == pytest.approx(m["annualized_return"] / 0.1)
    # no trades given: per-period PnL (+10, -11, +9.9) -> win rate 2/3, profit factor 19.9 / 11
    assert m["win_rate"] == pytest.approx(2 / 3)
    assert m["profit_factor"] == pytest.approx(19.9 / 11)
    skew = np.mean((np.array([0.1, -0.1, 0.1, 0.0]) - 0.025) ** 3) / (np.var([0.1, -0.1, 0.1, 0.0]) ** 1.5)
    assert m["skew"] == pytest.approx(skew)


def test_drawdown_duration_recovered() -> None:
    mdd, dur, dd = drawdown_stats(np.array([1.0, 2.0, 1.0, 1.5, 2.0, 3.0, 2.7]))
    assert mdd == pytest.approx(0.5)
    assert dur == 3  # peak t=1, back to 2.0 at t=4
    np.testing.assert_allclose(dd, [0, 0, 0.5, 0.25, 0, 0, 0.1])
    assert drawdown_stats(np.array([1.0, 1.1, 1.2]))[1] == 0  # never under water


def test_trades_from_fills_by_hand() -> None:
    fills = pl.DataFrame({
        "ts": [1, 2, 3, 4, 5, 6, 7, 8, 9],
        "side": [1, -1, 1, -1, -1, 1, 1, -1, 1],
        "price": [100.0, 110.0, 100.0, 90.0, 50.0, 40.0, 100.0, 105.0, 100.0],
        "size": [10, 10, 5, 5, 2, 2, 10, 20, 10],
        "fee": [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2.0, 0.0],
    })
    tr = trades_from_fills(fills)
    # long 10 @100 -> 110 (fees 2): +98; long 5 @100 -> 90: -50; short 2 @50 -> 40: +20;
    # long 10 @100, sell 20 @105 through zero (fee split 1/1): +49, then short 10 @105 -> 100: +49
    np.testing.assert_allclose(tr["pnl"].to_numpy(), [98.0, -50.0, 20.0, 49.0, 49.0])
    assert tr["direction"].to_list() == [1, 1, -1, 1, -1]
    assert not tr["open"].any()
    eq = np.linspace(1000.0, 1166.0, 10)
    orders = pl.DataFrame({"order_id": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], "size": [10, 10, 5, 5, 2, 2, 10, 20, 10, 10]})
    m = compute_metrics(eq, fills.with_columns(order_id=pl.Series([1, 2, 3, 4, 5, 6, 7, 8, 9])), orders)
    assert m["n_trades"] == 5
    assert m["win_rate"] == pytest.approx(4 / 5)
    assert m["profit_factor"] == pytest.approx((98 + 20 + 49 + 49) / 50)
    assert m["avg_trade_pnl"] == pytest.approx(166 / 5)
    assert m["fees_paid"] == pytest.approx(4.0)
    notional = 1000 + 1100 + 500 + 450 + 100 + 80 + 1000 + 2100 + 1000
    assert m["traded_notional"] == pytest.approx(notional)
    assert m["turnover"] == pytest.approx(notional / eq.mean())
    assert m["fill_rate"] == pytest.approx(0.9)
    assert m["fill_rate_size"] == pytest.approx(74 / 84)


def test_open_trade_is_marked() -> None:
    fills = pl.DataFrame({"ts": [1], "side": ["buy"], "price": [100.0], "size": [10], "fee": [0.0]})
    tr = trades_from_fills(fills, mark_price=103.0)
    assert tr["open"].to_list() == [True]
    assert tr["pnl"][0] == pytest.approx(30.0)


def test_psr_by_hand() -> None:
    # normal returns: z = SR sqrt(n - 1) / sqrt(1 + SR^2 / 2)
    assert probabilistic_sharpe_ratio(0.1, 101) == pytest.approx(PHI(0.1 * 10 / math.sqrt(1.005)))
    # skew/kurtosis enter the denominator: 1 - g3 SR + (g4 - 1)/4 SR^2
    z = (0.1 - 0.05) * math.sqrt(250 - 1) / math.sqrt(1 + 0.5 * 0.1 + (6 - 1) / 4 * 0.01)
    assert probabilistic_sharpe_ratio(0.1, 250, -0.5, 6.0, 0.05) == pytest.approx(PHI(z))
    arr = probabilistic_sharpe_ratio(np.array([0.0, 0.1]), np.array([101, 101]))
    np.testing.assert_allclose(arr, [0.5, PHI(0.1 * 10 / math.sqrt(1.005))])


def test_dsr_published_example() -> None:
    """Bailey & Lopez de Prado (2014), section 4: N=100 trials, T=1250 daily returns, best annualized SR
    2.5, variance of the trials' annualized SRs 0.5, skew -3, kurtosis 10 -> SR0 = 0.1132 (daily),
    DSR = 0.9004."""
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert sr0 * math.sqrt(250) == pytest.approx(1.7895, abs=5e-4)
    dsr = deflated_sharpe_ratio(2.5 / math.sqrt(250), 1250, -3.0, 10.0, n_trials=100, trials_sharpe_var=0.5 / 250)
    assert dsr == pytest.approx(0.9004, abs=5e-5)
    # one trial: DSR = PSR(0); unknown trial variance: nan
    assert deflated_sharpe_ratio(0.1, 100, n_trials=1) == pytest.approx(probabilistic_sharpe_ratio(0.1, 100))
    assert math.isnan(deflated_sharpe_ratio(0.1, 100, n_trials=5))


def test_compute_metrics_dsr_uses_trials() -> None:
    rng = np.random.default_rng(1)
    eq = 100 * np.cumprod(1 + rng.normal(0.0008, 0.01, 1000))
    one = compute_metrics(eq)
    assert one["dsr"] == pytest.approx(one["psr"])
    many = compute_metrics(eq, n_trials=50, trials_sharpe_var=0.03**2)
    assert many["dsr"] < many["psr"] == pytest.approx(one["psr"])
    via_list = compute_metrics(eq, trial_sharpes=rng.normal(0, 0.03, 50))
    assert via_list["n_trials"] == 50 and via_list["dsr"] < via_list["psr"]


def test_resample_and_seconds_duration() -> None:
    t0 = dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC)
    ts = [t0 + dt.timedelta(seconds=s) for s in (0, 10, 50, 70, 130, 170, 250, 300)]
    eq = pl.DataFrame({"ts": pl.Series(ts, dtype=pl.Datetime("ns", "UTC")),
                       "equity": [100.0, 101.0, 99.0, 98.0, 100.5, 102.0, 101.0, 103.0]})
    m = compute_metrics(eq, resample="1m")
    # start 100 @14:30; last value of each minute, labelled by its end: 14:31 99, 14:32 98, 14:33 102,
    # 14:34 102 (no event: forward-filled), 14:35 101, 14:36 103
    assert m["n_periods"] == 6
    assert m["total_return"] == pytest.approx(0.03)
    assert m["max_drawdown"] == pytest.approx(0.02)
    assert m["max_drawdown_duration"] == 3
    assert m["max_drawdown_duration_s"] == pytest.approx(180.0)
    raw = compute_metrics(eq)
    assert raw["n_periods"] == 7
    assert raw["max_drawdown_duration_s"] == pytest.approx(160.0)  # peak at 10s, recovered at 170s


def test_flat_curve_and_json() -> None:
    m = compute_metrics(np.ones(10))
    assert math.isnan(m["sharpe"]) and m["max_drawdown"] == 0.0
    text = json.dumps(jsonable(m), allow_nan=False)
    assert json.loads(text)["sharpe"] is None
