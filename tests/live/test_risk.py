"""Risk: a forced drawdown halts the worker and the halt survives a restart until `flowsense worker
resume`; REDUCING refuses a position-increasing order; bad ticks are counted and never traded on."""

from __future__ import annotations

import numpy as np
import pytest

from flowsense.live.risk import HALTED, REDUCING, RiskConfig, RiskManager, Signal
from flowsense.live.runner import ReplaySource, RunOptions, run_worker
from flowsense.live.state import StateStore
from flowsense.live.ticks import lake_records
from flowsense.live.worker import WorkerConfig
from flowsense.trading import OrderRequest
from tests.live.conftest import GOOG, flowsense

N = 20_000


@pytest.fixture(scope="module")
def records(goog_home):
    rec = lake_records(str(goog_home / "lake"), *GOOG)[:N].copy()
    rec["n"] = N
    return rec


def _run(records, state, *, strategy="buy_and_hold", params=None, cash=3_000.0, stop=None, risk=None):
    cfg = WorkerConfig(*GOOG, strategy, params or {}, initial_cash=cash, risk=risk or RiskConfig())
    return run_worker(cfg, ReplaySource(records, *GOOG, batch=500), StateStore(state),
                      options=RunOptions(stop_after_ticks=stop), signals=False)


def test_drawdown_halts_and_the_halt_survives_restarts(goog_home, records, tmp_path):
    state = tmp_path / "st"
    # 100 GOOG shares on $3,000 of equity: the morning's $5 fall is a > 15% drawdown
    a = _run(records, state, stop=17_000)
    assert a["trading_state"] == HALTED and "drawdown" in a["trading_state_reason"]
    assert a["position"] == 100 and a["n_orders"] == 1
    st = StateStore(state, readonly=True)
    assert st.trading_state()["state"] == HALTED and st.trading_state()["alert"]
    # restart: the halt holds (recovery replays the halt, then the stored state applies)
    b = _run(records, state, stop=18_500)
    assert b["trading_state"] == HALTED and b["restarts"] == 1 and b["recovery"]["rebuilt"]["position"] == 100
    # the operator resumes (a real CLI process), the next run trades again: buy_and_hold flattens at the end
    out = flowsense(goog_home, "worker", "resume", "--state", str(state))
    assert "HALTED -> ACTIVE" in out.stdout
    c = _run(records, state)
    assert c["trading_state"] == "ACTIVE" and c["session_done"]
    assert c["position"] == 0 and c["n_orders"] == 2 and c["unique_client_order_ids"] == 2
    status = StateStore(state, readonly=True).status()
    assert status["position"] == 0 and status["restarts"] == 2


def test_halted_refuses_the_flatten_and_records_it(goog_home, records, tmp_path):
    state = tmp_path / "st"
    out = _run(records, state)  # halts mid-way, stays halted: the last-event sell is refused
    assert out["trading_state"] == HALTED and out["position"] == 100
    assert out["refused"] == 1 and out["n_orders"] == 1
    refused = [o for o in StateStore(state, readonly=True).all_orders() if o["status"] == "refused"]
    assert len(refused) == 1 and refused[0]["reason"] == "halted" and refused[0]["side"] == -1


def test_reducing_refuses_position_increasing_orders():
    rm = RiskManager(RiskConfig(), "GOOG", state=REDUCING)
    buy = OrderRequest.market(1, 100)
    assert not rm.check(buy, position=100, open_buy=0, open_sell=0, mid=580.0, ts=1).ok  # adds to a long
    assert not rm.check(buy, position=0, open_buy=0, open_sell=0, mid=580.0, ts=2).ok  # opens a position
    sell = rm.check(OrderRequest.market(-1, 300), position=100, open_buy=0, open_sell=0, mid=580.0, ts=3)
    assert sell.ok and sell.request.size == 100  # a reversal is cut to a flatten
    assert not rm.check(OrderRequest.market(-1, 50), position=100, open_buy=0, open_sell=100, mid=580.0, ts=4).ok
    assert rm.refused == {"reducing": 3}
    halted = RiskManager(RiskConfig(), "GOOG", state=HALTED)
    assert halted.check(OrderRequest.market(-1, 100), 100, 0, 0, 580.0, 5).reason == "halted"


