"""The IB broker against a fake gateway at the ``ib_async.IB`` boundary (no IB gateway can run here):
acks, partial fills, rejects, a disconnect with fills during the outage -> reconnect with back-off and
reconciliation without a duplicate order; a restart adopts the gateway's state without re-sending."""

from __future__ import annotations

import pytest

from flowsense.adapters.ib.broker import IBBroker, IBError
from flowsense.live.runner import ReplaySource, Runner, RunOptions
from flowsense.live.state import StateStore
from flowsense.live.ticks import lake_records
from flowsense.live.worker import Worker, WorkerConfig
from flowsense.trading import make_strategy
from tests.live.conftest import GOOG
from tests.live.ib_fake import FakeIB

N = 4000


@pytest.fixture(scope="module")
def records(goog_home):
    rec = lake_records(str(goog_home / "lake"), *GOOG)[:N].copy()
    rec["n"] = N
    return rec


def _worker(store, ib, records):
    broker = IBBroker.connect(symbol="GOOG", ib=ib, sleep=lambda s: None, backoff_s=0.01)
    cfg = WorkerConfig(*GOOG, "ofi_threshold", {"threshold": 150.0}, broker="ib")
    w = Worker(cfg, store, broker, make_strategy({"strategy": "ofi_threshold", "config": {"threshold": 150.0}}), 10)
    return w, broker


def test_orders_fills_rejects_and_a_disconnect(records, tmp_path):
    ib = FakeIB(partial=True, reject_over=150)
    store = StateStore(tmp_path / "st")
    w, broker = _worker(store, ib, records)
    src = ReplaySource(records, *GOOG, batch=200)
    r = Runner(w, src, RunOptions(stop_after_ticks=2000))
    r.run()
    n_before = len(ib.placed_refs)
    assert n_before > 3
    ib.drop(down_attempts=3)  # fills execute while disconnected; three refused reconnects, then back
    assert broker.reconnects == 1 and ib.connected
    w2, _ = w, broker
    out = Runner(w2, src, RunOptions()).run()
    assert len(ib.placed_refs) == len(set(ib.placed_refs)), "an order went to the gateway twice"
    sent = [o for o in out["orders"] if o["status"] != "refused"]
    assert len(sent) == len(ib.placed_refs)
    assert {o["client_order_id"] for o in sent} == set(ib.placed_refs)
    fills = store.all_fills()
    assert sorted(f["fill_id"] for f in fills) == sorted(f.execution.execId for f in ib.fills())
    assert out["position"] == ib.position
    filled = [o for o in sent if o["status"] == "filled"]
    assert len(fills) == 2 * len(filled)  # every order filled in two partial executions
    rejected = [o for o in sent if o["status"] == "rejected"]
    assert rejected and all(o["size"] > 150 for o in rejected)
    assert ib.connect_calls == 1 + 3 + 1


def test_restart_adopts_gateway_state_without_resending(records, tmp_path):
    ib = FakeIB(partial=True)
    state = tmp_path / "st"
    w, _ = _worker(StateStore(state), ib, records)
    src = ReplaySource(records, *GOOG, batch=200)
    Runner(w, src, RunOptions(stop_after_ticks=2400)).run()
    placed = list(ib.placed_refs)
    ib.run_at_gateway()  # executions the dead worker never heard of
    # a new process: new broker on the same gateway; the store knows the session's orders
    w2, broker2 = _worker(StateStore(state), ib, records)
    out = Runner(w2, ReplaySource(records, *GOOG, batch=200), RunOptions()).run()
    assert out["recovery"]["broker"]["fills_recovered"] >= 0
    assert ib.placed_refs[: len(placed)] == placed
    assert len(ib.placed_refs) == len(set(ib.placed_refs))
    assert broker2.position == ib.position == out["position"]
    fills = StateStore(state, readonly=True).all_fills()
    assert len({f["fill_id"] for f in fills}) == len(fills) == len(ib.fills())


def test_no_gateway_gives_a_clear_error():
    ib = FakeIB(down_attempts=100)
    with pytest.raises(IBError, match="no connection after 3 attempts"):
        IBBroker.connect(symbol="GOOG", ib=ib, sleep=lambda s: None, max_attempts=3)

