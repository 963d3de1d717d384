"""L3 order logs (obAnalytics Bitstamp) and raw Binance websocket captures (hftbacktest), on the real files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import polars as pl
import pytest

from flowsense.data.ingest import detect_format, ingest_file, read_file
from flowsense.data.lake import Lake, Partition
from flowsense.data.validate import validate_day
from flowsense.errors import IngestError
from tests.conftest import shared

HFT = "hftbacktest_binance_2024-08-08"


def test_order_log_is_an_l3_log_not_trades(tmp_path: Path) -> None:
    path = shared("obanalytics_bitstamp_2015-05-01/orders.csv.xz")
    assert detect_format(path) == "orderlog"  # was read as 50,414 trades with no side
    _, (day,) = read_file(path, symbol="BTCUSD")
    ev = day.events
    counts = dict(ev.group_by("event_type").len().iter_rows())
    # 24,894 created (5 of them received after their own deletion: stale), 602 changed, 24,918 deleted
    assert ev.height == 50_414 and counts["add"] == 24_889
    assert sum(counts.values()) == 50_414 and set(counts) == {"add", "delete", "execute_visible", "modify", "none"}
    assert ev["side"].null_count() == 0 and ev["order_id"].null_count() == 0
    # one trade per match (not one per order: maker and taker both shrink), close to the exchange's 575 prints
    tr = day.trades
    assert 575 <= tr.height <= 650 and tr["aggressor_side"].null_count() == 0
    # the first match: bid 65595247 (2 BTC at 236.47) was created against an older resting ask at 236.47 and
    # changed to 1.78855669 -> 0.21144331 BTC bought by that incoming bid (the raw feed's first print)
    first = tr.row(0, named=True)
    assert first["size"] == 21_144_331 and first["price"] == 236.47 and first["aggressor_side"] == 1
    assert day.size_scale == 10**8 and day.book is not None and day.levels == 10
    assert day.book.height == ev.height
    assert day.extra["book_complete"] is False
    report = validate_day(day)
    assert report.trades == tr.height
    # events received after their order's deletion must not revive it (they left the book crossed on
    # 19,671 rows); what remains are sub-second crossings between a taker order and its fills
    assert day.extra["stale_events"] == 27 and counts["none"] == 27
    assert 0 < report.crossed_book < 1_000 and not report.ok


def test_binance_capture_with_snapshot(tmp_path: Path) -> None:
    path = shared(f"{HFT}/spot/btcusdt_20240808.gz")
    assert detect_format(path) == "binance"
    lake = Lake(tmp_path / "lake")
    (res,) = ingest_file(path, lake)
    part = Partition("BTCUSDT", dt.date(2024, 8, 8))
    assert res.partition == part and res.report.ok
    ev, book, tr = lake.read("events", part), lake.read("book", part), lake.read("trades", part)
    assert ev.height == book.height == 41_249  # every message: 9,757 trades + 28,040 tickers + depth
    assert tr.height == 9_757 and tr["aggressor_side"].null_count() == 0
    assert "book_complete" in book.columns and book["bid_px_10"].null_count() < 10
    report = lake.read_report(part)
    assert report["snapshots"] == 1 and report["depth_gaps"] == 0
    # incomplete before the snapshot (line 8), complete after it
    assert not book["book_complete"][0] and book["book_complete"].sum() > 0.9 * book.height
    # level 1 is the bookTicker: it never crosses, and deeper levels sit strictly behind it
    assert (book["ask_px_1"] > book["bid_px_1"]).all()
    assert (book["bid_px_2"] < book["bid_px_1"]).all() and (book["ask_px_2"] > book["ask_px_1"]).all()
    assert report["size_scale"] == 10**8


def test_binance_capture_without_snapshot_is_flagged_incomplete() -> None:
    path = shared(f"{HFT}/spot/btcusdt_20240809.gz")
    _, (day,) = read_file(path)
    assert day.date == dt.date(2024, 8, 9) and day.extra["snapshots"] == 0
    book = day.book
    assert book is not None
    # trades and BBO complete from the first line; the depth book never was fully known
    assert book["ask_px_1"].null_count() <= book.filter(pl.col("ts") < book["ts"][0] + dt.timedelta(seconds=1)).height
    assert day.extra["book_complete_rows"] == int(book["book_complete"].sum())
    assert int(book["book_complete"].sum()) < book.height
    assert day.trades.height == 10_147
    assert validate_day(day).ok


def test_hyperliquid_capture_is_refused_clearly() -> None:
    path = shared(f"{HFT}/hyperliquid/btcusd_20250126.gz")
    with pytest.raises(IngestError, match="Hyperliquid"):
        read_file(path)


def test_bitstamp_raw_feed_gives_snapshots_and_exchange_trades() -> None:
    path = shared("obanalytics_bitstamp_2015-05-01/2015-05-01.log.xz")
    assert detect_format(path) == "bitstamp-feed"  # was refused as an unknown file type
    _, (day,) = read_file(path, symbol="BTCUSD")
    assert day.levels == 20 and day.extra["snapshots"] == 5_011
    assert day.trades.height == 575 and day.events.height == 5_011 + 575
    first = day.trades.row(0, named=True)
    # 0.21144331 BTC at 236.47: the resting ask 65595187 was filled (its order_deleted line just before)
    # by the incoming bid 65595247: a buy, as the order log reads it too
    assert first["size"] == 21_144_331 and first["price"] == 236.47 and first["aggressor_side"] == 1
    assert day.trades["aggressor_side"].null_count() == day.extra["trades_without_side"] < 10
    report = validate_day(day)
    assert report.ok and report.crossed_book == 0
