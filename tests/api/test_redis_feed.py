"""Production feed: with FLOWSENSE_PROFILE=production the hub reads the worker's Redis pub/sub channels
``flowsense:events:<topic>`` (the real Redis on 127.0.0.1:6379) and fans them out over /ws, with resume
from its ring. A unique symbol keeps this test apart from anything else publishing on the server."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from websockets.sync.client import connect

from flowsense.config import Settings
from tests.api.conftest import ServerThread
from tests.api.test_ws import events, recv_until

redis = pytest.importorskip("redis")


@pytest.fixture
def r() -> redis.Redis:
    client = redis.Redis.from_url(Settings(home=Path(".")).redis_url)
    try:
        client.ping()
    except redis.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379 (scripts/ensure-services.sh starts it)")
    return client


def test_redis_pubsub_events_reach_websocket_clients_with_resume(tmp_path: Path, r: redis.Redis) -> None:
    from flowsense_api.app import create_app
    from flowsense_api.keys import KeyStore

    settings = Settings(home=tmp_path / "home", profile="production")
    _, token = KeyStore(settings.api_dir / "keys.db").create("read")
    app = create_app(settings)
    sym = f"R{uuid.uuid4().hex[:8].upper()}"
    base = 10**12 + int(time.time() * 1000) % 10**9  # ids like the store's, unique for this run
    with ServerThread(app) as srv:
        hub = app.state.api.hub
        deadline = time.monotonic() + 10
        while hub.source_error is not None or hub._task is None:
            assert time.monotonic() < deadline, hub.source_error
            time.sleep(0.05)
        time.sleep(0.3)
        with connect(srv.url.replace("http", "ws") + "/ws") as ws:
            ws.send(json.dumps({"op": "auth", "key": token}))
            recv_until(ws, lambda m: m["type"] == "hello")
            ws.send(json.dumps({"op": "subscribe", "topics": ["book", "fills"], "symbols": [sym]}))
            recv_until(ws, lambda m: m["type"] == "subscribed")
            for i, topic in enumerate(("book", "pnl", "fills")):
                data = ({"ts": 1, "seq": i, "bid": [10.0], "bid_size": [5.0], "ask": [10.01], "ask_size": [7.0]}
                        if topic == "book" else {"n": i})
                r.publish(f"flowsense:events:{topic}", json.dumps(
                    {"id": base + i, "ts": time.time(), "topic": topic, "symbol": sym, "data": data}))
            got = events(recv_until(ws, lambda m: any(e["topic"] == "fills" for e in m.get("items", []))))
            assert [(e["topic"], e["cursor"]) for e in got] == [("book", base), ("fills", base + 2)]
            assert got[0]["data"]["bids"] == [[10.0, 5]]
        r.publish("flowsense:events:fills", json.dumps({"id": base + 3, "ts": time.time(), "topic": "fills",
                                                         "symbol": sym, "data": {"n": 3}}))
        r.publish("flowsense:events:fills", b"not json")  # ignored, the feed carries on
        time.sleep(0.5)
        with connect(srv.url.replace("http", "ws") + "/ws",
                     additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            recv_until(ws, lambda m: m["type"] == "hello")
            ws.send(json.dumps({"op": "subscribe", "topics": ["fills"], "symbols": [sym], "cursor": base + 2}))
            got = events(recv_until(ws, lambda m: m.get("replay") is True))
            assert [e["data"]["n"] for e in got] == [3]
        assert hub.mode == "production" and hub.source_error is None
