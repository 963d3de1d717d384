"""Shared fixtures: where the real public data lives, and an isolated FLOWSENSE_HOME per test."""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flowsense.data.lake import Partition

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LOBSTER_DIR = SHARED_DATA / "lobster_2012-06-21"


def shared(rel: str) -> Path:
    """Path of a real data file under ``../shared/data``; skips the test with a reason when it is absent."""
    path = SHARED_DATA / rel
    if not path.exists():
        pytest.skip(f"real data not present at {path}")
    return path


def lobster_zip(symbol: str, level: int = 1) -> Path:
    """Path of a real LOBSTER sample zip; skips the test with a reason when the data is absent."""
    path = LOBSTER_DIR / f"LOBSTER_SampleFile_{symbol}_2012-06-21_{level}.zip"
    if not path.exists():
        pytest.skip(f"real LOBSTER data not present at {path} (../shared/data is not checked out)")
    return path


def stage_partition(inbox: Path, *, sim_scale: float) -> Partition:
    """Put one raw LOBSTER zip into ``inbox`` and return its partition: the real GOOG level-1 sample when
    ``../shared/data`` is present, else a simulated day (``flowsense.sim``) at ``sim_scale``."""
    inbox.mkdir(parents=True)
    goog = LOBSTER_DIR / "LOBSTER_SampleFile_GOOG_2012-06-21_1.zip"
    if goog.exists():
        shutil.copy(goog, inbox / goog.name)
        return Partition("GOOG", dt.date(2012, 6, 21))
    from flowsense.sim import simulate

    simulate(["SIMA"], 1, inbox, scale=sim_scale)
    return Partition("SIMA", dt.date(2024, 1, 2))


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FLOWSENSE_HOME for the test, set in the environment."""
    h = tmp_path / "home"
    monkeypatch.setenv("FLOWSENSE_HOME", str(h))
    monkeypatch.setenv("FLOWSENSE_PROFILE", "local")
    return h


PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A throwaway PostgreSQL database on 127.0.0.1:5432 (user postgres, trust), dropped afterwards (with
    FORCE: a test's open connections do not keep it alive). Skips when PostgreSQL is not reachable."""
    psycopg2 = pytest.importorskip("psycopg2")
    try:
        admin = psycopg2.connect(PG_ADMIN_DSN, connect_timeout=3)
    except psycopg2.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable on 127.0.0.1:5432 as postgres: {exc}".strip())
    admin.autocommit = True
    name = f"flowsense_test_{uuid.uuid4().hex[:12]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
