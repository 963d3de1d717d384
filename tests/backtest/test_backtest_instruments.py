"""Futures are not shares: the backtest reads the instrument (contract multiplier, tick size, trading
sessions), on the real CME ES MBO day ``esh4-glbx-mdp3-20231225`` (Globex closed on Christmas Day until
17:00 CT, so the file's first ~9,650 messages are outside any session)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from flowsense.backtest.engine import BacktestConfig, run_backtest
from flowsense.backtest.models import BookWalkSlippage, ConstantLatency, FixedBpsSlippage, TickSlippage
from flowsense.data.instruments import Instrument, Session, builtin_instrument
from flowsense.trading.orders import OrderRequest
from flowsense.trading.strategies import BuyAndHold
from tests.backtest.test_backtest_engine import ASKS, BIDS, MS, T0, Script, make_day
from tests.conftest import SHARED_DATA

ES_MBO = SHARED_DATA / "nautilus_trader_samples/databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst"
OPEN_UTC = dt.datetime(2023, 12, 25, 23, 0, tzinfo=dt.UTC)  # 17:00 CT: Globex opens for the 26th


@pytest.fixture(scope="module")
def es_day():
    if not ES_MBO.exists():
        pytest.skip(f"real CME ES MBO file not present at {ES_MBO} (../shared/data absent)")
    from flowsense.data.ingest import read_file

    _, days = read_file(ES_MBO)
    (day,) = [d for d in days if d.date == dt.date(2023, 12, 25)]
    return day


@pytest.mark.real_data
def test_es_buy_and_hold_uses_multiplier_sessions_and_book_prices(es_day, tmp_path: Path) -> None:
    from flowsense.backtest.runner import run_partition
    from flowsense.data.lake import Lake

    lake = Lake(tmp_path / "lake")
    lake.write_day(es_day)
    inst = builtin_instrument("ESH4")
    assert (inst.multiplier, inst.tick_size, inst.asset_class) == (50.0, 0.25, "future")
    run = run_partition(lake, tmp_path / "reports", "ESH4", es_day.date, "buy_and_hold", {"size": 100},
                        BacktestConfig())
    p = run.payload
    fills = run.fills
    assert p["instrument"]["multiplier"] == 50.0 and p["currency"] == "USD"
    # futures defaults, not the equity ones: fees per contract, fills on recorded book prices
    assert p["config"]["fees"]["model"] == "PerShareFees" and p["config"]["slippage"]["model"] == "BookWalkSlippage"
    assert (fills["price"] == fills["book_price"]).all()
    assert ((fills["price"] / 0.25).round(0) * 0.25 == fills["price"]).all()  # on the 0.25 grid
    # nothing traded while the market was closed: the first order waits for the 17:00 CT open
    assert fills["ts"].min() >= OPEN_UTC
    assert run.orders["ts_exchange"].min() >= OPEN_UTC
    assert p["engine"]["n_events"] == 59_142  # the 9,650 messages before the open are not traded on
    # PnL in dollars: (sell - buy) x 100 contracts x 50, less $2.50 per contract per side
    buy = fills.filter(pl.col("side") == 1)
    sell = fills.filter(pl.col("side") == -1)
    assert int(buy["size"].sum()) == int(sell["size"].sum()) == 100 and p["position"] == 0
    gross = (float((sell["price"] * sell["size"]).sum()) - float((buy["price"] * buy["size"]).sum())) * 50
    assert gross == pytest.approx(42_725.0)  # bought 4,801.18 avg at the open, sold 4,809.73 avg at 23:59:59
    assert p["pnl"] == pytest.approx(gross - 200 * 2.5, abs=1e-6)  # ~$42k, not the $855 of a share model
    assert p["engine"]["turnover"] == pytest.approx(float((fills["price"] * fills["size"]).sum()) * 50)
    assert p["traded_notional"] == pytest.approx(p["engine"]["turnover"])
    # without the instrument (the old share model) the same strategy traded at 00:00 on a closed market
    old = run_backtest(es_day.events, es_day.book, BuyAndHold(100), BacktestConfig())
    assert old.fills["ts"].min() < OPEN_UTC
    assert abs(old.summary()["pnl"]) < 2_000


@pytest.mark.real_data
def test_es_tick_slippage_stays_on_the_grid(es_day) -> None:
    inst = builtin_instrument("ESH4")
    cfg = BacktestConfig(slippage=TickSlippage(ticks=1))
    res = run_backtest(es_day.events, es_day.book, BuyAndHold(5), cfg, instrument=inst)
    f = res.fills
    assert (f["price"] - f["book_price"] * 1.0).to_list() == [0.25 * s for s in f["side"].to_list()]
    assert f["slippage"].to_list() == pytest.approx([0.25 * 50 * q for q in f["size"].to_list()])
    with pytest.raises(ValueError, match="TickSlippage needs a tick"):
        run_backtest(es_day.events.head(100), es_day.book.head(100), BuyAndHold(5), cfg)


def test_order_arriving_after_the_close_is_rejected() -> None:
    # a session 09:30-16:00 America/New_York (13:30-20:00 UTC on this date); T0 = 13:30 UTC
    inst = Instrument("TEST", sessions=(Session("09:30", "16:00"),), tz="America/New_York",
                      trading_days="mon-fri", tick_size=0.01)
    close = T0 + 390 * 60_000 * MS
    rows = [(0, "add", 1, 99.97, 100, ASKS, BIDS), ((close - T0) / MS - 1, "add", 1, 99.97, 100, ASKS, BIDS),
            ((close - T0) / MS + 5, "add", 1, 99.97, 100, ASKS, BIDS)]  # the last one after the close
    events, book = make_day(rows)
    plan = {0: [OrderRequest.market(1, 10)], 1: [OrderRequest.market(-1, 10)]}
    res = run_backtest(events, book, Script(plan), BacktestConfig(latency=ConstantLatency(0, 2 * MS, 0),
                                                                   slippage=BookWalkSlippage()), instrument=inst)
    assert res.stats["events_outside_sessions"] == 1 and res.n_events == 2
    assert res.orders["status"].to_list() == ["filled", "rejected"]
    assert res.orders["reason"].to_list()[1] == "market_closed"  # sent 1 ms before, arrives 1 ms after
    same = run_backtest(events, book, Script(plan), BacktestConfig(latency=ConstantLatency(0, 2 * MS, 0),
                                                                    slippage=FixedBpsSlippage(0.0)))
    assert same.orders["status"].to_list() == ["filled", "filled"]  # no instrument: always open
