"""Shared fixtures: where the real public data lives, and an isolated FLOWSENSE_HOME per test."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from flowsense.data.lake import Partition

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LOBSTER_DIR = SHARED_DATA / "lobster_2012-06-21"


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
