"""Models (the real MLflow registry of the run) and admin calls: halt/resume through the worker's state
store, gated and forced promotion, every admin call in the audit log (key id, never the key)."""

from __future__ import annotations

import json

import httpx
import pytest

from flowsense.live.state import StateStore
from tests.api.conftest import auth

V1 = "/api/v1"
MODEL = "flowsense-logit_ofi"


@pytest.fixture(scope="module")
def client(api):
    with httpx.Client(base_url=api.url, timeout=120) as c:
        yield c


def test_registry_versions_aliases_and_evaluation_with_baselines(client: httpx.Client, keys: dict[str, str]) -> None:
    h = auth(keys["read"])
    models = client.get(f"{V1}/models", headers=h).json()
    row = next(m for m in models["items"] if m["name"] == MODEL)
    assert row["aliases"]["champion"] == "1" and row["latest_version"] == 2
    m = client.get(f"{V1}/models/{MODEL}", headers=h).json()
    assert [v["version"] for v in m["versions"]] == [2, 1] and m["champion"] == "1"
    assert "champion" in m["versions"][1]["aliases"] and "accuracy" in m["versions"][1]["metrics"]
    ev = client.get(f"{V1}/models/{MODEL}/evaluation", headers=h).json()
    assert ev["version"] == 1
    kinds = {r["name"]: r["kind"] for r in ev["table"]}
    assert kinds["majority"] == "baseline" and kinds["ofi_sign"] == "baseline" and "logit_ofi C=1" in kinds
    assert client.get(f"{V1}/models/{MODEL}/evaluation", headers=h, params={"version": "9"}).status_code == 404
    assert client.get(f"{V1}/models/nope", headers=h).status_code == 404


def test_halt_resume_promote_are_audited(client: httpx.Client, keys: dict[str, str], real_settings) -> None:
    store = StateStore(real_settings.worker_state)  # the worker's store (a worker has run in this home)
    h = auth(keys["admin"])
    r = client.post(f"{V1}/admin/halt", headers=h, json={"reason": "test: stop trading"})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["after"] == "HALTED"
    st = store.trading_state()
    assert st["state"] == "HALTED" and st["reason"] == "operator"  # what the worker applies at its next decision
    state = client.get(f"{V1}/state", headers=h).json()
    assert state["trading_state"]["state"] == "HALTED"
    r = client.post(f"{V1}/admin/resume", headers=h, json={})
    assert r.json()["result"] == {"before": "HALTED", "after": "ACTIVE", "actor": r.json()["result"]["actor"],
                                  "reason": ""}
    assert store.trading_state()["state"] == "ACTIVE"

    gated = client.post(f"{V1}/admin/models/{MODEL}/promote", headers=h, json={"version": 2}).json()
    assert gated["gated"] is True and gated["promoted"] is False and gated["reason"]
    assert client.get(f"{V1}/models/{MODEL}", headers=h).json()["challenger"] == "2"
    forced = client.post(f"{V1}/admin/models/{MODEL}/promote", headers=h, json={"version": 2, "force": True}).json()
    assert forced["promoted"] is True and forced["previous"] == 1
    assert client.get(f"{V1}/models/{MODEL}", headers=h).json()["champion"] == "2"
    missing = client.post(f"{V1}/admin/models/{MODEL}/promote", headers=h, json={"version": 99})
    assert missing.status_code == 404
    bad = client.post(f"{V1}/admin/models/{MODEL}/promote", headers=h, json={"version": "two"})
    assert bad.status_code == 422 and "version" in bad.json()["message"]
    # put the champion back for the other tests
    client.post(f"{V1}/admin/models/{MODEL}/promote", headers=h, json={"version": 1, "force": True})

    audit = client.get(f"{V1}/admin/audit", headers=h, params={"limit": 50}).json()["items"]
    key_id = keys["admin"][4:16]
    mine = [a for a in audit if a["key_id"] == key_id]
    assert [a["action"] for a in reversed(mine)] == ["halt", "resume", "promote", "promote", "promote", "promote"]
    assert [a["status"] for a in reversed(mine)] == [200, 200, 200, 200, 404, 200]
    assert mine[-1]["params"]["reason"] == "test: stop trading" and mine[-1]["client"] == "127.0.0.1"
    raw = (real_settings.api_dir / "audit.jsonl").read_text()
    assert keys["admin"] not in raw and keys["admin"][16:] not in raw
    assert all(json.loads(line)["ts"] for line in raw.splitlines())
    assert client.get(f"{V1}/admin/audit", headers=auth(keys["read"])).status_code == 403
