"""Malformed input stops with an error naming the file and line, exits non-zero, and writes nothing."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowsense.cli import app
from flowsense.data.ingest import ingest_file
from flowsense.data.lake import Lake
from flowsense.data.lobster import read_lobster
from flowsense.errors import IngestError

SYM, DATE, LVL = "TEST", "2024-01-02", 2
MSG = f"{SYM}_{DATE}_34200000_57600000_message_{LVL}.csv"
BOOK = f"{SYM}_{DATE}_34200000_57600000_orderbook_{LVL}.csv"


def good_rows() -> tuple[list[str], list[str]]:
    """A tiny, internally consistent LOBSTER day (2 levels)."""
    msgs = [
        "34200.000000001,1,1,100,1000000,1",  # bid 100 @ 100.00
        "34200.5,1,2,200,1001000,-1",  # ask 200 @ 100.10
        "34201.25,1,3,50,999000,1",  # bid 50 @ 99.90
        "34202,4,2,20,1001000,-1",  # buyer hits the ask: 20 executed
        "34203.123456789,3,3,50,999000,1",  # delete bid 3
    ]
    e = "9999999999,0,-9999999999,0"
    books = [
        f"9999999999,0,1000000,100,{e}",
        f"1001000,200,1000000,100,{e}",
        "1001000,200,1000000,100,9999999999,0,999000,50",
        "1001000,180,1000000,100,9999999999,0,999000,50",
        f"1001000,180,1000000,100,{e}",
    ]
    return msgs, books


def write_pair(folder: Path, msgs: list[str], books: list[str], *, newline_at_end: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    end = "\n" if newline_at_end else ""
    (folder / MSG).write_text("\n".join(msgs) + end)
    (folder / BOOK).write_text("\n".join(books) + "\n")
    return folder / MSG


def test_good_pair_parses(tmp_path: Path) -> None:
    (day,) = read_lobster(write_pair(tmp_path, *good_rows()))
    assert day.events.height == 5 and day.levels == 2
    assert day.book["ask_px_1"].to_list() == [None, 100.1, 100.1, 100.1, 100.1]
    assert day.book["bid_px_2"].to_list() == [None, None, 99.9, 99.9, None]
    assert day.trades["aggressor_side"].to_list() == [1]  # execution of a sell order: buyer-initiated
    assert day.events["ts"].dt.epoch("ns")[4] % 10**9 == 123_456_789


def _expect_error(path: Path, tmp_path: Path, match: str, line: int | None) -> IngestError:
    lake = Lake(tmp_path / "lake")
    with pytest.raises(IngestError, match=match) as info:
        ingest_file(path, lake)
    err = info.value
    assert err.line == line, str(err)
    assert Path(err.path).name in str(err)
    assert not (tmp_path / "lake").exists() or not any(p.is_file() for p in (tmp_path / "lake").rglob("*"))
    return err


def test_non_numeric_field(tmp_path: Path) -> None:
    msgs, books = good_rows()
    msgs[2] = "34201.25,1,3,fifty,999000,1"
    err = _expect_error(write_pair(tmp_path / "in", msgs, books), tmp_path, "not a number", line=3)
    assert err.path.endswith(MSG) and "'size'" in str(err)


def test_wrong_column_count(tmp_path: Path) -> None:
    msgs, books = good_rows()
    books[3] = books[3] + ",5"
    err = _expect_error(write_pair(tmp_path / "in", msgs, books), tmp_path, "expected 8 columns, found 9", line=4)
    assert err.path.endswith(BOOK)


def test_too_few_columns(tmp_path: Path) -> None:
    msgs, books = good_rows()
    msgs[1] = "34200.5,1,2,200,1001000"
    _expect_error(write_pair(tmp_path / "in", msgs, books), tmp_path, "expected 6 columns, found 5", line=2)


def test_truncated_file(tmp_path: Path) -> None:
    msgs, books = good_rows()
    msgs[-1] = "34203.123456789,3,3,5"  # cut mid-line, no final newline
    _expect_error(write_pair(tmp_path / "in", msgs, books, newline_at_end=False), tmp_path, "truncated", line=5)


def test_mismatched_message_and_book(tmp_path: Path) -> None:
    msgs, books = good_rows()
    err = _expect_error(write_pair(tmp_path / "in", msgs, books[:-1]), tmp_path, "must align", line=5)
    assert "5 rows" in str(err) and "4" in str(err)


def test_unknown_message_type(tmp_path: Path) -> None:
    msgs, books = good_rows()
    msgs[3] = "34202,9,2,20,1001000,-1"
    _expect_error(write_pair(tmp_path / "in", msgs, books), tmp_path, "unknown LOBSTER message type 9", line=4)


def test_bad_direction(tmp_path: Path) -> None:
    msgs, books = good_rows()
    msgs[0] = "34200.000000001,1,1,100,1000000,0"
    _expect_error(write_pair(tmp_path / "in", msgs, books), tmp_path, "direction", line=1)


def test_missing_partner_file(tmp_path: Path) -> None:
    path = write_pair(tmp_path / "in", *good_rows())
    (tmp_path / "in" / BOOK).unlink()
    _expect_error(path, tmp_path, "missing LOBSTER partner", line=None)


def test_unknown_file_type(tmp_path: Path) -> None:
    path = tmp_path / "notes.bin"
    path.write_bytes(b"\x00\x01\x02 not market data")
    _expect_error(path, tmp_path, "unknown file type", line=None)


def test_missing_file(tmp_path: Path) -> None:
    _expect_error(tmp_path / "nope.zip", tmp_path, "file not found", line=None)


def test_corrupt_zip(tmp_path: Path) -> None:
    path = tmp_path / f"{SYM}_{DATE}_{LVL}.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip")
    _expect_error(path, tmp_path, "zip", line=None)


def test_zip_errors_name_the_member(tmp_path: Path) -> None:
    msgs, books = good_rows()
    msgs[2] = "34201.25,1,3,50,abc,1"
    path = tmp_path / f"{SYM}_{DATE}_{LVL}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(MSG, "\n".join(msgs) + "\n")
        zf.writestr(BOOK, "\n".join(books) + "\n")
    err = _expect_error(path, tmp_path, "not a number", line=3)
    assert err.path == f"{path}::{MSG}"


def test_failed_file_leaves_earlier_partition_untouched(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    good = write_pair(tmp_path / "good", *good_rows())
    ingest_file(good, lake)
    before = {p: p.read_bytes() for p in lake.root.rglob("*.parquet")}
    msgs, books = good_rows()
    msgs[1] = "oops"
    with pytest.raises(IngestError):
        ingest_file(write_pair(tmp_path / "bad", msgs, books), lake)
    after = {p: p.read_bytes() for p in lake.root.rglob("*.parquet")}
    assert before == after
    assert not [p for p in lake.root.rglob(".*tmp*")]


def test_write_failure_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A crash while writing the second table leaves no temporary and no new file behind."""
    import polars as pl

    lake = Lake(tmp_path / "lake")
    calls = {"n": 0}
    real = pl.DataFrame.write_parquet

    def flaky(self, file, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            Path(file).write_bytes(b"partial")
            raise OSError("disk full")
        return real(self, file, *args, **kwargs)

    monkeypatch.setattr(pl.DataFrame, "write_parquet", flaky)
    with pytest.raises(OSError, match="disk full"):
        ingest_file(write_pair(tmp_path / "in", *good_rows()), lake)
    assert [p for p in lake.root.rglob("*") if p.is_file()] == []


def test_validation_reports_bad_data_without_failing(tmp_path: Path) -> None:
    msgs, books = good_rows()
    msgs[2], msgs[3] = msgs[3], msgs[2]  # out-of-order timestamps
    books[2], books[3] = books[3], books[2]
    books[4] = "999000,180,1000000,100,9999999999,0,-9999999999,0"  # crossed: ask 99.90 < bid 100.00
    (res,) = ingest_file(write_pair(tmp_path / "in", msgs, books), Lake(tmp_path / "lake"))
    assert res.report.non_monotonic_ts == 1
    assert res.report.crossed_book == 1
    assert not res.report.ok


def test_cli_exit_code_and_message(tmp_path: Path, home: Path) -> None:
    msgs, books = good_rows()
    msgs[2] = "34201.25,1,3,50,abc,1"
    path = write_pair(tmp_path / "in", msgs, books)
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 2
    assert f"{MSG}:3" in result.output and "not a number" in result.output
    assert not (home / "lake").exists() or not any((home / "lake").rglob("*.parquet"))


def test_cli_ingest_ok(tmp_path: Path, home: Path) -> None:
    path = write_pair(tmp_path / "in", *good_rows())
    result = CliRunner().invoke(app, ["ingest", str(path)])
    assert result.exit_code == 0, result.output
    assert "TEST" in result.output
    assert (home / "flowsense.duckdb").exists()
    result = CliRunner().invoke(app, ["catalog", "select count(*) as n from events"])
    assert result.exit_code == 0 and "5" in result.output


def test_bad_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWSENSE_PROFILE", "staging")
    result = CliRunner().invoke(app, ["catalog"])
    assert result.exit_code == 2 and "FLOWSENSE_PROFILE" in result.output


def test_halt_messages(tmp_path: Path) -> None:
    """LOBSTER type 7: price -1 halt, 0 quoting resumes, 1 trading resumes; no price is stored for them."""
    msgs, books = good_rows()
    msgs = [*msgs[:3], "34201.5,7,0,0,-1,-1", "34201.6,7,0,0,0,-1", "34201.7,7,0,0,1,-1", *msgs[3:]]
    books = [*books[:3], books[2], books[2], books[2], *books[3:]]
    (res,) = ingest_file(write_pair(tmp_path / "in", msgs, books), Lake(tmp_path / "lake"))
    ev = Lake(tmp_path / "lake").read("events", res.partition)
    assert ev["event_type"].cast(str).to_list()[3:6] == ["halt", "quote_resume", "trade_resume"]
    assert ev["price"][3:6].to_list() == [None, None, None]
    assert res.report.halts == 1 and res.report.ok
