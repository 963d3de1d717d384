"""WebSocket /ws: authentication, subscriptions per topic and symbol, live updates from the worker's state
store feed, resume after a reconnect (every missed event exactly once), bad frames answered, not fatal."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from flowsense.live.state import StateStore


def ws_url(api: Any) -> str:
    return api.url.replace("http://", "ws://") + "/ws"


def recv_until(ws: Any, pred: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Frames until one satisfies ``pred`` (returned list includes it)."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            msg = json.loads(ws.recv(timeout=max(0.05, deadline - time.monotonic())))
        except TimeoutError:
            break
        got.append(msg)
        if pred(msg):
            return got
    raise AssertionError(f"condition not met; frames: {got[-5:]}")


def events(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for f in frames if f["type"] == "events" for e in f["items"]]


@pytest.fixture(scope="module")
def store(real_settings) -> StateStore:
    return StateStore(real_settings.worker_state)


def test_unauthenticated_sockets_are_closed(api: Any) -> None:
    with connect(ws_url(api)) as ws:
        ws.send(json.dumps({"op": "subscribe", "topics": ["book"]}))
        msg = json.loads(ws.recv(timeout=10))
        assert msg["type"] == "error" and msg["error"] == "unauthorized"
        with pytest.raises(ConnectionClosed) as exc:
            ws.recv(timeout=10)
        assert exc.value.rcvd.code == 4401
    with connect(ws_url(api)) as ws:
        ws.send(json.dumps({"op": "auth", "key": "fsk_000000000000_nope"}))
        assert json.loads(ws.recv(timeout=10))["message"] == "invalid or revoked API key"


def test_live_updates_filtered_by_topic_and_symbol_then_resume(api: Any, keys: dict[str, str], store: StateStore) -> None:
    with connect(ws_url(api), additional_headers={"Authorization": f"Bearer {keys['read']}"}) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello" and "book" in hello["topics"]
        ws.send(json.dumps({"op": "subscribe", "topics": ["book", "fills"], "symbols": ["WSA"]}))
        recv_until(ws, lambda m: m["type"] == "subscribed")
        ws.send(json.dumps({"op": "subscribe", "topics": ["nonsense"]}))
        err = recv_until(ws, lambda m: m["type"] == "error")[-1]
        assert "unknown topic" in err["message"]
        ws.send("not json")
        assert recv_until(ws, lambda m: m["type"] == "error")[-1]["type"] == "error"
        # the worker's write path: StateStore.publish (what flowsense.live.worker calls per tick)
        store.publish("book", "WSA", {"ts": 1_704_205_800_000_000_000, "seq": 1, "bid": [100.0, 99.99],
                                      "bid_size": [300.0, 0.0], "ask": [100.01, 100.02], "ask_size": [200.0, 50.0]})
        store.publish("book", "OTHER", {"ts": 1, "seq": 1, "bid": [1.0], "bid_size": [1.0], "ask": [2.0], "ask_size": [1.0]})
        store.publish("pnl", "WSA", {"equity": 1.0})
        store.publish("fills", "WSA", {"client_order_id": "c-1", "price": 100.01, "size": 100, "side": 1})
        frames = recv_until(ws, lambda m: any(e["topic"] == "fills" for e in m.get("items", [])))
        got = events(frames)
        assert [(e["topic"], e["symbol"]) for e in got] == [("book", "WSA"), ("fills", "WSA")]
        book = got[0]["data"]
        assert book["bids"] == [[100.0, 300]] and book["asks"] == [[100.01, 200], [100.02, 50]]
        assert book["ts"].startswith("2024-01-02T14:30:00")
        cursor = max(e["cursor"] for e in got)
    # REST sees the same book the worker published
    import httpx

    r = httpx.get(f"{api.url}/api/v1/book/WSA", headers={"Authorization": f"Bearer {keys['read']}"}).json()
    assert r["source"] == "worker" and r["bids"] == [[100.0, 300]]

    # missed while disconnected -> replayed once on resume, then live again
    for i in range(5):
        store.publish("fills", "WSA", {"client_order_id": f"c-{i + 2}", "price": 100.0, "size": 1, "side": -1})
    last_id = store.events_since(cursor, limit=100)[1]
    deadline = time.monotonic() + 10
    while httpx.get(f"{api.url}/api/v1/version", headers={"Authorization": f"Bearer {keys['read']}"}
                    ).json()["events"]["cursor"] < last_id and time.monotonic() < deadline:
        time.sleep(0.05)  # the hub has them in its ring: what follows is a replay, not the live feed
    with connect(ws_url(api)) as ws:
        ws.send(json.dumps({"op": "auth", "key": keys["read"]}))
        recv_until(ws, lambda m: m["type"] == "hello")
        ws.send(json.dumps({"op": "subscribe", "topics": ["fills"], "symbols": ["WSA"], "cursor": cursor}))
        seen: list[str] = []

        def all_missed(m: dict[str, Any]) -> bool:
            if m["type"] == "events":
                assert m.get("replay") is True, m
            seen.extend(e["data"]["client_order_id"] for e in events([m]))
            return len(seen) >= 5

        recv_until(ws, all_missed)
        replayed = list(seen)
        assert replayed == [f"c-{i + 2}" for i in range(5)]
        store.publish("fills", "WSA", {"client_order_id": "c-live", "price": 1.0, "size": 1, "side": 1})
        frames = recv_until(ws, lambda m: any(e["data"].get("client_order_id") == "c-live" for e in m.get("items", [])))
        ids = [e["data"]["client_order_id"] for e in events(frames)]
        assert ids.count("c-live") == 1 and not set(ids) & set(replayed)
        ws.send(json.dumps({"op": "ping"}))
        assert recv_until(ws, lambda m: m["type"] == "pong")[-1]["cursor"] >= cursor + 6
