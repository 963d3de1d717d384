"""The API never affects the worker: a real worker replays a day (own process) while the real
`flowsense api` process serves WebSocket clients; the API is killed and restarted and the clients drop
abruptly, yet the worker finishes with exactly the fills and PnL of an undisturbed run of the same day.
Also: the server's own log (access log on) never contains a key."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from flowsense.live.state import StateStore
from tests.api.conftest import auth

CLI = [sys.executable, "-c", "from flowsense.cli import app; app()"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    fh = open(log, "ab")  # noqa: SIM115 - closed with the process
    return subprocess.Popen([*CLI, "api", "--port", str(port)], env=env, stdout=fh, stderr=subprocess.STDOUT)


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"API exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("API did not come up")


def clients(url: str, token: str, n: int, cursor: int | None = None) -> list[Any]:
    out = []
    for _ in range(n):
        ws = connect(url.replace("http", "ws") + "/ws", open_timeout=30)
        ws.send(json.dumps({"op": "auth", "key": token}))
        assert json.loads(ws.recv(timeout=30))["type"] == "hello"
        sub: dict[str, Any] = {"op": "subscribe", "topics": ["book", "signals", "fills", "pnl", "state"]}
        if cursor is not None:
            sub["cursor"] = cursor
        ws.send(json.dumps(sub))
        out.append(ws)
    return out


def drain(ws: Any, seconds: float) -> list[dict[str, Any]]:
    got, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            got.append(json.loads(ws.recv(timeout=0.2)))
        except TimeoutError:
            continue
    return got


def first_events(ws: Any, timeout: float) -> list[dict[str, Any]]:
    """The items of the first ``events`` frame that arrives within ``timeout`` seconds (empty if none)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            frame = json.loads(ws.recv(timeout=0.5))
        except TimeoutError:
            continue
        if frame.get("type") == "events" and frame.get("items"):
            return list(frame["items"])
    return []


def test_api_restart_and_dropped_clients_never_affect_the_worker(real_settings, keys: dict[str, str],
                                                                  tmp_path: Path) -> None:
    reference = StateStore(real_settings.worker_state, readonly=True).status()  # the undisturbed run
    if not reference["ticks"]:
        import pytest

        pytest.skip("the shared run has no worker run to compare with (flowsense.live worker not installed)")
    state = tmp_path / "worker"
    env = {**os.environ, "FLOWSENSE_HOME": str(real_settings.home), "FLOWSENSE_STATE_DSN": str(state),
           "FLOWSENSE_PROFILE": "local", "PYTHONWARNINGS": "ignore"}
    # the same strategy as the shared run's worker (model_signal on the registered champion, see realrun)
    metas = StateStore(real_settings.worker_state, readonly=True).metas()
    strategy = ["--strategy", metas["strategy"], *(a for k, v in json.loads(metas["params"] or "{}").items()
                                                  for a in ("--param", f"{k}={v}"))]
    if metas["strategy"] == "model_signal":
        from tests.api.realrun import MODEL

        strategy += ["--model", MODEL]
    worker = subprocess.Popen([*CLI, "worker", "run", "--source", "replay", "--symbol", "AAA", "--date", "2024-01-02",
                               "--speed", "1500", "--state", str(state), "--json", *strategy], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    port, log = free_port(), tmp_path / "api.log"
    url = f"http://127.0.0.1:{port}"
    api = start_api(env, port, log)
    try:
        wait_up(url, api)
        deadline = time.monotonic() + 120
        while not (state / "state.db").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        ws = clients(url, keys["read"], 3)
        seen = drain(ws[0], 3.0)
        assert httpx.get(f"{url}/api/v1/state", headers=auth(keys["read"]), timeout=30).status_code == 200
        httpx.get(f"{url}/api/v1/state", headers=auth(keys["read"][:-2] + "zz"), timeout=30)  # refused, logged
        cursor = max([f["cursor"] for f in seen if f.get("type") == "events"] or [0])
        api.send_signal(signal.SIGKILL)  # the API dies with clients attached
        api.wait(30)
        for w in ws:
            w.close_socket()
        assert worker.poll() is None, "the worker stopped when the API died"
        api = start_api(env, port, log)  # and comes back on the same port
        wait_up(url, api)
        ws = clients(url, keys["read"], 2, cursor=cursor)
        later = first_events(ws[0], 60.0)  # what the worker wrote after `cursor`, resumed (a busy machine is slow)
        assert later and min(e["cursor"] for e in later) > cursor
        for w in ws:  # the dashboard closes without a goodbye
            w.close_socket()
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err.decode()[-2000:]
    finally:
        for p in (api, worker):
            if p.poll() is None:
                p.kill()
                p.wait(30)
    summary = json.loads(out.decode().strip().splitlines()[-1])
    after = StateStore(state, readonly=True).status()
    assert summary["ticks"] == reference["ticks"] and after["fills"] == reference["fills"]
    assert after["pnl"] == reference["pnl"] and after["orders"] == reference["orders"]
    text = log.read_text()
    assert "GET /api/v1/state" in text  # the access log is on ...
    assert keys["read"] not in text and keys["read"][16:] not in text and "Bearer" not in text  # ... keys are not
