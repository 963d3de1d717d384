"""The trading contract: strategy configs (validation, files, round trips), the stateful objects they
create, the shared accounting, and the Python paths of the built-ins against the compiled loop."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import polars as pl
import pytest

from flowsense.errors import ConfigError
from flowsense.trading import (
    Account,
    BookView,
    Fill,
    LookaheadError,
    Side,
    Strategy,
    StrategyConfig,
    load_strategy_config,
    make_strategy,
    strategy_configs,
)
from flowsense.trading.strategies import (
    BuyAndHold,
    MarketMaker,
    MarketMakerStrategy,
    OfiThreshold,
    OfiThresholdStrategy,
)
from tests.conftest import lobster_zip


@pytest.mark.parametrize(
    ("cls", "kwargs", "message"),
    [
        (BuyAndHold, {"size": 0}, "buy_and_hold: size must be > 0, got 0"),
        (BuyAndHold, {"size": -100}, "buy_and_hold: size must be > 0, got -100"),
        (OfiThreshold, {"size": -100}, "ofi_threshold: size must be > 0, got -100"),
        (OfiThreshold, {"threshold": -1.0}, "threshold must be >= 0"),
        (OfiThreshold, {"window_ns": 0}, "window_ns must be > 0"),
        (OfiThreshold, {"size": 1.5}, "size must be int, got 1.5"),
        (OfiThreshold, {"size": True}, "size must be int, got True"),
        (OfiThreshold, {"threshold": float("nan")}, "threshold must be finite"),
        (MarketMaker, {"tick": 0}, "market_maker: tick must be > 0 (a price increment), got 0.0"),
        (MarketMaker, {"max_position": -5}, "max_position must be > 0"),
        (MarketMaker, {"skew_ticks": -1}, "skew_ticks must be >= 0"),
    ],
)
def test_bad_values_raise_one_line_config_error(cls, kwargs, message) -> None:
    with pytest.raises(ConfigError) as err:
        cls(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_configs_frozen_hashable_round_trip_and_files(tmp_path: Path) -> None:
    cfg = OfiThreshold(threshold=250, size=50)
    assert cfg.threshold == 250.0 and isinstance(cfg.threshold, float)  # int accepted for a float field
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.size = 3  # type: ignore[misc]
    assert {cfg, OfiThreshold(threshold=250.0, size=50)} == {cfg}  # value objects: equal and hashable
    assert not hasattr(cfg, "__dict__")  # slots only: nowhere to hide mutable state
    d = cfg.to_dict()
    assert d == {"strategy": "ofi_threshold", "config": {"threshold": 250.0, "size": 50,
                                                         "window_ns": 1_000_000_000, "max_position": 100}}
    assert StrategyConfig.from_dict(json.loads(json.dumps(d))) == cfg
    (tmp_path / "s.json").write_text(json.dumps(d))
    (tmp_path / "s.yaml").write_text("strategy: market_maker\nconfig:\n  size: 20\n  tick: 0.05\n")
    assert load_strategy_config(tmp_path / "s.json") == cfg
    assert load_strategy_config(tmp_path / "s.yaml") == MarketMaker(size=20, tick=0.05)
    assert isinstance(make_strategy(tmp_path / "s.yaml"), MarketMakerStrategy)
    (tmp_path / "bad.yaml").write_text("strategy: market_maker\nconfig:\n  size: -100\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: market_maker: size must be > 0, got -100"):
        load_strategy_config(tmp_path / "bad.yaml")
    (tmp_path / "typo.json").write_text('{"strategy": "ofi_threshold", "config": {"treshold": 1}}')
    with pytest.raises(ConfigError, match="unknown parameter 'treshold'"):
        load_strategy_config(tmp_path / "typo.json")
    (tmp_path / "broken.json").write_text('{"strategy": \n')
    with pytest.raises(ConfigError, match=r"broken\.json:2: not valid JSON"):
        load_strategy_config(tmp_path / "broken.json")
    with pytest.raises(ConfigError, match="unknown strategy 'nope'"):
        StrategyConfig.from_dict({"strategy": "nope"})
    # an importable config (NautilusTrader's ImportableStrategyConfig): module:Class
    imp = StrategyConfig.from_dict({"strategy_path": "flowsense.trading.strategies:BuyAndHold", "config": {"size": 7}})
    assert imp == BuyAndHold(size=7)
    with pytest.raises(ConfigError, match="cannot import strategy_path"):
        StrategyConfig.from_dict({"strategy_path": "no.such.module:X"})
    assert set(strategy_configs()) == {"buy_and_hold", "ofi_threshold", "market_maker", "model_signal"}


def test_each_create_gives_independent_state() -> None:
    cfg = OfiThreshold()
    a, b = cfg.create(), make_strategy(cfg.to_dict())
    assert isinstance(a, OfiThresholdStrategy) and isinstance(a, Strategy) and a.config == b.config
    a.incs.append(1.0)
    assert b.incs == [] and a is not b


def test_account_matches_hand_computation() -> None:
    acct = Account("ESH4", cash=100_000.0, multiplier=50.0)
    f = lambda side, px, sz, fee=2.0: Fill(0, 0, 1, side, px, sz, fee, "taker", 0.0)  # noqa: E731
    acct.apply(f(Side.BUY, 4800.00, 2))
    acct.apply(f(Side.BUY, 4801.00, 2))
    assert acct.position.quantity == 4 and acct.avg_price == pytest.approx(4800.5)
    pos = acct.apply(f(Side.SELL, 4802.50, 5))  # closes 4 (+2.0 x 4 x 50 = 400) and opens 1 short
    assert pos.quantity == -1 and pos.avg_price == 4802.50 and pos.realized_pnl == pytest.approx(400.0)
    assert acct.fees == 6.0
    assert acct.cash == pytest.approx(100_000 - (4800 * 2 + 4801 * 2 - 4802.5 * 5) * 50 - 6.0)
    assert acct.pnl(4802.50) == pytest.approx(400.0 - 6.0)


# ------------------------------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def goog():
    from flowsense.data.lobster import read_lobster

    return read_lobster(lobster_zip("GOOG", 10))[0]


@pytest.mark.real_data
def test_market_maker_python_path_equals_compiled_on_goog_day(goog) -> None:
    from flowsense.backtest.engine import BacktestConfig, run_backtest

    cfg = BacktestConfig()
    compiled = run_backtest(goog.events, goog.book, MarketMaker(), cfg)
    python = run_backtest(goog.events, goog.book, MarketMaker(), cfg, force_python=True)
    assert compiled.stats["compiled"] and not python.stats["compiled"]
    assert compiled.orders.height > 10_000 and compiled.fills.height > 1_000  # the whole day, many quotes
    assert compiled.orders.equals(python.orders)
    assert compiled.fills.equals(python.fills)
    assert compiled.equity.equals(python.equity)


@pytest.mark.real_data
def test_account_replays_engine_fills_exactly_on_goog(goog) -> None:
    from flowsense.backtest.engine import BacktestConfig, run_backtest

    res = run_backtest(goog.events, goog.book, OfiThreshold(), BacktestConfig())
    acct = Account("GOOG", cash=res.config.initial_cash)
    for row in res.fills.sort("ts", maintain_order=True).iter_rows(named=True):
        acct.apply(Fill(0, 0, row["order_id"], row["side"], row["price"], row["size"], row["fee"],
                        row["liquidity"], row["slippage"]))
    assert acct.quantity == res.summary()["final_position"] == 0
    assert acct.realized_pnl == res.realized_pnl  # the same arithmetic, bit for bit
    assert acct.cash == res.equity["cash"][-1]
    assert acct.fees == pytest.approx(float(res.fills["fee"].sum()), rel=1e-12)


def test_book_view_guards_the_future() -> None:
    import numpy as np

    book = {"ask_px_1": np.array([10.01, 10.02]), "bid_px_1": np.array([10.0, np.nan]),
            "ask_sz_1": np.array([5.0, 6.0]), "bid_sz_1": np.array([3.0, np.nan])}
    view = BookView(book, {"ts": np.array([1, 2])}, 2, lambda: 0, lambda _i: None, lambda: 1, price_scale=100)
    view._advance(0, 11)
    assert (view.best_bid, view.bid_size, view.event_ts, view.price_scale) == (10.0, 3, 1, 100)
    with pytest.raises(LookaheadError):
        view.at(1)
    view._advance(1, 12)
    assert view.bid_size == 0 and view.is_last  # an empty side reads as size 0
    assert pl.Series(view.book["ask_px_1"]).to_list() == [10.01, 10.02]
