"""Fixtures of the live-worker tests: one FLOWSENSE_HOME with the real GOOG level-10 day ingested
(shared by the module's tests: ingesting takes seconds), Redis stream keys unique per test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, lobster_zip

GOOG = ("GOOG", "2012-06-21")
FLOWSENSE_BIN = Path(sys.executable).parent / "flowsense"


@pytest.fixture(scope="session")
def goog_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from flowsense.data.ingest import ingest_file
    from flowsense.data.lake import Lake

    zp = lobster_zip("GOOG", 10)
    home = tmp_path_factory.mktemp("live") / "home"
    ingest_file(zp, Lake(home / "lake"))
    return home


def cli_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["FLOWSENSE_HOME"] = str(home)
    env["FLOWSENSE_PROFILE"] = "local"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("FLOWSENSE_STATE_DSN", None)
    return env


def flowsense(home: Path, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess."""
    p = subprocess.run([str(FLOWSENSE_BIN), *args], env=cli_env(home), capture_output=True,
                       text=True, timeout=timeout, cwd=REPO)
    if check and p.returncode != 0:
        raise AssertionError(f"flowsense {' '.join(args)} exited {p.returncode}:\n{p.stderr[-3000:]}")
    return p


def last_json(text: str) -> dict:
    return json.loads([ln for ln in text.splitlines() if ln.startswith("{")][-1])


@pytest.fixture
def redis_url() -> str:
    redis = pytest.importorskip("redis")
    url = "redis://127.0.0.1:6379/0"
    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis not reachable at {url}: {exc}")
    return url


@pytest.fixture
def stream_key(redis_url: str):
    import redis

    key = f"fs-test:{uuid.uuid4().hex[:12]}"
    yield key
    c = redis.Redis.from_url(redis_url)
    c.delete(key, f"{key}:meta")
