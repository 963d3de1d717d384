"""Shared fixtures: where the real public data lives, and an isolated FLOWSENSE_HOME per test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
LOBSTER_DIR = SHARED_DATA / "lobster_2012-06-21"


def lobster_zip(symbol: str, level: int) -> Path:
    """Path of a real LOBSTER sample zip; skips the test with a reason when the data is absent."""
    path = LOBSTER_DIR / f"LOBSTER_SampleFile_{symbol}_2012-06-21_{level}.zip"
    if not path.exists():
        pytest.skip(f"real LOBSTER data not present at {path} (../shared/data is not checked out)")
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh FLOWSENSE_HOME for the test, set in the environment."""
    h = tmp_path / "home"
    monkeypatch.setenv("FLOWSENSE_HOME", str(h))
    monkeypatch.setenv("FLOWSENSE_PROFILE", "local")
    return h
