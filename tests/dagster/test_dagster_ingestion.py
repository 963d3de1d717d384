"""The Dagster raw-data assets and their checks, on the real LOBSTER GOOG sample (copied into a tmp inbox)."""

from __future__ import annotations

import datetime as dt
import io
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import polars as pl
import pytest

dg = pytest.importorskip("dagster")

from flowsense.data.lake import Lake, Partition  # noqa: E402
from flowsense.data.validate import SEVERITY  # noqa: E402
from flowsense_dagster.assets.ingestion import raw_ingest, raw_validation  # noqa: E402
from flowsense_dagster.partitions import (  # noqa: E402
    register_partitions,
    symbol_date_partitions,
    to_lake_partition,
    to_partition_key,
)
from flowsense_dagster.resources import CatalogResource, LakeResource  # noqa: E402

pytestmark = pytest.mark.real_data

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "lobster_2012-06-21"
GOOG_1 = DATA / "LOBSTER_SampleFile_GOOG_2012-06-21_1.zip"
DAY = dt.date(2012, 6, 21)
GOOG_EVENTS = 49_482


def _need_data() -> None:
    if not GOOG_1.exists():
        pytest.skip(f"LOBSTER sample data not found at {DATA}")


def _resources(home: Path) -> dict[str, Any]:
    lake = LakeResource(home=str(home))
    return {"lake": lake, "catalog": CatalogResource(lake=lake)}


def _materialize(home: Path, part: Partition) -> Any:
    instance = dg.DagsterInstance.ephemeral()
    register_partitions(instance, [part])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return dg.materialize(
            [raw_ingest, raw_validation],
            instance=instance,
            resources=_resources(home),
            partition_key=to_partition_key(part),
            raise_on_error=False,
        )


def _meta(result: Any, asset: str) -> dict[str, Any]:
    (mat,) = [m for m in result.asset_materializations_for_node("raw_ingest") if m.asset_key.path == [asset]]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


