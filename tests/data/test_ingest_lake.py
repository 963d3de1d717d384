"""Partitions of several sources, content versions and stale derived tables, validation gating, the
catalog's SQL conventions, and the partitions API - on the real files of ../shared/data."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowsense.data.catalog import query, refresh
from flowsense.data.ingest import ingest_file, read_file
from flowsense.data.lake import Lake, Partition
from flowsense.data.validate import partition_ok, require_ok, validate_day
from flowsense.errors import PartitionNotOkError, StaleInputsError
from tests.conftest import shared

NT = "nautilus_trader_samples"


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake(tmp_path / "lake")


def test_quotes_then_trades_keep_both_and_stay_idempotent(lake: Lake) -> None:
    quotes = shared(f"{NT}/binance/btcusdt-quotes.parquet")
    trades = shared(f"{NT}/binance/btcusdt-trades.parquet")
    part = Partition("BTCUSDT", dt.date(2021, 1, 8))
    (q,) = ingest_file(quotes, lake)
    assert q.summary() == "new partition"
    (t,) = ingest_file(trades, lake)
    assert t.kept == ("book source btcusdt-quotes.parquet",) and not t.replaced
    book, events, tr = lake.read("book", part), lake.read("events", part), lake.read("trades", part)
    assert book.height == events.height == 451 + 2001  # before the fix: 0 book rows
    assert tr.height == 2001 and events["seq"].to_list() == list(range(events.height))
    assert events["ts"].is_sorted()
    # trade rows carry the quote in force; trades point at their trade events
    joined = tr.join(events, on="seq")
    assert (joined["event_type"].cast(pl.String) == "trade").all()
    assert (joined["price"] == joined["price_right"]).all()
    first_quote = events.filter(pl.col("event_type") == "quote")["ts"].min()
    before = events.filter(pl.col("ts") < first_quote).height
    assert before == 30 and book["ask_px_1"].null_count() == before  # no book before the first quote
    version = lake.version(part)
    for path in (trades, quotes, trades):  # either file again: same tables, same version
        (r,) = ingest_file(path, lake)
        assert "unchanged" in r.summary() and "(same content)" in r.summary()
        assert lake.version(part) == version
    assert lake.read("book", part).height == 2452


def test_dbn_mbp1_then_trades_keeps_the_book(lake: Lake) -> None:
    db = f"{NT}/databento"
    ingest_file(shared(f"{db}/futures_mbp-1_2024-07-01T23-58_2024-07-02T00-02.dbn.zst"), lake)
    results = ingest_file(shared(f"{db}/futures_trades_2024-07-01T23-58_2024-07-02T00-02.dbn.zst"), lake)
    assert {r.partition.date for r in results} == {dt.date(2024, 7, 1), dt.date(2024, 7, 2)}
    part = Partition("ESU4", dt.date(2024, 7, 1))
    assert lake.read("book", part).height == 568  # was 0
    assert lake.read("trades", part).height == 28  # the MBP-1 T records, replaced by the trades file
    assert all(r.report.ok for r in results)


def test_reingest_invalidates_derived_tables(lake: Lake, tmp_path: Path) -> None:
    from flowsense.features.pipeline import compute_partition

    part = Partition("GOOG", dt.date(2012, 6, 21))
    lob = "lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21"
    ingest_file(shared(f"{lob}_10.zip"), lake)
    v10 = lake.version(part)
    compute_partition(lake, part, clocks=("1min",))
    assert lake.table_meta("features_tick", part)["inputs_version"] == v10
    assert not lake.is_stale("labels", part)
    cat = tmp_path / "c.duckdb"
    refresh(cat, lake)
    assert query(cat, "select count(*) from features_tick").item() == 147_916
    (r,) = ingest_file(shared(f"{lob}_1.zip"), lake)
    assert lake.version(part) != v10 and r.previous_version == v10
    assert set(r.invalidated) == {"features_tick", "features_1min", "labels"}
    refresh(cat, lake)
    views = query(cat, "select view_name from duckdb_views() where not internal")["view_name"].to_list()
    assert "features_tick" not in views and "labels" not in views
    assert query(cat, "select count(*) from events").item() == 49_482
    # a derived table computed from the old version is refused
    with pytest.raises(StaleInputsError, match="re-ingested"):
        lake.write_derived("features_tick", part, pl.DataFrame({"seq": [0]}), inputs_version=v10)
    # the same file again changes nothing downstream
    compute_partition(lake, part, clocks=("1min",))
    (again,) = ingest_file(shared(f"{lob}_1.zip"), lake)
    assert again.invalidated == () and lake.exists("features_tick", part)
    info = {i.partition: i for i in lake.list_partitions()}[part]
    assert info.tables["features_tick"].rows == 49_482 and not info.stale_tables
    assert info.ok is True and info.tables["events"].rows == 49_482


def test_partitions_list_and_delete(lake: Lake) -> None:
    from flowsense.features.pipeline import compute_partition

    ingest_file(shared("lobster_2012-06-21/LOBSTER_SampleFile_AMZN_2012-06-21_1.zip"), lake)
    ingest_file(shared(f"{NT}/binance/btcusdt-trades.parquet"), lake)
    amzn = Partition("AMZN", dt.date(2012, 6, 21))
    compute_partition(lake, amzn, clocks=("1min",))
    listed = {i.partition.symbol: i for i in lake.list_partitions()}
    assert set(listed) == {"AMZN", "BTCUSDT"}
    assert listed["AMZN"].tables["labels"].derived and listed["BTCUSDT"].tables["trades"].rows == 2001
    assert "book" not in listed["BTCUSDT"].tables
    # a derived table alone
    assert lake.delete_partition(amzn, table="labels") == ["labels"]
    assert not lake.exists("labels", amzn) and lake.exists("features_tick", amzn)
    # a raw table takes its derived tables with it
    removed = lake.delete_partition(amzn, table="trades")
    assert set(removed) == {"trades", "features_tick", "features_1min"}
    assert lake.exists("events", amzn)
    # the whole symbol-day
    lake.delete_partition(amzn)
    assert [i.partition.symbol for i in lake.list_partitions()] == ["BTCUSDT"]
    assert not (lake.root / "events" / "symbol=AMZN").exists()
    with pytest.raises(FileNotFoundError):
        lake.delete_partition(amzn, table="events")


def test_es_mbo_day_passes_and_a_crossed_row_fails(lake: Lake) -> None:
    path = shared(f"{NT}/databento/esh4-glbx-mdp3-20231225.mbo.dbn.zst")
    _, days = read_file(path)
    (day,) = [d for d in days if d.date == dt.date(2023, 12, 25)]
    report = validate_day(day)
    assert report.crossed_book == 0 and report.locked_book == 0  # was crossed_book=978
    assert report.crossed_book_excluded == 978  # pre-open auction and mid-event rows
    assert report.ok
    # a crossed book at an event end during the session is still an error
    book = day.book
    assert book is not None
    ts = book["ts"].dt.epoch("ns").to_numpy()
    check = day.book_check.to_numpy()
    row = int(np.flatnonzero(check & (ts > int(dt.datetime(2023, 12, 25, 23, 30, tzinfo=dt.UTC).timestamp() * 1e9)))[0])
    bad = book.with_columns(
        pl.when(pl.col("seq") == row).then(pl.col("bid_px_1") + 5.0).otherwise(pl.col("bid_px_1")).alias("bid_px_1")
    )
    bad_report = validate_day(replace(day, book=bad))
    assert bad_report.crossed_book == 1 and not bad_report.ok


def test_partition_ok_gates_on_error_checks(lake: Lake, tmp_path: Path) -> None:
    good = shared("lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21_1.zip")
    (r,) = ingest_file(good, lake)
    assert partition_ok(lake, r.partition) == (True, "GOOG 2012-06-21: ok")
    csv = tmp_path / "zzz_trades.csv"
    csv.write_text("timestamp,price,size\n2024-01-02T10:00:01Z,10,1\n2024-01-02T10:00:00Z,10,1\n")
    (bad,) = ingest_file(csv, lake)
    ok, reason = partition_ok(lake, bad.partition)
    assert not ok and "non_monotonic_ts=1" in reason and reason.startswith("ZZZ 2024-01-02")
    with pytest.raises(PartitionNotOkError, match="non_monotonic_ts"):
        require_ok(lake, bad.partition)
    assert "non_monotonic_ts" in require_ok(lake, bad.partition, override=True)
    assert not partition_ok(lake, Partition("NOPE", dt.date(2024, 1, 1)))[0]
    info = {i.partition: i for i in lake.list_partitions()}
    assert info[bad.partition].ok is False and "non_monotonic_ts" in info[bad.partition].reason


def test_catalog_nulls_and_time_functions(lake: Lake, tmp_path: Path) -> None:
    ingest_file(shared(f"{NT}/binance/btcusdt-quotes.parquet"), lake)
    part = Partition("BTCUSDT", dt.date(2021, 1, 8))
    lake.write_derived("features_x", part, pl.DataFrame({
        "ts": pl.Series([1_610_064_000_123_456_789, 1_610_067_600_000_000_001]).cast(pl.Datetime("ns", "UTC")),
        "spread": [float("nan"), 0.5],
    }))
    cat = tmp_path / "c.duckdb"
    refresh(cat, lake)
    assert query(cat, "select max(spread) m, count(spread) n from features_x").row(0) == (0.5, 1)
    hours = query(cat, "select date_trunc('hour', ts) h, count(*) n from features_x group by h order by h")
    assert hours.height == 2
    assert query(cat, "select min(ts_ns) from features_x").item() == 1_610_064_000_123_456_789
    assert query(cat, "select count(*) from book where date_trunc('day', ts) = DATE '2021-01-08'").item() == 451
    assert query(cat, "select count(*) from validation").item() == 1
