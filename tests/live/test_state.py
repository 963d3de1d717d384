"""The worker's state store on SQLite and PostgreSQL: write-ahead orders, idempotent fills, read API."""

from __future__ import annotations

import uuid

import pytest

from flowsense.live.state import StateError, StateStore


def _order(cid: str, seq: int, status: str = "new") -> dict:
    return {"client_order_id": cid, "seq": seq, "symbol": "GOOG", "side": 1, "type": "market", "price": None,
            "size": 100, "status": status, "filled": 0, "avg_price": None, "fees": 0.0, "ts_submit": 1,
            "strategy": "ofi_threshold", "model_version": "3", "tick_seq": 7}


def _exercise(store: StateStore) -> None:
    assert store.trading_state()["state"] == "ACTIVE"
    store.insert_order(_order("r1-1", 1))
    with pytest.raises(StateError, match="exists already"):
        store.insert_order(_order("r1-1", 1))
    store.upsert_orders([{**_order("r1-1", 1), "status": "filled", "filled": 100, "avg_price": 580.5}])
    store.insert_order(_order("r1-2", 2))
    assert [o["client_order_id"] for o in store.open_orders()] == ["r1-2"]
    fill = {"fill_id": "r1-1:1", "client_order_id": "r1-1", "symbol": "GOOG", "ts": 10, "side": 1,
            "price": 580.5, "size": 100, "fee": 0.46, "liquidity": "taker", "slippage": 0.05, "book_price": 580.45,
            "tick_seq": 7, "model_version": "3"}
    assert store.add_fills([fill]) == 1
    assert store.add_fills([fill]) == 0  # redelivered execution: ignored
    assert len(store.fills(limit=10)) == 1 and store.fills(limit=10, offset=1) == []
    store.set_meta("initial_cash", "1000000")
    store.set_position({"symbol": "GOOG", "position": 100, "avg_price": 580.5, "cash": 1e6 - 58050.46,
                        "realized": 0.0, "fees": 0.46, "mark": 580.0, "equity": 1e6 - 58050.46 + 58000.0,
                        "updated": 1.0})
    p = store.pnl()
    assert p["net"] == pytest.approx(-50.46) and p["fees"] == pytest.approx(0.46)
    store.add_equity(10, "GOOG", 999_949.54, 941_949.54, 100, 580.0, 1e6, 5.046e-5)
    assert store.equity_curve()[0]["equity"] == pytest.approx(999_949.54)
    store.set_trading_state("HALTED", "drawdown 15.2% from peak")
    assert store.trading_state()["state"] == "HALTED"
    events, cur = store.events_since(0)
    assert events[-1]["topic"] == "state" and events[-1]["data"]["state"] == "HALTED"
    store.publish("fills", "GOOG", {"price": 580.5})
    more, cur2 = store.events_since(cur)
    assert [e["topic"] for e in more] == ["fills"] and cur2 > cur
    st = store.status()
    assert st["orders"] == 2 and st["unique_client_order_ids"] == 2 and st["fills"] == 1 and st["position"] == 100


def test_sqlite_store(tmp_path):
    store = StateStore(tmp_path / "state")
    _exercise(store)
    ro = StateStore(tmp_path / "state", readonly=True)  # what the API opens
    assert ro.trading_state()["state"] == "HALTED" and ro.positions()[0]["position"] == 100


def test_readonly_missing(tmp_path):
    with pytest.raises(StateError, match="no worker state"):
        StateStore(tmp_path / "nothing", readonly=True)


def test_postgres_store():
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"fs_state_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect("postgresql://postgres@127.0.0.1:5432/postgres")
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL not reachable: {exc}")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    try:
        store = StateStore(f"postgresql://postgres@127.0.0.1:5432/{name}")
        _exercise(store)
        store.close()
    finally:
        admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()