@pytest.fixture(scope="module")
def goog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    _need_data()
    home = tmp_path_factory.mktemp("fs_home")
    (home / "inbox").mkdir()
    shutil.copy(GOOG_1, home / "inbox" / GOOG_1.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWSENSE_HOME", str(home))
        result = _materialize(home, Partition("GOOG", DAY))
    return home, result


def test_materialize_real_partition(goog: tuple[Path, Any]) -> None:
    home, result = goog
    assert result.success
    lake = Lake(home / "lake")
    part = Partition("GOOG", DAY)
    for table in ("events", "book", "trades"):
        assert lake.path(table, part).exists(), table
    assert pl.read_parquet(lake.path("events", part)).height == GOOG_EVENTS
    assert pl.read_parquet(lake.path("book", part)).height == GOOG_EVENTS
    assert lake.read_report(part) is not None
    assert (home / "flowsense.duckdb").exists()  # catalog refreshed by the asset


def test_materialization_metadata(goog: tuple[Path, Any]) -> None:
    _, result = goog
    events = _meta(result, "raw_events")
    assert events["dagster/partition_row_count"] == GOOG_EVENTS
    assert events["rows"] == GOOG_EVENTS
    assert events["levels"] == 1
    assert events["format"] == "lobster"
    assert events["source"].endswith(GOOG_1.name)
    assert len(events["source_sha256"]) == 64
    assert events["lake_path"].endswith("events/symbol=GOOG/date=2012-06-21/part-0.parquet")
    assert set(events["validation"]) == set(SEVERITY)
    assert events["preview"].startswith("| ts |")
    book = _meta(result, "raw_book")
    assert book["rows"] == GOOG_EVENTS
    trades = _meta(result, "raw_trades")
    assert trades["rows"] > 0
    mats = result.asset_materializations_for_node("raw_ingest")
    assert {m.partition for m in mats} == {"2012-06-21|GOOG"}


def test_every_check_passes(goog: tuple[Path, Any]) -> None:
    _, result = goog
    evals = result.get_asset_check_evaluations()
    assert {e.check_name for e in evals} == set(SEVERITY)
    assert all(e.passed for e in evals), [(e.check_name, e.metadata) for e in evals if not e.passed]
    assert {e.partition for e in evals} == {"2012-06-21|GOOG"}


def _bad_pair(inbox: Path, symbol: str = "BADX") -> None:
    """A LOBSTER CSV pair made from the GOOG rows with non-monotonic timestamps and a crossed book."""
    with zipfile.ZipFile(GOOG_1) as zf:
        names = zf.namelist()
        msg_name = next(n for n in names if "_message_" in n)
        book_name = next(n for n in names if "_orderbook_" in n)
        msg = pl.read_csv(io.BytesIO(zf.read(msg_name)), has_header=False, n_rows=2000)
        book = pl.read_csv(io.BytesIO(zf.read(book_name)), has_header=False, n_rows=2000)
    time_col, ask_col, bid_col = (
        msg.columns[0],
        book.columns[0],
        book.columns[2],
    )  # names vary by polars version
    t = msg[time_col].to_list()
    t[500] = t[10]  # earlier than its predecessor: non-monotonic timestamp
    msg = msg.with_columns(pl.Series(time_col, t))
    ask = book[ask_col].to_list()
    bid = book[bid_col].to_list()
    for i in (700, 701):
        ask[i] = bid[i] - 100  # best ask below best bid: crossed book
    book = book.with_columns(pl.Series(ask_col, ask))
    stem = f"{symbol}_2012-06-21_34200000_57600000"
    msg.write_csv(inbox / f"{stem}_message_1.csv", include_header=False)
    book.write_csv(inbox / f"{stem}_orderbook_1.csv", include_header=False)


def test_bad_partition_fails_its_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _need_data()
    monkeypatch.setenv("FLOWSENSE_HOME", str(tmp_path))
    (tmp_path / "inbox").mkdir()
    _bad_pair(tmp_path / "inbox")
    result = _materialize(tmp_path, Partition("BADX", DAY))
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(evals) == set(SEVERITY)
    for name in ("non_monotonic_ts", "crossed_book"):
        assert not evals[name].passed, name
        assert evals[name].severity == dg.AssetCheckSeverity.ERROR
        assert evals[name].metadata["count"].value >= 1
    # the data is written (and flagged); the blocking ERROR checks fail the run
    assert len(result.asset_materializations_for_node("raw_ingest")) == 3
    assert not result.success
    assert "raw_validation" in result.get_failed_step_keys()


def test_missing_source_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWSENSE_HOME", str(tmp_path))
    (tmp_path / "inbox").mkdir()
    result = _materialize(tmp_path, Partition("NOPE", DAY))
    assert not result.success
    (failure,) = [e for e in result.get_step_failure_events() if e.step_key == "raw_ingest"]
    message = failure.step_failure_data.user_failure_data.description
    assert "No raw source file for partition NOPE 2012-06-21" in message
    assert str(tmp_path / "inbox") in message


def test_partition_key_helpers() -> None:
    part = Partition("GOOG", DAY)
    key = to_partition_key(part)
    assert key.keys_by_dimension == {"date": "2012-06-21", "symbol": "GOOG"}
    assert to_lake_partition(key) == part
    assert to_lake_partition(str(key)) == part
    assert to_lake_partition(part.key) == part
    with pytest.raises(ValueError):
        to_lake_partition("GOOG")
    # dates are dynamic: only the days registered (by the sensor / run) exist, no empty calendar
    dates = symbol_date_partitions.get_partitions_def_for_dimension("date")
    instance = dg.DagsterInstance.ephemeral()
    assert not dates.has_partition_key("2012-06-21", dynamic_partitions_store=instance)
    register_partitions(instance, [part, Partition("AAA", dt.date(2024, 1, 2))])
    assert dates.has_partition_key("2012-06-21", dynamic_partitions_store=instance)
    assert dates.has_partition_key("2024-01-02", dynamic_partitions_store=instance)
    assert symbol_date_partitions.get_partition_keys(dynamic_partitions_store=instance) == [
        "2012-06-21|AAA", "2012-06-21|GOOG", "2024-01-02|AAA", "2024-01-02|GOOG",
    ]  # fmt: skip


def test_definitions_load() -> None:
    from flowsense_dagster.definitions import defs

    dg.Definitions.validate_loadable(defs)
    repo = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"raw_events", "raw_book", "raw_trades"} <= keys
    for name in ("raw_events", "raw_book", "raw_trades"):
        node = graph.get(dg.AssetKey(name))
        assert node.group_name == "ingestion"
        assert node.partitions_def == symbol_date_partitions
    checks = {k.name for k in graph.asset_check_keys}
    assert set(SEVERITY) <= checks
    assert {"ingest_job", "all_assets_job"} <= {j.name for j in repo.get_all_jobs()}
    assert "inbox_sensor" in {s.name for s in repo.sensor_defs}
    all_job = repo.get_job("all_assets_job")
    assert all_job.partitions_def == symbol_date_partitions
