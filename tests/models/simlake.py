"""A tiny simulated lake (raw tables + features) for the model/registry/Dagster tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path


def build_lake(home: Path, symbols: Sequence[str] = ("AAA", "BBB"), days: int = 3, *, scale: float = 0.01,
               seed: int = 7) -> Path:
    """Simulate ``symbols`` x ``days`` (LOBSTER, 5 levels, ``scale`` of the calibrated activity), ingest
    them into ``home/lake`` and compute the feature tables; returns ``home``."""
    from flowsense.data.ingest import ingest_file
    from flowsense.data.lake import Lake
    from flowsense.features.pipeline import compute_partition
    from flowsense.sim import simulate

    files = simulate(list(symbols), days, home / "inbox", scale=scale, levels=5, seed=seed, workers=1)
    lake = Lake(home / "lake")
    for f in files:
        for r in ingest_file(f, lake):
            compute_partition(lake, r.partition)
    return home