def test_limits_collar_throttle_kelly():
    cfg = RiskConfig.from_dict({"max_orders": 2, "limits": {"GOOG": {"max_position": 150, "max_order_size": 200,
                                                                     "max_notional": 1e9}}})
    rm = RiskManager(cfg, "GOOG")
    assert rm.check(OrderRequest.market(1, 201), 0, 0, 0, 580.0, 0).reason == "max_order_size"
    assert rm.check(OrderRequest.market(1, 200), 0, 0, 0, 580.0, 0).reason == "max_position"
    assert rm.check(OrderRequest.limit(1, 100, 620.0), 0, 0, 0, 580.0, 0).reason == "price_collar"
    assert rm.check(OrderRequest.market(1, 100), 0, 0, 0, float("nan"), 0).reason == "no_book"
    assert rm.check(OrderRequest.market(1, 50), 0, 0, 0, 580.0, 10).ok
    assert rm.check(OrderRequest.market(1, 50), 50, 0, 0, 580.0, 20).ok
    assert rm.check(OrderRequest.market(-1, 50), 100, 0, 0, 580.0, 30).reason == "throttle"
    assert rm.check(OrderRequest.market(-1, 50), 100, 0, 0, 580.0, 1_000_000_011).ok  # window moved on
    # fractional Kelly: p=0.6, b=1 -> f*=0.2; quarter Kelly of $1M at $500 = 100 shares, x1.5 calm, x0.5 volatile
    k = RiskManager(RiskConfig(), "GOOG")
    assert k.kelly_size(0.6, 1.0, 1e6, 500.0) == 100
    assert k.kelly_size(0.6, 1.0, 1e6, 500.0, "calm") == 150
    assert k.kelly_size(0.6, 1.0, 1e6, 500.0, "volatile") == 50
    assert k.kelly_size(0.5, 1.0, 1e6, 500.0) == 0
    assert k.target_from_signal(Signal(0.4, 1.0), 1e6, 500.0) == -100


def test_one_bad_mark_does_not_halt():
    rm = RiskManager(RiskConfig(breaches_required=3), "GOOG")
    assert rm.mark(100.0) is None
    assert rm.mark(80.0) is None and rm.mark(100.0) is None  # one bad mark, then back
    assert [rm.mark(80.0) for _ in range(3)] == [None, None, "halt"]


def test_bad_ticks_are_counted_and_not_traded(records, tmp_path):
    clean = _run(records[:6000].copy(), tmp_path / "clean", strategy="ofi_threshold", params={"threshold": 200.0},
                 cash=1e6)
    bad = records[:6000].copy()
    inject = []
    for k, kind in ((500, "nan"), (1500, "crossed"), (2500, "out_of_order"), (3500, "duplicate")):
        r = bad[k].copy()
        if kind == "nan":
            r["book"][0] = np.nan
            r["seq"] = -1  # a new tick (not a duplicate), with a NaN best ask
            r["ts"] = bad[k - 1]["ts"]
        elif kind == "crossed":
            r["book"][2] = r["book"][0] + 1.0  # best bid above best ask
            r["seq"] = -2
            r["ts"] = bad[k - 1]["ts"]
        elif kind == "out_of_order":
            r["seq"] = -3
            r["ts"] = bad[k - 100]["ts"] - 1
        else:
            r = bad[k - 1].copy()  # the same tick again
        inject.append((k, r))
    rows = list(bad)
    for k, r in reversed(inject):
        rows.insert(k, r)
    dirty = np.array(rows, dtype=bad.dtype)
    out = _run(dirty, tmp_path / "dirty", strategy="ofi_threshold", params={"threshold": 200.0}, cash=1e6)
    assert out["skipped"] == {"nan": 1, "crossed": 1, "out_of_order": 1, "duplicate": 1}
    assert out["ticks"] == clean["ticks"] == 6000
    assert [(o["order_id"], o["side"], o["size"], o["ts_submit"]) for o in out["orders"]] == \
        [(o["order_id"], o["side"], o["size"], o["ts_submit"]) for o in clean["orders"]]
    assert out["pnl"] == pytest.approx(clean["pnl"])
