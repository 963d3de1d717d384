"""Event-driven backtest engine: hand-computed cases on tiny books, and a reconciliation on LOBSTER GOOG."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from flowsense.backtest.engine import BacktestConfig, BacktestResult, run_backtest
from flowsense.backtest.models import (
    BookWalkSlippage,
    ConstantLatency,
    DataLatency,
    FixedBpsSlippage,
    MakerTakerFees,
    PerShareFees,
    ProbabilisticQueue,
    RiskAverseQueue,
)
from flowsense.backtest.strategies import STRATEGIES, BuyAndHold, OfiThreshold
from flowsense.backtest.strategy import LookaheadError
from flowsense.data.schemas import EVENTS_SCHEMA, EventType, book_schema
from flowsense.trading.orders import CancelRequest, OrderRequest

GOOG = Path(__file__).resolve().parents[3] / "shared/data/lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
if not GOOG.exists():
    GOOG = Path("/work/shared/data/lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip")

MS = 1_000_000
T0 = 1_340_285_400 * 1_000_000_000  # 2012-06-21 13:30 UTC
ZERO = ConstantLatency(0, 0, 0)


def make_day(rows: list[tuple], levels: int = 3) -> tuple[pl.DataFrame, pl.DataFrame]:
    """rows: (t_ms, event_type, side, price, size, asks[(px, sz)], bids[(px, sz)]) - book after the event."""
    ev, bk = [], []
    for seq, (t_ms, etype, side, price, size, asks, bids) in enumerate(rows):
        ts = T0 + int(t_ms * MS)
        ev.append({"ts": ts, "symbol": "TEST", "date": dt.date(2012, 6, 21), "seq": seq, "event_type": etype,
                   "order_id": seq, "side": side, "price": price, "size": size})
        b = {"ts": ts, "symbol": "TEST", "date": dt.date(2012, 6, 21), "seq": seq}
        for k in range(levels):
            a = asks[k] if k < len(asks) else (None, None)
            d = bids[k] if k < len(bids) else (None, None)
            b |= {f"ask_px_{k + 1}": a[0], f"ask_sz_{k + 1}": a[1], f"bid_px_{k + 1}": d[0], f"bid_sz_{k + 1}": d[1]}
        bk.append(b)
    events = pl.DataFrame(ev).with_columns(
        pl.col("ts").cast(pl.Datetime("ns", "UTC")), pl.col("event_type").cast(EventType)
    ).select([pl.col(c).cast(t) for c, t in EVENTS_SCHEMA.items()])
    book = pl.DataFrame(bk).with_columns(pl.col("ts").cast(pl.Datetime("ns", "UTC")))
    book = book.select([pl.col(c).cast(t) for c, t in book_schema(levels).items()])
    return events, book


class Script:
    """A Python strategy that sends given requests at given event seqs (and records what it got)."""

    def __init__(self, plan: dict[int, list]) -> None:
        self.plan = plan
        self.fills: list = []
        self.reports: list = []

    def on_book(self, view):
        return self.plan.get(view.seq, [])

    def on_fill(self, fill) -> None:
        self.fills.append(fill)

    def on_order(self, report) -> None:
        self.reports.append(report)


ASKS = [(100.00, 100), (100.01, 200), (100.02, 300)]
BIDS = [(99.99, 300), (99.98, 200), (99.97, 100)]


def test_market_order_walks_two_levels_vwap_fee_slippage_to_the_cent() -> None:
    events, book = make_day([
        (0, "add", 1, 99.97, 100, ASKS, BIDS),
        (5, "delete", -1, 100.00, 100, ASKS[1:], BIDS),  # later book must not be used
    ])
    cfg = BacktestConfig(latency=ZERO)  # default: taker 0.08%, 1 bp slippage
    res = run_backtest(events, book, Script({0: [OrderRequest.market(1, 250)]}), cfg)
    assert isinstance(res, BacktestResult)
    f = res.fills.sort("book_price")
    assert f["book_price"].to_list() == [100.00, 100.01]
    assert f["size"].to_list() == [100, 150]
    assert f["liquidity"].to_list() == ["taker", "taker"]
    px = [100.00 * 1.0001, 100.01 * 1.0001]
    assert f["price"].to_list() == pytest.approx(px, abs=1e-9)
    notional = 100 * px[0] + 150 * px[1]  # 25004.00015
    assert notional == pytest.approx(25004.00015, abs=1e-9)
    o = res.orders.row(0, named=True)
    assert o["status"] == "filled" and o["filled"] == 250
    assert o["avg_price"] == pytest.approx(100.0160006, abs=1e-9)
    assert res.fills["fee"].sum() == pytest.approx(20.00320012, abs=1e-9)
    assert res.fills["slippage"].sum() == pytest.approx(2.50015, abs=1e-9)
    s = res.summary()
    assert s["n_fills"] == 2 and s["fees"] == pytest.approx(20.0032, abs=0.005)
    assert res.equity["cash"][-1] == pytest.approx(1_000_000 - 25004.00015 - 20.00320012, abs=1e-6)
    assert res.equity["position"][-1] == 250


def test_book_walk_no_slippage_and_remainder_cancelled() -> None:
    events, book = make_day([(0, "add", 1, 99.97, 100, ASKS, BIDS)])
    cfg = BacktestConfig(latency=ZERO, slippage=BookWalkSlippage(), fees=MakerTakerFees(0.0, 0.0))
    res = run_backtest(events, book, Script({0: [OrderRequest.market(-1, 700)]}), cfg)
    assert res.fills["price"].to_list() == [99.99, 99.98, 99.97]
    assert res.fills["slippage"].sum() == 0.0
    o = res.orders.row(0, named=True)
    assert (o["status"], o["filled"], o["reason"]) == ("cancelled", 600, "no_liquidity")


def test_order_latency_fills_against_book_at_arrival() -> None:
    rows = [
        (0, "add", 1, 99.97, 100, ASKS, BIDS),
        (3, "delete", -1, 100.00, 100, [(100.01, 200), (100.02, 300)], BIDS),
        (10, "add", 1, 99.97, 100, [(100.01, 200), (100.02, 300)], BIDS),
    ]
    events, book = make_day(rows)
    slow = BacktestConfig(latency=ConstantLatency(0, 5 * MS, 0), slippage=BookWalkSlippage())
    fast = BacktestConfig(latency=ConstantLatency(0, 2 * MS, 0), slippage=BookWalkSlippage())
    r_slow = run_backtest(events, book, Script({0: [OrderRequest.market(1, 50)]}), slow)
    r_fast = run_backtest(events, book, Script({0: [OrderRequest.market(1, 50)]}), fast)
    assert r_slow.fills["price"].to_list() == [100.01]  # book at t + 5 ms, not at t
    assert r_fast.fills["price"].to_list() == [100.00]
    o = r_slow.orders.row(0, named=True)
    assert (o["ts_exchange"] - o["ts_submit"]) == dt.timedelta(milliseconds=5)
    assert r_slow.fills["ts"][0] == o["ts_exchange"]


def test_feed_and_response_latency_delay_the_strategy() -> None:
    rows = [(t, "add", 1, 99.97, 100, ASKS, BIDS) for t in (0, 1, 2, 3, 4, 5, 6)]
    events, book = make_day(rows)
    strat = Script({0: [OrderRequest.market(1, 10)]})
    run_backtest(events, book, strat, BacktestConfig(latency=ConstantLatency(1 * MS, 1 * MS, 2 * MS)))
    (fill,) = strat.fills
    assert fill.ts_exchange == T0 + 2 * MS  # sent at local 1 ms (0 + feed), arrives at 2 ms
    assert fill.ts == T0 + 4 * MS  # report arrives after the 2 ms response latency


def _queue_day() -> tuple[pl.DataFrame, pl.DataFrame]:
    a = [(100.01, 500)]
    return make_day([
        (0, "add", -1, 100.01, 500, a, [(99.99, 300)]),
        (1, "add", 1, 99.99, 50, a, [(99.99, 350)]),  # someone joins behind us
        (2, "delete", 1, 99.99, 50, a, [(99.99, 300)]),  # a cancel: from behind or ahead?
        (3, "execute_visible", 1, 99.99, 260, a, [(99.99, 40)]),
        (4, "execute_visible", 1, 99.99, 100, a, [(99.98, 100)]),
    ])


def test_limit_order_waits_for_queue_risk_averse() -> None:
    events, book = _queue_day()
    cfg = BacktestConfig(latency=ZERO, queue=RiskAverseQueue(), fees=MakerTakerFees(maker_rate=-0.0002))
    res = run_backtest(events, book, Script({0: [OrderRequest.limit(1, 100, 99.99)]}), cfg)
    # 300 ahead; the cancel does not move us; 260 executed -> 40 ahead; next 100 -> 40 to them, 60 to us
    assert res.orders["queue_ahead_on_entry"][0] == 300
    assert res.fills["size"].to_list() == [60]
    assert res.fills["ts"][0] == events["ts"][4]
    assert res.fills["liquidity"].to_list() == ["maker"]
    assert res.fills["price"].to_list() == [99.99]
    assert res.fills["fee"][0] == pytest.approx(-0.0002 * 99.99 * 60, abs=1e-12)  # rebate -1.19988
    assert res.orders["status"][0] == "partially_filled"


def test_limit_order_waits_for_queue_probabilistic_differs_on_cancels() -> None:
    events, book = _queue_day()
    cfg = BacktestConfig(latency=ZERO, queue=ProbabilisticQueue(power=2.0))
    res = run_backtest(events, book, Script({0: [OrderRequest.limit(1, 100, 99.99)]}), cfg)
    # cancel of 50 with F=300, B=50: p(behind) = 50^2/(50^2+300^2); F -> 300 - (1-p)*50 = 251.35...
    p = 50**2 / (50**2 + 300**2)
    front = 300 - (1 - p) * 50
    first = int(260 - front)  # 8
    assert first == 8
    assert res.fills["size"].to_list() == [first, 100 - first]
    assert res.orders["status"][0] == "filled"


def test_trade_through_fills_resting_order() -> None:
    a = [(100.01, 500)]
    events, book = make_day([
        (0, "add", -1, 100.01, 500, a, [(99.99, 300), (99.98, 100)]),
        (1, "execute_visible", 1, 99.98, 100, a, [(99.99, 300)]),  # sold through 99.99 without us
    ])
    res = run_backtest(events, book, Script({0: [OrderRequest.limit(1, 100, 99.99)]}), BacktestConfig(latency=ZERO))
    assert res.fills["size"].to_list() == [100]
    assert res.fills["price"].to_list() == [99.99]


def test_inventory_limit_rejects() -> None:
    rows = [(t, "add", 1, 99.97, 100, ASKS, BIDS) for t in range(4)]
    events, book = make_day(rows)
    plan = {
        0: [OrderRequest.market(1, 80)],
        1: [OrderRequest.market(1, 30)],  # 80 + 30 > 100: rejected
        2: [OrderRequest.limit(1, 20, 99.00)],  # 80 + 20 = 100: ok, rests
        3: [OrderRequest.market(1, 1), OrderRequest.market(-1, 150)],  # open buy 20 counts; -70 ok? 80-150=-70
    }
    strat = Script(plan)
    res = run_backtest(events, book, strat, BacktestConfig(latency=ZERO, max_position=100))
    st = res.orders["status"].to_list()
    assert st == ["filled", "rejected", "acked", "rejected", "filled"]
    assert res.orders["reason"].to_list()[1] == "max_position"
    assert res.equity["position"][-1] == 80 - 150
    assert [r.status.name for r in strat.reports if r.order_id == 2] == ["REJECTED"]


def test_cancel_and_fee_models_per_share() -> None:
    events, book = _queue_day()
    plan = {0: [OrderRequest.limit(1, 100, 99.99), OrderRequest.market(1, 250)], 2: [CancelRequest(1)]}
    cfg = BacktestConfig(latency=ZERO, fees=PerShareFees(maker=-0.002, taker=0.003), slippage=BookWalkSlippage())
    res = run_backtest(events, book, Script(plan), cfg)
    assert res.orders["status"].to_list() == ["cancelled", "filled"]
    assert res.fills["fee"].to_list() == pytest.approx([0.75])
    cfg2 = BacktestConfig(latency=ZERO, fees=PerShareFees(maker=-0.002, taker=0.003))
    res2 = run_backtest(events, book, Script({0: [OrderRequest.limit(1, 100, 99.99)]}), cfg2)
    assert res2.fills["fee"].to_list() == pytest.approx([-0.12])  # 60 shares rebated


def test_lookahead_strategy_fails_loudly() -> None:
    rows = [(t, "add", 1, 99.97, 100, ASKS, BIDS) for t in range(5)]
    events, book = make_day(rows)

    class PeekNext:
        def on_book(self, view):
            assert len(view.book["ask_px_1"]) == view.seq + 1
            view.at(view.seq)  # the present is fine
            return view.at(view.seq + 1)

    class PeekLast:
        def on_book(self, view):
            return view.book[-1]

    class PeekSlice:
        def on_book(self, view):
            return view.events[view.seq : view.seq + 2]

    for cheat in (PeekNext(), PeekLast(), PeekSlice()):
        with pytest.raises(LookaheadError):
            run_backtest(events, book, cheat, BacktestConfig(latency=ZERO))


def test_data_latency_is_deterministic_given_seed() -> None:
    rows = [(t, "add", 1, 99.97, 100, ASKS, BIDS) for t in range(0, 40, 2)]
    events, book = make_day(rows)
    lat = DataLatency(order_ns=[1 * MS, 3 * MS, 7 * MS], response_ns=[1 * MS], feed_ns=0)
    plan = {k: [OrderRequest.market(1, 1)] for k in range(0, 10)}
    runs = [run_backtest(events, book, Script(plan), BacktestConfig(latency=lat, seed=s)) for s in (7, 7, 8)]
    assert runs[0].orders.equals(runs[1].orders)
    lags = (runs[0].orders["ts_exchange"] - runs[0].orders["ts_submit"]).dt.total_nanoseconds()
    assert set(lags.to_list()) <= {1 * MS, 3 * MS, 5 * MS, 7 * MS}  # FIFO session may delay by the previous
    prof = DataLatency(order_ns=[1 * MS, 4 * MS], response_ns=[1 * MS, 1 * MS], feed_ns=0, ts_ns=[T0, T0 + 10 * MS])
    r = run_backtest(events, book, Script({0: [OrderRequest.market(1, 1)], 6: [OrderRequest.market(1, 1)]}),
                     BacktestConfig(latency=prof))
    lags = (r.orders["ts_exchange"] - r.orders["ts_submit"]).dt.total_nanoseconds().to_list()
    assert lags == [1 * MS, 4 * MS]


def test_registry_and_config_defaults() -> None:
    assert set(STRATEGIES) == {"buy_and_hold", "ofi_threshold", "market_maker", "model_signal"}
    c = BacktestConfig()
    assert c.initial_cash == 1_000_000.0 and isinstance(c.queue, RiskAverseQueue)
    assert c.latency == ConstantLatency(1_000_000, 1_000_000, 1_000_000)
    assert c.fees == MakerTakerFees(0.0, 0.0008) and c.slippage == FixedBpsSlippage(1.0)
    with pytest.raises(AttributeError):
        c.seed = 3  # type: ignore[misc]


# ------------------------------------------------------------------------------------------ real data


@pytest.fixture(scope="module")
def goog():
    if not GOOG.exists():
        pytest.skip(f"LOBSTER sample data not found at {GOOG} (../shared/data absent)")
    from flowsense.data.lobster import read_lobster

    return read_lobster(GOOG)[0]


def _walk(levels: list[tuple[float, int]], qty: int) -> list[tuple[float, int]]:
    out = []
    for px, sz in levels:
        take = min(qty, sz)
        if take:
            out.append((px, take))
        qty -= take
    assert qty == 0
    return out


@pytest.mark.real_data
def test_buy_and_hold_reconciles_with_book_on_goog(goog) -> None:
    size = 500
    cfg = BacktestConfig(latency=ZERO, slippage=BookWalkSlippage())
    res = run_backtest(goog.events, goog.book, BuyAndHold(size=size), cfg)
    first, last = goog.book.row(0, named=True), goog.book.row(-1, named=True)
    buys = _walk([(first[f"ask_px_{k}"], first[f"ask_sz_{k}"]) for k in range(1, 11)], size)
    sells = _walk([(last[f"bid_px_{k}"], last[f"bid_sz_{k}"]) for k in range(1, 11)], size)
    f = res.fills
    assert f.filter(pl.col("side") == 1).select("price", "size").rows() == buys
    assert f.filter(pl.col("side") == -1).select("price", "size").rows() == sells
    buy_cost = sum(p * q for p, q in buys)
    sell_proceeds = sum(p * q for p, q in sells)
    fees = 0.0008 * (buy_cost + sell_proceeds)
    pnl = sell_proceeds - buy_cost - fees
    s = res.summary()
    assert round(s["fees"], 2) == round(fees, 2)
    assert round(s["pnl"], 2) == round(pnl, 2)
    assert s["pnl"] == pytest.approx(pnl, abs=1e-6)
    assert s["final_position"] == 0 and s["n_fills"] == len(buys) + len(sells)
    assert res.equity["ts"][-1] == goog.events["ts"][-1]


@pytest.mark.real_data
def test_python_driver_matches_compiled_loop_on_goog(goog) -> None:
    ev, bk = goog.events.head(15_000), goog.book.head(15_000)
    strat = OfiThreshold(threshold=300.0, size=100, max_position=100)
    compiled = run_backtest(ev, bk, strat)
    python = run_backtest(ev, bk, strat, force_python=True)
    assert compiled.fills.height > 10
    assert compiled.fills.equals(python.fills)
    assert compiled.orders.equals(python.orders)


@pytest.mark.real_data
def test_market_maker_and_queue_models_on_goog(goog) -> None:
    ev, bk = goog.events.head(30_000), goog.book.head(30_000)
    ra = run_backtest(ev, bk, "market_maker", BacktestConfig(queue=RiskAverseQueue()))
    pq = run_backtest(ev, bk, "market_maker", BacktestConfig(queue=ProbabilisticQueue()))
    for r in (ra, pq):
        assert r.fills.height > 0 and r.summary()["final_position"] == 0
        assert r.equity["ts"].is_sorted()
    assert (ra.fills["liquidity"] == "maker").sum() <= (pq.fills["liquidity"] == "maker").sum()
    progress: list[float] = []
    run_backtest(ev, bk, "ofi_threshold", progress=progress.append)
    assert progress[-1] == 1.0 and progress == sorted(progress)


# ------------------------------------------------------------------------------- preparation / speed


def test_market_data_conversion_empty_levels_and_ticks() -> None:
    from flowsense.backtest import _core as C
    from flowsense.backtest.engine import _market_data

    events, book = make_day([
        (0, "add", 1, 99.97, 100, ASKS, BIDS),
        (1, "execute_visible", -1, 100.00, 100, [(100.01, 200)], [(99.99, 300), (99.98, 0)]),
    ])
    ts, etype, eside, epx, esz, apx, asz, bpx, bsz = _market_data(events, book, 10_000)
    assert etype.tolist() == [C.EV_ADD, C.EV_EXEC] and eside.tolist() == [1, -1]
    assert epx.tolist() == [999_700, 1_000_000] and esz.tolist() == [100, 100]
    assert apx.tolist() == [[1_000_000, 1_000_100, 1_000_200], [1_000_100, C.INF, C.INF]]
    assert asz.tolist() == [[100, 200, 300], [200, 0, 0]]
    assert bpx.tolist() == [[999_900, 999_800, 999_700], [999_900, 0, 0]]  # size 0 -> empty level
    assert bsz.tolist() == [[300, 200, 100], [300, 0, 0]]
    assert ts.tolist() == [T0, T0 + MS]


def test_run_reports_phase_timings() -> None:
    events, book = make_day([(0, "add", 1, 99.97, 100, ASKS, BIDS), (5, "add", 1, 99.97, 100, ASKS, BIDS)])
    res = run_backtest(events, book, BuyAndHold(size=10), BacktestConfig(latency=ZERO))
    st = res.stats
    assert st["compiled"] is True
    assert min(st["prepare_s"], st["run_s"], st["frames_s"]) >= 0
    assert st["prepare_s"] + st["run_s"] + st["frames_s"] <= res.wall_s + 1e-6


@pytest.mark.real_data
def test_compiled_loop_same_result_in_chunks_and_python_driver_on_goog(goog) -> None:
    # the compiled loop stops/resumes for progress chunks and buffer growth; results must not depend on it
    ev, bk = goog.events, goog.book
    strat = OfiThreshold(threshold=200.0, size=100, max_position=200)
    cfg = BacktestConfig(slippage=FixedBpsSlippage(0.0, walk_book=False))
    whole = run_backtest(ev, bk, strat, cfg)
    chunked = run_backtest(ev, bk, strat, cfg, progress=lambda _f: None)
    assert whole.orders.height > 1024  # more than the initial buffers: they grew
    for a, b in ((whole.orders, chunked.orders), (whole.fills, chunked.fills), (whole.equity, chunked.equity)):
        assert a.equals(b)
    python = run_backtest(ev.head(8_000), bk.head(8_000), strat, cfg, force_python=True)
    compiled = run_backtest(ev.head(8_000), bk.head(8_000), strat, cfg)
    assert compiled.orders.equals(python.orders) and compiled.fills.equals(python.fills)
