"""DVC data versions of the raw lake (real DVC, no git) in a temporary FLOWSENSE_HOME."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from flowsense.config import Settings
from flowsense.data.lake import Lake, Partition
from flowsense.models import dataversion as dv


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and p.suffix != ".dvc"}


def _write(lake: Lake, part: Partition, n: int, offset: int = 0) -> None:
    frame = pl.DataFrame({"seq": list(range(n)), "price": [100.0 + offset + i / 100 for i in range(n)]})
    lake.write_tables(part, {"events": frame, "book": frame.with_columns(pl.col("price") + 0.01)})


def test_snapshot_restore_byte_for_byte(home: Path, tmp_path: Path) -> None:
    settings = Settings.from_env()
    lake = Lake(settings.lake)
    a, b = Partition("AAA", dt.date(2024, 1, 2)), Partition("AAA", dt.date(2024, 1, 3))
    _write(lake, a, 50)
    lake.write_tables(a, {"features_tick": pl.DataFrame({"x": [1.0]})})  # derived: not versioned
    v1 = dv.snapshot(settings)
    raw_v1 = {k: v for k, v in _files(settings.lake).items() if k.startswith(("events", "book"))}
    per_table = sum(1 for k in raw_v1 if k.startswith("events/"))  # part-0.parquet (+ the lake's sidecars)
    assert v1.id.startswith("dvc-") and set(v1.tables) == {"events", "book"}
    assert v1.files == {"events": per_table, "book": per_table} and per_table >= 1
    assert dv.snapshot(settings).id == v1.id  # unchanged data, same version

    _write(lake, a, 60, offset=1)  # a corrected day and a new one
    _write(lake, b, 40)
    v2 = dv.snapshot(settings)
    assert v2.id != v1.id and v2.files["events"] == 2 * per_table
    assert [v.id for v in dv.list_versions(settings)] == [v1.id, v2.id]
    assert dv.partition_hashes(v1, ["AAA"], ["2024-01-02"], settings) != dv.partition_hashes(
        v2, ["AAA"], ["2024-01-02"], settings)

    # a copy of the old version from the cache, the lake untouched
    out = dv.restore(v1.id, settings, dest=tmp_path / "v1")
    assert _files(out) == raw_v1
    assert lake.read("events", a).height == 60

    # in place, with DVC checkout: the lake's raw tables are v1 again (the new day gone), derived kept
    dv.restore(v1.id, settings)
    now = _files(settings.lake)
    assert {k: v for k, v in now.items() if k.startswith(("events", "book"))} == raw_v1
    assert any(k.startswith("features_tick") for k in now)
    assert dv.snapshot(settings).id == v1.id


def test_unknown_version_is_one_line(home: Path) -> None:
    with pytest.raises(dv.DataVersionError, match="unknown data version 'dvc-nope'"):
        dv.restore("dvc-nope", Settings.from_env())
    with pytest.raises(dv.DataVersionError, match="no raw tables"):
        dv.snapshot(Settings.from_env())
