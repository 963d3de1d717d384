"""The inbox sensor: new files -> dynamic partitions + one run per new partition, nothing twice."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

dg = pytest.importorskip("dagster")

from flowsense.data.inbox import INDEX_NAME, SourceIndex  # noqa: E402
from flowsense_dagster.partitions import DATES, SYMBOLS  # noqa: E402
from flowsense_dagster.resources import LakeResource  # noqa: E402
from flowsense_dagster.sensors.inbox import inbox_sensor  # noqa: E402
from tests.conftest import lobster_zip  # noqa: E402


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FLOWSENSE_HOME", str(tmp_path))
    (tmp_path / "inbox").mkdir()
    return tmp_path


class Ticker:
    """Runs sensor ticks against one ephemeral instance, applying dynamic partition requests like the daemon."""

    def __init__(self, home: Path) -> None:
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = {"lake": LakeResource(home=str(home))}
        self.cursor: str | None = None

    def tick(self) -> Any:
        ctx = dg.build_sensor_context(instance=self.instance, cursor=self.cursor, resources=self.resources)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = inbox_sensor(ctx)
        assert isinstance(result, dg.SensorResult)
        for req in result.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        self.cursor = result.cursor
        return result


def _keys(result: Any) -> list[str]:
    return sorted(str(r.partition_key) for r in result.run_requests or [])


def _added(result: Any, name: str = SYMBOLS) -> list[str]:
    return sorted(
        k for r in result.dynamic_partitions_requests or [] if r.partitions_def_name == name for k in r.partition_keys
    )


def test_first_tick_requests_new_partitions_then_nothing(home: Path) -> None:
    inbox = home / "inbox"
    shutil.copy(lobster_zip("GOOG"), inbox)
    (inbox / "sub").mkdir()
    shutil.copy(lobster_zip("AMZN"), inbox / "sub")
    t = Ticker(home)

    first = t.tick()
    assert _keys(first) == ["2012-06-21|AMZN", "2012-06-21|GOOG"]
    assert _added(first) == ["AMZN", "GOOG"]
    assert all(r.partition_key.keys_by_dimension["date"] == "2012-06-21" for r in first.run_requests)
    assert len({r.run_key for r in first.run_requests}) == 2
    assert {r.partitions_def_name for r in first.dynamic_partitions_requests} == {SYMBOLS, DATES}
    assert _added(first, DATES) == ["2012-06-21"]  # only the days that exist are date partitions
    assert set(json.loads(t.cursor)) == {
        "LOBSTER_SampleFile_GOOG_2012-06-21_1.zip",
        "sub/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip",
    }
    assert (inbox / INDEX_NAME).exists()
    assert sorted(t.instance.get_dynamic_partitions(SYMBOLS)) == ["AMZN", "GOOG"]

    second = t.tick()  # same files: nothing
    assert _keys(second) == []
    assert _added(second) == []
    assert "no new raw files" in (second.skip_reason.skip_message if second.skip_reason else "")

    shutil.copy(lobster_zip("AAPL"), inbox)  # a new file: only its partition, only its symbol
    third = t.tick()
    assert _keys(third) == ["2012-06-21|AAPL"]
    assert _added(third) == ["AAPL"]
    assert _added(third, DATES) == []  # the day is known

    # another depth of a known partition: the partition is requested again (the deepest book wins),
    # but no symbol is added
    shutil.copy(lobster_zip("GOOG", 5), inbox)
    fourth = t.tick()
    assert _keys(fourth) == ["2012-06-21|GOOG"]
    assert _added(fourth) == []
    assert "LOBSTER_SampleFile_GOOG_2012-06-21_5.zip" in fourth.run_requests[0].run_key
    index = SourceIndex.load(inbox)
    (goog,) = [p for p in index.partitions() if p.symbol == "GOOG"]
    assert index.source_for(goog).levels == 5

    assert _keys(t.tick()) == []


def test_bad_hidden_and_temp_files_are_skipped(home: Path) -> None:
    inbox = home / "inbox"
    (inbox / "notes.txt").write_text("not market data\n")
    (inbox / "XYZ_2012-06-21_1.zip").write_bytes(b"this is not a zip archive")
    (inbox / "empty.csv").write_text("")
    (inbox / ".hidden.zip").write_bytes(b"x")
    (inbox / "partial.zip.part").write_bytes(b"x")
    (inbox / "backup.csv~").write_text("x")
    t = Ticker(home)
    first = t.tick()  # must not raise
    assert _keys(first) == []
    assert _added(first) == []
    cursor = json.loads(t.cursor)
    assert set(cursor) == {"notes.txt", "XYZ_2012-06-21_1.zip", "empty.csv"}  # handled once, not retried
    assert "skipped" in first.skip_reason.skip_message
    index = SourceIndex.load(inbox)
    assert set(index.errors()) == {"notes.txt", "XYZ_2012-06-21_1.zip", "empty.csv"}

    shutil.copy(lobster_zip("GOOG"), inbox)  # good files still flow next to bad ones
    assert _keys(t.tick()) == ["2012-06-21|GOOG"]


def test_lobster_csv_half_waits_for_its_partner(home: Path) -> None:
    import zipfile

    inbox = home / "inbox"
    with zipfile.ZipFile(lobster_zip("GOOG")) as zf:
        msg = next(n for n in zf.namelist() if "_message_" in n)
        book = next(n for n in zf.namelist() if "_orderbook_" in n)
        (inbox / msg).write_bytes(zf.read(msg))
        t = Ticker(home)
        assert _keys(t.tick()) == []  # message file alone: wait
        assert msg not in json.loads(t.cursor)
        (inbox / book).write_bytes(zf.read(book))
    assert _keys(t.tick()) == ["2012-06-21|GOOG"]  # one run for the pair
    assert _keys(t.tick()) == []


def test_partition_already_materialized_from_same_file_is_not_requested(home: Path) -> None:
    import datetime as dt

    from flowsense.data.ingest import sha256
    from flowsense.data.lake import Partition
    from flowsense_dagster.partitions import to_partition_key

    inbox = home / "inbox"
    src = inbox / lobster_zip("GOOG").name
    shutil.copy(lobster_zip("GOOG"), src)
    t = Ticker(home)
    t.instance.add_dynamic_partitions(SYMBOLS, ["GOOG"])
    t.instance.report_runless_asset_event(
        dg.AssetMaterialization(
            asset_key="raw_events",
            partition=str(to_partition_key(Partition("GOOG", dt.date(2012, 6, 21)))),
            metadata={"source": dg.MetadataValue.path(str(src)), "source_sha256": sha256(src)},
        )
    )
    first = t.tick()  # e.g. after `python -m flowsense_dagster.run`: the sensor's cursor is empty
    assert _keys(first) == []
    assert _added(first) == []


NAIVE_TRADES = (
    "timestamp,price,size,side\n"
    "2024-03-04 19:30:00.000001,100.25,10,B\n"  # local times: 19:30 in New York is 00:30 UTC on the 5th
    "2024-03-04 19:30:00.5,100.50,5,S\n"
    "2024-03-05 09:45:00,101.00,1,B\n"
)


def test_naive_trades_file_needs_flowsense_tick_tz(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A trades file with naive times is skipped with the reason until FLOWSENSE_TICK_TZ names their zone;
    then the sensor sees its New York days (not UTC ones) and ``raw_ingest`` writes them."""
    from flowsense.data.lake import Lake
    from flowsense_dagster.assets.ingestion import raw_ingest, raw_validation
    from flowsense_dagster.resources import CatalogResource

    (home / "inbox" / "aapl_trades.csv").write_text(NAIVE_TRADES)
    t = Ticker(home)
    first = t.tick()
    assert _keys(first) == []
    assert "without a time zone" in json.dumps(SourceIndex.load(home / "inbox").errors())

    monkeypatch.setenv("FLOWSENSE_TICK_TZ", "America/New_York")
    second = t.tick()  # the zone changed: every file is described again
    assert _keys(second) == ["2024-03-04|AAPL", "2024-03-05|AAPL"]
    lake = LakeResource(home=str(home))
    res = dg.materialize([raw_ingest, raw_validation], partition_key="2024-03-04|AAPL", instance=t.instance,
                         resources={"lake": lake, "catalog": CatalogResource(lake=lake)})
    assert res.success
    from flowsense.data.lake import Partition

    the_lake = Lake(home / "lake")
    ev = the_lake.read("events", Partition.parse("AAPL|2024-03-04"))
    assert ev.height == 2 and str(ev["ts"][0]).startswith("2024-03-05 00:30:00.000001")
    assert the_lake.all_partitions() == [Partition.parse("AAPL|2024-03-04")]  # the other day is its own run


def test_bad_flowsense_tick_tz_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from flowsense.config import Settings
    from flowsense.errors import ConfigError

    monkeypatch.setenv("FLOWSENSE_TICK_TZ", "Mars/Olympus")
    with pytest.raises(ConfigError, match="FLOWSENSE_TICK_TZ='Mars/Olympus' is not an IANA time zone"):
        _ = Settings.from_env().tick_tz
