"""Fixtures of the API tests: one small real run (simulate -> ingest -> features -> Feast -> backtests ->
walk-forward, and a worker state store), built once per test session and shared by every pytest-xdist
worker through a file lock; the API served by uvicorn on a free loopback port in a thread; keys."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flowsense.config import Settings

SCREENS = Path(os.environ.get("FLOWSENSE_SCREENS", "/work/coord/screens"))


def _build_once(base: Path) -> Path:
    """The real run under ``base/home`` (built by the first process that gets the lock)."""
    from tests.api.realrun import build

    base.mkdir(parents=True, exist_ok=True)
    home = base / "home"
    with open(base / ".lock", "w") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        if not (base / ".done").exists():
            shutil.rmtree(home, ignore_errors=True)
            build(home)
            (base / ".done").write_text("ok")
    return home


@pytest.fixture(scope="session")
def real_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """FLOWSENSE_HOME of the shared real run (read-mostly: tests that write use their own keys)."""
    prebuilt = os.environ.get("FLOWSENSE_API_TEST_HOME")  # developer shortcut: a home built by realrun.build
    if prebuilt and (Path(prebuilt) / "lake").exists():
        return Path(prebuilt)
    root = tmp_path_factory.getbasetemp()
    shared = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root
    return _build_once(shared / "api_real_run")


@pytest.fixture(scope="session")
def real_settings(real_home: Path) -> Settings:
    return Settings(home=real_home)


class ServerThread:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: Any) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", ws="websockets-sansio",
                                access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def api(real_settings: Settings) -> Iterator[ServerThread]:
    from flowsense_api.app import create_app

    app = create_app(real_settings, hub_poll_s=0.02)
    with ServerThread(app) as srv:
        srv.app = app  # type: ignore[attr-defined]
        yield srv


@pytest.fixture(scope="module")
def keys(real_settings: Settings) -> dict[str, str]:
    """A read key, an admin key and a key limited to 3 requests/s (fresh per module)."""
    from flowsense_api.keys import KeyStore

    store = KeyStore(real_settings.api_dir / "keys.db")
    out = {}
    for name, scope, rate in (("read", "read", None), ("admin", "admin", None), ("slow", "read", 1.5)):
        _, token = store.create(scope=scope, name=f"test-{name}", rate_limit=rate)
        out[name] = token
    return out


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
