"""Ingestion of real LOBSTER files: row counts, UTC timestamps, book columns, empty levels, idempotency."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import duckdb
import numpy as np
import polars as pl
import pytest

from flowsense.data.catalog import refresh
from flowsense.data.ingest import ingest_file
from flowsense.data.lake import Lake, Partition
from flowsense.data.lobster import read_lobster, utc_offset_ns
from flowsense.data.schemas import EVENTS_SCHEMA, TRADES_SCHEMA, book_schema
from flowsense.data.validate import validate_day
from flowsense.errors import IngestError
from tests.conftest import lobster_zip

# rows per SOURCE.md
EXPECTED_ROWS = {("AAPL", 1): 118_497, ("AMZN", 1): 57_515, ("AMZN", 5): 155_935, ("GOOG", 1): 49_482,
                 ("GOOG", 5): 112_673, ("GOOG", 10): 147_916}


def _raw(zip_path, kind: str) -> np.ndarray:
    with zipfile.ZipFile(zip_path) as zf:
        name = next(n for n in zf.namelist() if f"_{kind}_" in n)
        return np.loadtxt(io.BytesIO(zf.read(name)), delimiter=",")


@pytest.mark.real_data
@pytest.mark.parametrize(("symbol", "level"), sorted(EXPECTED_ROWS))
def test_row_counts_and_schema(symbol: str, level: int) -> None:
    (day,) = read_lobster(lobster_zip(symbol, level))
    assert day.symbol == symbol and day.date == dt.date(2012, 6, 21) and day.levels == level
    assert day.events.height == day.book.height == EXPECTED_ROWS[(symbol, level)]
    assert day.events.schema == pl.Schema(EVENTS_SCHEMA)
    assert day.book.schema == pl.Schema(book_schema(level))
    assert day.trades.schema == pl.Schema(TRADES_SCHEMA)
    assert day.events["seq"].to_list() == list(range(day.events.height))
    n_exec = day.events["event_type"].cast(pl.String).is_in(["execute_visible", "execute_hidden"]).sum()
    assert day.trades.height == n_exec


@pytest.mark.real_data
def test_timestamps_are_utc_nanoseconds() -> None:
    (day,) = read_lobster(lobster_zip("AAPL", 1))
    ts = day.events["ts"]
    assert ts.dtype == pl.Datetime("ns", "UTC")
    # SOURCE.md: first AAPL event at 34200.004241176 s after midnight New York (EDT = UTC-4).
    assert ts[0] == dt.datetime(2012, 6, 21, 13, 30, 0, 4241, tzinfo=dt.UTC)
    assert ts.dt.epoch("ns")[0] == 1340285400_004241176
    assert ts.dt.epoch("ns")[-1] == 1340308799_913117637
    local = ts.dt.convert_time_zone("America/New_York")
    assert local.dt.hour().min() == 9 and local.dt.hour().max() == 15


def test_dst_offsets() -> None:
    assert utc_offset_ns(dt.date(2012, 6, 21)) == 4 * 3600 * 10**9
    assert utc_offset_ns(dt.date(2012, 12, 21)) == 5 * 3600 * 10**9
    assert utc_offset_ns(dt.date(2012, 3, 11)) is None  # spring-forward day: handled by the tz database


@pytest.mark.real_data
def test_book_columns_match_orderbook_file_and_empty_levels_are_null() -> None:
    path = lobster_zip("GOOG", 10)
    (day,) = read_lobster(path)
    raw = _raw(path, "orderbook")
    assert raw.shape == (day.book.height, 40)
    for k in range(10):
        for j, side in enumerate(("ask", "bid")):
            px_raw = raw[:, 4 * k + 2 * j]
            sz_raw = raw[:, 4 * k + 2 * j + 1]
            empty = np.abs(px_raw) >= 9_999_999_999
            px = day.book[f"{side}_px_{k + 1}"]
            sz = day.book[f"{side}_sz_{k + 1}"]
            assert np.array_equal(px.is_null().to_numpy(), empty)
            assert np.array_equal(sz.is_null().to_numpy(), empty)
            np.testing.assert_array_equal(px.drop_nulls().to_numpy(), px_raw[~empty] / 10_000)
            np.testing.assert_array_equal(sz.drop_nulls().to_numpy(), sz_raw[~empty])
    # No sentinel may leak into prices (the null mapping of empty levels is checked above, row by row,
    # and on a synthetic book with empty levels in test_ingest_malformed.py::test_good_pair_parses).
    assert day.book.select(pl.col("^.*_px_.*$").abs().max()).max_horizontal().item() < 10_000


@pytest.mark.real_data
def test_messages_match_message_file() -> None:
    path = lobster_zip("AMZN", 5)
    (day,) = read_lobster(path)
    raw = _raw(path, "message")
    ev = day.events
    np.testing.assert_array_equal(ev["order_id"].to_numpy(), raw[:, 2].astype(np.int64))
    np.testing.assert_array_equal(ev["size"].to_numpy(), raw[:, 3].astype(np.int64))
    np.testing.assert_array_equal(ev["side"].to_numpy(), raw[:, 5].astype(np.int8))
    np.testing.assert_allclose(ev["price"].to_numpy(), raw[:, 4] / 10_000)
    types = {1: "add", 2: "cancel", 3: "delete", 4: "execute_visible", 5: "execute_hidden"}
    assert ev["event_type"].cast(pl.String).to_list() == [types[int(t)] for t in raw[:, 1]]


@pytest.mark.real_data
def test_real_days_validate_clean() -> None:
    (day,) = read_lobster(lobster_zip("GOOG", 10))
    report = validate_day(day)
    assert report.ok, report.problems()
    assert report.events == 147_916 and report.levels == 10


@pytest.mark.real_data
def test_transition_check_catches_a_tampered_book() -> None:
    (day,) = read_lobster(lobster_zip("GOOG", 1))
    # find an add at the best bid and corrupt the size the book shows after it
    ev, book = day.events, day.book
    row = ev.with_row_index("i").filter(
        (pl.col("event_type") == "add") & (pl.col("side") == 1) & (pl.col("price") == book["bid_px_1"])
    )["i"][10]
    tampered = book.with_columns(
        pl.when(pl.col("seq") == row).then(pl.col("bid_sz_1") + 1).otherwise(pl.col("bid_sz_1")).alias("bid_sz_1")
    )
    from dataclasses import replace

    report = validate_day(replace(day, book=tampered))
    assert report.event_book_mismatch >= 1
    assert not report.ok


@pytest.mark.real_data
def test_ingest_writes_partitions_and_catalog_idempotently(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    catalog = tmp_path / "flowsense.duckdb"
    path = lobster_zip("GOOG", 1)
    for _ in range(2):  # re-ingesting replaces, never duplicates
        (result,) = ingest_file(path, lake)
        refresh(catalog, lake)
    part = Partition("GOOG", dt.date(2012, 6, 21))
    assert result.partition == part
    files = sorted(p.relative_to(lake.root).as_posix() for p in lake.root.rglob("*") if p.is_file())
    assert files == [
        "_instruments/instruments.parquet",
        "_validation/symbol=GOOG/date=2012-06-21/report.json",
        "book/symbol=GOOG/date=2012-06-21/_meta.json",
        "book/symbol=GOOG/date=2012-06-21/part-0.parquet",
        "events/symbol=GOOG/date=2012-06-21/_meta.json",
        "events/symbol=GOOG/date=2012-06-21/part-0.parquet",
        "trades/symbol=GOOG/date=2012-06-21/_meta.json",
        "trades/symbol=GOOG/date=2012-06-21/part-0.parquet",
    ]
    con = duckdb.connect(str(catalog), read_only=True)
    rows = con.sql("select symbol, date, count(*) from events group by all").fetchall()
    assert rows == [("GOOG", dt.date(2012, 6, 21), 49_482)]
    assert con.execute("select count(*) from book").fetchone() == (49_482,)
    ok, source = con.execute("select ok, source_sha256 from validation").fetchone()
    assert ok is True and len(source) == 64
    con.close()
    assert lake.read("events", part).equals(read_lobster(path)[0].events)


@pytest.mark.real_data
def test_symbol_override_and_date_that_contradicts_the_name(tmp_path) -> None:
    (day,) = read_lobster(lobster_zip("GOOG", 1), symbol="GOOGL", date=dt.date(2012, 6, 21))
    assert day.symbol == "GOOGL" and day.date == dt.date(2012, 6, 21)
    # summer: New York is UTC-4, so 09:30 local is 13:30 UTC
    assert day.events["ts"][0].hour == 13 and day.events["ts"][0].minute == 30
    # a --date that contradicts the dated file name would silently move every event: refused
    with pytest.raises(IngestError, match=r"--date 2012-12-21 contradicts the date in the file name \(2012-06-21\)"):
        read_lobster(lobster_zip("GOOG", 1), date=dt.date(2012, 12, 21))
