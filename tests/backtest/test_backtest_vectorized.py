"""Vectorized bar backtests: timing (no look-ahead), hand-computed equity, SMA, sweeps == single runs."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest

from flowsense.backtest.vectorized import (
    SWEEP_METRICS,
    backtest_positions,
    position_changes,
    sma,
    sma_crossover_positions,
    sweep_positions,
    sweep_sma,
    sweep_threshold,
    threshold_positions,
)


@pytest.fixture(scope="module")
def close() -> np.ndarray:
    rng = np.random.default_rng(42)
    return 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, 3000)))


def _ret(close: np.ndarray) -> np.ndarray:
    r = np.zeros_like(close)
    r[1:] = close[1:] / close[:-1] - 1.0
    return r


def test_no_lookahead_signal_of_current_return_is_not_perfect(close: np.ndarray) -> None:
    """signal[t] = sign(r[t]) (r[t] ends at bar t) earns r[t+1]: no better than chance on i.i.d. returns."""
    r = _ret(close)
    perfect = float(np.prod(1.0 + np.abs(r[1:])))
    res = backtest_positions(close, np.sign(r))
    # a naive (unshifted) vectorized backtest would earn |r| every bar, i.e. exactly `perfect`
    assert res.final_equity < perfect ** 0.2
    hits = np.mean(np.sign(res.held[1:]) * np.sign(r[1:]) > 0)
    assert 0.4 < hits < 0.6


def test_shifting_the_signal_into_the_future_makes_it_perfect(close: np.ndarray) -> None:
    """Proof that the engine delays exactly one bar: feeding sign(r[t+1]) at t (look-ahead) is perfect."""
    r = _ret(close)
    future = np.append(np.sign(r[1:]), 0.0)  # future[t] = sign(r[t+1])
    res = backtest_positions(close, future)
    assert res.final_equity == pytest.approx(np.prod(1.0 + np.abs(r[1:])), rel=1e-10)
    # with delay=2 the same look-ahead signal must be shifted two bars to be perfect
    assert backtest_positions(close, future, delay=2).final_equity < res.final_equity ** 0.2
    future2 = np.append(np.sign(r[2:]), [0.0, 0.0])
    assert backtest_positions(close, future2, delay=2).final_equity == pytest.approx(
        np.prod(1.0 + np.abs(r[2:])), rel=1e-10)


def test_delay_zero_is_rejected(close: np.ndarray) -> None:
    with pytest.raises(ValueError, match="delay"):
        backtest_positions(close, np.ones_like(close), delay=0)


def test_equity_by_hand() -> None:
    close = np.array([100.0, 110.0, 99.0, 99.0, 108.9])
    target = np.array([1.0, 1.0, 0.0, 1.0, 0.0])
    c = 0.001 + 5e-4  # fee 10 bps + slippage 5 bps
    res = backtest_positions(close, target, fee_rate=0.001, slippage_bps=5.0)
    # held over (t-1, t]: [0, 1, 1, 0, 1]
    np.testing.assert_array_equal(res.held, [0, 1, 1, 0, 1])
    e1 = 1.0 * (1 - c) * 1.10
    e2 = e1 * 0.90
    e3 = e2 * (1 - c) * 1.0
    e4 = e3 * (1 - c) * 1.10
    np.testing.assert_allclose(res.equity, [1.0, e1, e2, e3, e4], rtol=1e-14)
    assert res.turnover == 3.0
    np.testing.assert_array_equal(res.orders, [1, 3, 4])
    frame = res.frame()
    assert frame.columns == ["close", "target", "position", "returns", "equity"]


def test_long_flat_is_exact_for_an_all_in_units_account(close: np.ndarray) -> None:
    """The weight model equals a cash/units account buying with all cash at the close (fee on notional)."""
    pos = sma_crossover_positions(close, 5, 20)
    fee = 0.0007
    res = backtest_positions(close, pos, fee_rate=fee, initial_equity=1000.0)
    cash, units = 1000.0, 0.0
    for t in range(close.size):
        if pos[t] == 1.0 and units == 0.0:
            units = cash * (1 - fee) / close[t]
            cash = 0.0
        elif pos[t] == 0.0 and units > 0.0:
            cash = units * close[t] * (1 - fee)
            units = 0.0
    # the last decision is never executed in the weight model (no bar after it); mark at the last close
    value = cash + units * close[-1]
    if pos[-1] != pos[-2]:
        pytest.skip("last bar changes position")
    assert res.final_equity == pytest.approx(value, rel=1e-10)


def test_trades_sum_to_total_pnl(close: np.ndarray) -> None:
    pos = sma_crossover_positions(close, 10, 30)
    pos[-5:] = 0.0  # end flat
    res = backtest_positions(close, pos, fee_rate=0.001)
    tr = res.trades()
    assert tr.height == len(res.orders) // 2
    assert tr["pnl"].sum() == pytest.approx(res.final_equity - 1.0, rel=1e-9)


def test_sma_matches_numpy(close: np.ndarray) -> None:
    for w in (1, 7, 30):
        ref = np.convolve(close, np.ones(w) / w, mode="valid")
        got = sma(close, w)
        assert np.isnan(got[: w - 1]).all()
        np.testing.assert_allclose(got[w - 1:], ref, rtol=1e-10)
    fast, slow = sma(close, 10), sma(close, 30)
    expected = np.where(np.nan_to_num(fast > slow) & ~np.isnan(slow), 1.0, 0.0)
    np.testing.assert_array_equal(sma_crossover_positions(close, 10, 30), expected)


def test_sma_positions_use_past_only(close: np.ndarray) -> None:
    """Changing future prices never changes earlier positions."""
    pos = sma_crossover_positions(close, 10, 30)
    changed = close.copy()
    changed[2000:] *= 1.5
    np.testing.assert_array_equal(sma_crossover_positions(changed, 10, 30)[:2000], pos[:2000])


@pytest.mark.parametrize("delay", [1, 3])
def test_sweep_sma_equals_single_runs(close: np.ndarray, delay: int) -> None:
    fast, slow = [3, 5, 10, 20], [10, 30, 50]
    frame = sweep_sma(close, fast, slow, fee_rate=0.0005, slippage_bps=1.0, delay=delay, periods_per_year=252)
    pairs = [(f, s) for f in fast for s in slow if f < s]
    assert frame.height == len(pairs)
    assert frame.columns == ["fast", "slow", *SWEEP_METRICS]
    for row in frame.iter_rows(named=True):
        pos = sma_crossover_positions(close, row["fast"], row["slow"])
        single = backtest_positions(close, pos, fee_rate=0.0005, slippage_bps=1.0, delay=delay)
        m = single.metrics(periods_per_year=252)
        for key in SWEEP_METRICS:
            if key == "dsr":
                continue
            assert row[key] == pytest.approx(m[key], rel=1e-9, abs=1e-12), key
        assert row["final_equity"] == pytest.approx(single.final_equity, rel=1e-12)


def test_sweep_dsr_deflates_for_the_number_of_settings(close: np.ndarray) -> None:
    frame = sweep_sma(close, np.arange(2, 20), np.arange(20, 60, 5))
    assert (frame["dsr"] <= frame["psr"] + 1e-12).all()
    best = frame.sort("sharpe", descending=True).row(0, named=True)
    single = backtest_positions(close, sma_crossover_positions(close, best["fast"], best["slow"]))
    var = float(np.var(frame["sharpe_per_period"].to_numpy(), ddof=1))
    m = single.metrics(n_trials=frame.height, trials_sharpe_var=var)
    assert best["dsr"] == pytest.approx(m["dsr"], rel=1e-9)


def test_sweep_threshold_and_positions_equal_single_runs(close: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    signal = rng.normal(size=close.size)
    signal[::97] = np.nan
    thresholds = [0.0, 0.5, 1.0, 2.0]
    for long_only in (False, True):
        frame = sweep_threshold(close, signal, thresholds, long_only=long_only, fee_rate=0.0002)
        for row in frame.iter_rows(named=True):
            pos = threshold_positions(signal, row["threshold"], long_only=long_only)
            single = backtest_positions(close, pos, fee_rate=0.0002)
            assert row["final_equity"] == pytest.approx(single.final_equity, rel=1e-12)
            assert row["n_trades"] == len(single.orders)
            assert row["sharpe"] == pytest.approx(single.metrics()["sharpe"], rel=1e-9)
    mat = np.stack([threshold_positions(signal, t) for t in thresholds])
    by_matrix = sweep_positions(close, mat, params={"threshold": thresholds}, fee_rate=0.0002)
    by_thr = sweep_threshold(close, signal, thresholds, fee_rate=0.0002)
    for key in ("final_equity", "sharpe", "max_drawdown", "max_drawdown_duration", "turnover"):
        np.testing.assert_allclose(by_matrix[key].to_numpy(), by_thr[key].to_numpy(), rtol=1e-12)


def test_position_changes() -> None:
    idx, dx = position_changes(np.array([0.0, 1.0, 1.0, -1.0, 0.0, 0.0]))
    np.testing.assert_array_equal(idx, [1, 3, 4])
    np.testing.assert_array_equal(dx, [1.0, -2.0, 1.0])


def test_input_validation() -> None:
    with pytest.raises(ValueError, match="close"):
        backtest_positions([100.0, math.nan, 101.0], [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="length"):
        backtest_positions([100.0, 101.0, 102.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="cost"):
        backtest_positions([100.0, 101.0], [1.0, 1.0], fee_rate=2.0)
    res = backtest_positions(pl.Series([100.0, 101.0, 99.0]), pl.Series([1.0, None, 1.0]))
    np.testing.assert_array_equal(res.held, [0.0, 1.0, 0.0])  # null/NaN target = flat
