"""REST API over a real run (simulated LOBSTER days ingested, features, Feast, backtests, walk-forward),
served by uvicorn on a loopback port and called over HTTP."""

from __future__ import annotations

import json

import httpx
import polars as pl
import pytest

from flowsense.data.lake import Lake, Partition
from tests.api.conftest import auth

V1 = "/api/v1"


@pytest.fixture(scope="module")
def client(api):
    with httpx.Client(base_url=api.url, timeout=30) as c:
        yield c


def test_health_needs_no_key_everything_else_does(client: httpx.Client, keys: dict[str, str]) -> None:
    r = client.get(f"{V1}/health")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    for path in ("/version", "/instruments", "/state", "/backtests", "/models", "/book/AAA", "/admin/audit"):
        r = client.get(V1 + path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert "missing API key" in r.json()["message"]
    bad = client.get(f"{V1}/version", headers=auth(keys["read"][:-3] + "xyz"))
    assert bad.status_code == 401 and bad.json()["message"] == "invalid or revoked API key"
    assert client.get(f"{V1}/version", headers={"Authorization": "Basic abc"}).status_code == 401
    ok = client.get(f"{V1}/version", headers=auth(keys["read"]))
    assert ok.status_code == 200 and ok.json()["key"]["scope"] == "read"


def test_instruments_partitions_validation(client: httpx.Client, keys: dict[str, str], real_settings) -> None:
    h = auth(keys["read"])
    inst = client.get(f"{V1}/instruments", headers=h).json()
    assert [i["symbol"] for i in inst["items"]] == ["AAA", "BBB"]
    assert inst["items"][0]["tick_size"] == pytest.approx(0.01)
    parts = client.get(f"{V1}/partitions", headers=h, params={"limit": 1}).json()
    assert parts["total"] == 2 and len(parts["items"]) == 1 and parts["next_offset"] == 1
    p = parts["items"][0]
    lake = Lake(real_settings.lake)
    assert p["events"] == lake.read("events", Partition.parse("AAA|2024-01-02")).height
    assert p["ok"] is True and "features_1s" in p["tables"]
    v = client.get(f"{V1}/partitions/AAA/2024-01-02/validation", headers=h).json()
    assert v["crossed_book"] == 0 and v["severity"]["crossed_book"] == "error" and v["source_sha256"]
    assert client.get(f"{V1}/partitions/AAA/2023-01-02/validation", headers=h).status_code == 404
    bad = client.get(f"{V1}/partitions/AAA/20240102/validation", headers=h)
    assert bad.status_code == 422 and "date" in bad.json()["message"]


def test_features_from_the_feast_online_store(client: httpx.Client, keys: dict[str, str], real_settings) -> None:
    r = client.get(f"{V1}/features/AAA", headers=auth(keys["read"]), timeout=300)  # first call imports Feast
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["source"] == "feast_online_store" and got["count"] > 20
    last = Lake(real_settings.lake).read("features_1s", Partition.parse("AAA|2024-01-02")).sort("ts").tail(1)
    assert got["views"]["features_1s"]["mid_close"] == pytest.approx(last["mid_close"][0])
    assert client.get(f"{V1}/features/ZZZ", headers=auth(keys["read"])).status_code == 404


def test_book_and_trades_from_the_lake_without_a_worker_publishing(client: httpx.Client, keys: dict[str, str],
                                                                   real_settings) -> None:
    h = auth(keys["read"])
    b = client.get(f"{V1}/book/BBB", headers=h, params={"levels": 3}).json()
    last = Lake(real_settings.lake).read("book", Partition.parse("BBB|2024-01-02")).tail(1).row(0, named=True)
    assert b["source"] in ("lake", "worker")
    if b["source"] == "lake":
        assert b["bids"][0] == [last["bid_px_1"], last["bid_sz_1"]] and len(b["asks"]) == 3
    t = client.get(f"{V1}/trades/BBB", headers=h, params={"limit": 5}).json()
    assert len(t["items"]) == 5
    assert client.get(f"{V1}/book/NOPE", headers=h).status_code == 404
    r = client.get(f"{V1}/book/AAA", headers=h, params={"levels": 0})
    assert r.status_code == 422 and "levels" in r.json()["message"]
    assert client.get(f"{V1}/book/..%2Fetc", headers=h).status_code in (404, 422)


def test_backtests_metrics_files_equity_and_walkforward(client: httpx.Client, keys: dict[str, str],
                                                        real_settings) -> None:
    h = auth(keys["read"])
    lst = client.get(f"{V1}/backtests", headers=h).json()
    on_disk_runs = sorted(real_settings.reports.rglob("metrics.json"))
    assert lst["total"] == len(on_disk_runs) >= 2
    assert {("AAA", "ofi_threshold"), ("AAA", "buy_and_hold")} <= {(b["symbol"], b["strategy"]) for b in lst["items"]}
    one = next(b for b in lst["items"] if b["symbol"] == "AAA" and b["strategy"] == "ofi_threshold")
    on_disk = json.loads((real_settings.reports / one["id"].replace(":", "/") / "metrics.json").read_text())
    m = client.get(f"{V1}/backtests/{one['id']}", headers=h).json()
    assert m["sharpe"] == pytest.approx(on_disk["sharpe"]) and m["engine"]["n_fills"] == on_disk["engine"]["n_fills"]
    html = client.get(f"{V1}/backtests/{one['id']}/files/report.html", headers=h)
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html") and b"<html" in html.content[:500].lower()
    assert client.get(f"{V1}/backtests/{one['id']}/files/secret.txt", headers=h).status_code in (404, 422)
    assert client.get(f"{V1}/backtests/..:..:etc/files/report.html", headers=h).status_code in (404, 422)
    eq = client.get(f"{V1}/backtests/{one['id']}/equity", headers=h, params={"points": 100}).json()
    equity = pl.read_parquet(real_settings.reports / one["id"].replace(":", "/") / "equity.parquet")
    assert eq["rows"] == equity.drop_nulls(["equity"]).height and len(eq["t"]) <= 101
    assert eq["v"][-1] == pytest.approx(equity.drop_nulls(["equity"]).sort("ts")["equity"][-1])
    wf = client.get(f"{V1}/walkforward", headers=h, params={"symbol": "AAA", "costs": "net", "limit": 1000}).json()
    assert {r["strategy"] for r in wf["items"]} == {"ofi_ridge", "flat", "buy_and_hold", "last_return_sign"}
    folds = client.get(f"{V1}/walkforward", headers=h, params={"folds": True, "limit": 5}).json()
    assert folds["total"] > 5 and "fold" in folds["items"][0]


def test_scopes_rate_limit_cors_and_errors(client: httpx.Client, keys: dict[str, str]) -> None:
    r = client.post(f"{V1}/admin/halt", headers=auth(keys["read"]), json={"reason": "x"})
    assert r.status_code == 403 and "admin" in r.json()["message"]
    codes = [client.get(f"{V1}/version", headers=auth(keys["slow"])).status_code for _ in range(6)]
    assert codes[:3] == [200, 200, 200] and 429 in codes[3:]
    limited = client.get(f"{V1}/version", headers=auth(keys["slow"]))
    if limited.status_code == 429:
        assert int(limited.headers["retry-after"]) >= 1
    pre = client.options(f"{V1}/version", headers={"Origin": "https://evil.example",
                                                   "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in pre.headers
    got = client.get(f"{V1}/version", headers={**auth(keys["read"]), "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in got.headers
    for path, params in (("/backtests", {"limit": "lots"}), ("/fills", {"offset": -1}), ("/walkforward", {"costs": "x"})):
        r = client.get(V1 + path, headers=auth(keys["read"]), params=params)
        assert r.status_code == 422, (path, r.text)
        body = r.json()
        assert body["error"] == "invalid_request" and body["message"] and "Traceback" not in r.text
    r = client.post(f"{V1}/admin/models/m/promote", headers=auth(keys["admin"]), content=b"{not json",
                    )
    assert r.status_code == 422 and "Traceback" not in r.text
    assert client.get("/api/v1/nothing-here", headers=auth(keys["read"])).json()["error"] == "not_found"


def test_openapi_is_served(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == "FlowSense API"
    for path in ("/api/v1/state", "/api/v1/book/{symbol}", "/api/v1/backtests", "/api/v1/models/{name}/evaluation",
                 "/api/v1/admin/halt", "/api/v1/admin/models/{name}/promote"):
        assert path in spec["paths"], path
    assert client.get("/docs").status_code == 200


def test_cors_only_for_configured_origins(real_settings) -> None:
    from starlette.testclient import TestClient

    from flowsense_api.app import create_app

    app = create_app(real_settings, cors_origins=("https://desk.example",))
    c = TestClient(app)  # no lifespan needed for a preflight
    ok = c.options("/api/v1/state", headers={"Origin": "https://desk.example", "Access-Control-Request-Method": "GET",
                                             "Access-Control-Request-Headers": "authorization"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://desk.example"
    other = c.options("/api/v1/state", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in other.headers


def test_worker_decisions_newest_first_paginated(client: httpx.Client, keys: dict[str, str], real_settings) -> None:
    from flowsense.live.state import StateStore

    assert client.get(f"{V1}/signals/AAA").status_code == 401
    h = auth(keys["read"])
    first = client.get(f"{V1}/signals/AAA", headers=h, params={"limit": 5}).json()
    second = client.get(f"{V1}/signals/AAA", headers=h, params={"limit": 5, "offset": 5}).json()
    assert len(first["items"]) == 5 and first["next_offset"] == 5 and second["offset"] == 5
    cursors = [r["cursor"] for r in first["items"] + second["items"]]
    assert cursors == sorted(cursors, reverse=True) and len(set(cursors)) == 10
    # what the real run's worker (model_signal on the champion) published, as the store has it
    got = client.get(f"{V1}/signals/AAA", headers=h, params={"limit": 1000}).json()["items"]
    kept = StateStore(real_settings.worker_state, readonly=True).recent_events("signals", "AAA", limit=1000)
    ids = [e["id"] for e in kept]  # read after: the dashboard test may publish meanwhile, never remove
    assert ids[len(ids) - len(got):] == [r["cursor"] for r in got] and len(ids) - len(got) <= 2
    orders = [r for r in got if r.get("kind") == "order"]
    assert orders and all(r["model"] == "flowsense-logit_ofi@1" and 0 < r["p_up"] < 1 for r in orders)
    assert all(r["side"] in (1, -1) and r["qty"] > 0 and r["risk"] in ("accepted", "scaled", "rejected")
               and r["latency_us"] > 0 and r["ts"].startswith("2024-01-02T") for r in orders)
    ticks = [r for r in got if r.get("kind") == "tick"]
    assert ticks and all(0 < t["lat_p50_us"] <= t["lat_p99_us"] for t in ticks)
    assert client.get(f"{V1}/signals/BBB", headers=h).json()["items"] == []
    assert client.get(f"{V1}/signals/AAA", headers=h, params={"limit": 0}).status_code == 422
