"""The worker's decision events (``signals``) and market trades (``trades``) on a simulated day: every order
intent carries the prediction in effect, the intended order, the risk manager's decision (accepted, scaled
with its factor, rejected with the reason) and the tick-to-decision latency; a sampled tick event carries the
rolling latency p50/p99; trades are the day's market trades; nothing is published while recovering."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from flowsense.data.schemas import EVENT_TYPES
from flowsense.features.tick import TRADE_EVENT_TYPES
from flowsense.live.risk import HALTED, REDUCING, InstrumentLimits, RiskConfig, Signal
from flowsense.live.runner import ReplaySource, RunOptions, build_broker, run_worker
from flowsense.live.state import StateStore
from flowsense.live.ticks import lake_records
from flowsense.live.worker import Worker, WorkerConfig
from flowsense.trading import OrderRequest

SYMBOL, DATE = "SIM", "2024-01-02"


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> np.ndarray:
    from flowsense.data.ingest import ingest_file
    from flowsense.data.lake import Lake
    from flowsense.sim import simulate

    home = tmp_path_factory.mktemp("decisions")
    lake = Lake(home / "lake")
    for z in simulate([SYMBOL], 1, home / "inbox", scale=0.05, seed=3):
        ingest_file(z, lake)
    return lake_records(str(lake.root), SYMBOL, DATE)


def _events(state: Path, topic: str) -> list[dict[str, Any]]:
    ev, _ = StateStore(state, readonly=True).events_since(0, limit=10**7, topics=[topic])
    return [e["data"] for e in ev]


def test_rule_strategy_orders_ticks_and_trades(records: np.ndarray, tmp_path: Path) -> None:
    state = tmp_path / "st"
    cfg = WorkerConfig(SYMBOL, DATE, "ofi_threshold", {}, publish_interval_s=0.0)
    out = run_worker(cfg, ReplaySource(records, SYMBOL, DATE, batch=200), StateStore(state), signals=False)
    assert out["session_done"] and out["n_orders"] > 5
    sig = _events(state, "signals")
    orders = [s for s in sig if s["kind"] == "order"]
    # one event per order intent (nothing suppressed at 50 per interval here), as many as orders + refusals
    assert out["decision_events_suppressed"] == 0
    assert len(orders) == out["n_orders"] + out["refused"] == out["decision_events"]
    cids = {o["client_order_id"] for o in StateStore(state, readonly=True).all_orders()}
    seqs = set(records["seq"].tolist())
    for o in orders:
        assert o["order"] in cids and o["seq"] in seqs and o["side"] in (1, -1) and o["qty"] > 0
        assert o["risk"] in ("accepted", "rejected") and o["type"] == "market"
        assert o["p_up"] is None and o["model"] is None  # a rule strategy: no prediction
        assert 0 < o["latency_us"] < 60e6
    assert sum(o["risk"] == "accepted" for o in orders) == out["n_orders"]
    ticks = [s for s in sig if s["kind"] == "tick"]
    assert len(ticks) >= 5
    for t in ticks:
        assert 0 < t["lat_p50_us"] <= t["lat_p99_us"] < 60e6 and 1 <= t["lat_n"] <= cfg.latency_window
        assert t["state"] == "ACTIVE" and t["seq"] in seqs
    assert [t["decisions"] for t in ticks] == sorted(t["decisions"] for t in ticks)
    # market trades: every published row is one of the day's trade events, with its price and size
    rows = [r for batch in _events(state, "trades") for r in batch]
    is_trade = np.isin(records["ev"], [EVENT_TYPES.index(t) for t in TRADE_EVENT_TYPES])
    trade_seq = {int(s): (float(p), int(z)) for s, p, z in
                 zip(records["seq"][is_trade], records["price"][is_trade], records["size"][is_trade], strict=True)}
    assert len(rows) > 20
    assert len(rows) <= len(trade_seq)
    for r in rows:
        assert r["seq"] in trade_seq and r["size"] == trade_seq[r["seq"]][1] > 0
        assert r["price"] == pytest.approx(trade_seq[r["seq"]][0]) and r["price"] > 0
        assert r["aggressor_side"] in (-1, 0, 1)
    assert [r["seq"] for r in rows] == sorted(r["seq"] for r in rows)


class Scripted:
    """Orders at fixed ticks (by row), a Kelly Signal, and a 'prediction' the worker must pass through."""

    def __init__(self, plan: dict[int, Any]) -> None:
        self.plan = plan
        self.last_prediction: float | None = None

    def on_book(self, view: Any) -> Sequence[Any]:
        self.last_prediction = 0.25 + 0.5 * (view.seq % 2)
        got = self.plan.get(view.seq)
        return [got] if got is not None else []


def test_risk_decisions_accepted_scaled_rejected(records: np.ndarray, tmp_path: Path) -> None:
    assert records.shape[0] > 5_500
    plan = {101: OrderRequest.market(1, 100), 2000: OrderRequest.market(-1, 300),  # a reversal while REDUCING
            3001: Signal(prob_up=0.9), 4000: OrderRequest.market(1, 7_000),  # > max order size
            5001: OrderRequest.market(1, 10)}  # HALTED
    states = {1500: REDUCING, 2500: "ACTIVE", 4500: HALTED}  # set before the batch starting at that row
    risk = RiskConfig(default_limits=InstrumentLimits(max_position=1_000, max_order_size=5_000))
    cfg = WorkerConfig(SYMBOL, DATE, "scripted", publish_interval_s=0.0, risk=risk)
    levels = records.dtype["book"].shape[0] // 4
    w = Worker(cfg, StateStore(tmp_path / "st"), build_broker("paper", levels, cfg.initial_cash), Scripted(plan),
               levels)
    for k in range(0, records.shape[0], 250):
        if k in states:
            w._change_state(states[k], "test")
        w.process(records[k:k + 250], records.shape[0])
        w.commit(str(k + 249))
    w.end_session()
    seq = records["seq"]
    sig = _events(tmp_path / "st", "signals")
    orders = {o["seq"]: o for o in sig if o["kind"] == "order"}
    assert set(orders) == {int(seq[i]) for i in plan}
    a, b, c, d, e = (orders[int(seq[i])] for i in sorted(plan))
    assert a["risk"] == "accepted" and a["side"] == 1 and a["qty"] == 100 and a["p_up"] == 0.75
    assert b["risk"] == "scaled" and b["side"] == -1 and b["qty"] == 300 and b["qty_sent"] == 100
    assert b["scale"] == pytest.approx(1 / 3, abs=1e-3) and b["reason"] == "reducing" and b["p_up"] == 0.25
    assert c["p_up"] == 0.9 and c["side"] == 1 and c["qty"] == c["target"] == 1_000 and c["regime"] == "normal"
    assert c["risk"] == "accepted"
    assert d["risk"] == "rejected" and d["reason"] == "max_order_size" and d["qty"] == 7_000
    assert e["risk"] == "rejected" and e["reason"] == "halted"
    for o in orders.values():
        assert math.isfinite(o["latency_us"]) and o["latency_us"] > 0 and o["model"] is None
    ticks = [s for s in sig if s["kind"] == "tick"]
    assert {t["p_up"] for t in ticks} <= {0.25, 0.75} and {t["state"] for t in ticks} >= {"ACTIVE", "HALTED"}


def test_nothing_is_published_twice_on_recovery(records: np.ndarray, tmp_path: Path) -> None:
    state = tmp_path / "st"
    cfg = WorkerConfig(SYMBOL, DATE, "ofi_threshold", {}, publish_interval_s=0.0)
    half = run_worker(cfg, ReplaySource(records, SYMBOL, DATE, batch=200), StateStore(state),
                      options=RunOptions(stop_after_ticks=records.shape[0] // 2), signals=False)
    first = [s["order"] for s in _events(state, "signals") if s["kind"] == "order"]
    assert len(first) == half["decision_events"] > 0
    full = run_worker(cfg, ReplaySource(records, SYMBOL, DATE, batch=200), StateStore(state), signals=False)
    assert full["restarts"] == 1 and full["session_done"]
    orders = [s["order"] for s in _events(state, "signals") if s["kind"] == "order"]
    assert len(orders) == len(set(orders))  # the recovery replay published none of its rebuilt decisions
    assert orders[:len(first)] == first and len(orders) == full["n_orders"] + full["refused"]


def test_publishing_off(records: np.ndarray, tmp_path: Path) -> None:
    cfg = WorkerConfig(SYMBOL, DATE, "ofi_threshold", {}, publish_interval_s=0.0, publish_decisions=False)
    out = run_worker(cfg, ReplaySource(records, SYMBOL, DATE, batch=200), StateStore(tmp_path / "st"),
                     signals=False)
    assert out["n_orders"] > 5 and out["decision_events"] == 0
    assert _events(tmp_path / "st", "signals") == [] and _events(tmp_path / "st", "trades") == []
    assert _events(tmp_path / "st", "book")
