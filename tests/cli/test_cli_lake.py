"""The lake as something a user manages from the command line: validation gating, guesses in the ingest
summary, ``partitions list|delete``, ``catalog --format``. Real files where the issue names them."""

from __future__ import annotations

import json
import lzma
import shutil
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import SHARED_DATA, lobster_zip


def run(*argv: str):
    from flowsense.cli import app

    # a wide terminal: rich would otherwise fold the summary tables to 80 columns around long tmp paths
    return CliRunner(env={"COLUMNS": "250"}).invoke(app, list(argv))


def ok(*argv: str):
    res = run(*argv)
    assert res.exit_code == 0, (res.stdout, res.stderr)
    return res


def _unsorted_goog_pair(tmp_path: Path) -> Path:
    """The real GOOG level-1 day as a CSV pair with the times of messages 101 and 102 swapped: one row out
    of time order (the book still matches its events row by row)."""
    with zipfile.ZipFile(lobster_zip("GOOG", 1)) as zf:
        names = [n for n in zf.namelist() if n.endswith(".csv")]
        zf.extractall(tmp_path, members=names)
    msg = next(tmp_path / n for n in names if "_message_" in n)
    lines = msg.read_text().splitlines(keepends=True)
    a, b = lines[100].split(",", 1), lines[101].split(",", 1)
    assert float(a[0]) < float(b[0])
    lines[100], lines[101] = f"{b[0]},{a[1]}", f"{a[0]},{b[1]}"
    msg.write_text("".join(lines))
    return msg


def test_features_and_backtest_refuse_a_partition_that_failed_validation(home: Path, tmp_path: Path) -> None:
    msg = _unsorted_goog_pair(tmp_path)
    res = ok("ingest", str(msg))  # ingest keeps the data as it is, and says it failed
    assert "FAILED" in res.stdout and "non_monotonic_ts=1" in res.stdout
    assert "features and backtest refuse" in res.stdout
    for argv, what in ((["features"], "features"),
                       (["backtest", "-s", "GOOG", "-d", "2012-06-21", "--strategy", "buy_and_hold"], "backtest")):
        res = run(*argv)
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in res.output, res.output
        assert lines[0].startswith("error: GOOG|2012-06-21: validation failed (non_monotonic_ts=1)")
        assert f"{what} refuses it" in lines[0] and "--allow-invalid" in lines[0]
    assert not (home / "lake" / "features_tick").exists() and not (home / "reports").exists()
    # the explicit override is honoured (and said out loud)
    res = run("features", "--allow-invalid", "--clock", "1min")
    assert "used anyway (--allow-invalid)" in res.stderr
    assert res.exit_code == 0, res.output
    assert (home / "lake" / "features_tick" / "symbol=GOOG").exists()


def test_guesses_are_printed_and_recorded(home: Path, tmp_path: Path) -> None:
    src = SHARED_DATA / "mlfinpy_es_ticks_2013-09" / "tick_data.csv.xz"
    if not src.exists():
        pytest.skip(f"real data not present at {src}")
    # the first 2,000 ticks of the real file (its naive times are US/Central, CME Globex)
    with lzma.open(src) as fh:
        head = b"".join(fh.readline() for _ in range(2001))
    small = tmp_path / "tick_data.csv"
    small.write_bytes(head)
    res = run("ingest", str(small))
    assert res.exit_code == 2 and "without a time zone" in res.stderr and "--tz" in res.stderr
    res = ok("ingest", str(small), "--tz", "America/Chicago")
    out = " ".join(res.stdout.split())
    assert "guess: tick_data.csv: symbol TICK taken from the file name (pass --symbol to choose)" in out
    report = json.loads(next((home / "lake" / "_validation" / "symbol=TICK").rglob("report.json")).read_text())
    assert any("symbol TICK" in g for g in report["guesses"])
    # an explicit --symbol is not a guess
    res = ok("ingest", str(small), "--tz", "America/Chicago", "--symbol", "ES")
    assert "symbol ES taken" not in res.stdout and "guess: tick_data.csv: symbol" not in " ".join(res.stdout.split())


def test_orders_csv_symbol_is_a_guess(home: Path, tmp_path: Path) -> None:
    src = SHARED_DATA / "obanalytics_bitstamp_2015-05-01" / "orders.csv.xz"
    if not src.exists():
        pytest.skip(f"real data not present at {src}")
    res = run("ingest", str(src))
    # whatever the reader makes of it (an L3 log, or a clear refusal), it never silently calls it ORDERS
    if res.exit_code == 0:
        assert "symbol ORDERS taken from the file name" in " ".join(res.stdout.split())
    else:
        assert res.exit_code == 2 and "Traceback" not in res.output
        assert len([ln for ln in res.stderr.splitlines() if ln.strip()]) == 1


def test_partitions_list_and_delete(home: Path, tmp_path: Path) -> None:
    z = tmp_path / "LOBSTER_SampleFile_GOOG_2012-06-21_1.zip"
    shutil.copy(lobster_zip("GOOG", 1), z)
    ok("ingest", str(z))
    trades = tmp_path / "aaa-trades.csv"
    trades.write_text("timestamp,price,size\n2024-01-02T15:00:00Z,10.5,3\n2024-01-02T15:00:01Z,10.6,4\n")
    ok("ingest", str(trades), "--symbol", "AAA")
    from flowsense.config import Settings
    from flowsense.data.lake import Lake, Partition

    lake = Lake(Settings.from_env().lake)
    goog = Partition.parse("GOOG|2012-06-21")
    feats = lake.read("events", goog).select("ts", "symbol", "date", "seq").head(10)
    lake.write_derived("features_tick", goog, feats, inputs_version=lake.version(goog))

    listing = json.loads(ok("partitions", "list", "--format", "json").stdout)
    by_key = {(r["symbol"], r["date"]): r for r in listing}
    assert set(by_key) == {("GOOG", "2012-06-21"), ("AAA", "2024-01-02")}
    g = by_key[("GOOG", "2012-06-21")]
    assert g["tables"]["events"]["rows"] == 49_482 and g["tables"]["book"]["rows"] == 49_482
    assert g["tables"]["features_tick"] == {**g["tables"]["features_tick"], "rows": 10, "derived": True,
                                            "stale": False}
    assert g["validation"] == "ok"
    table = ok("partitions", "list").stdout
    assert "GOOG" in table and "49,482" in table and "features_tick" in table
    csv_lines = ok("partitions", "list", "--format", "csv", "--symbol", "AAA").stdout.splitlines()
    assert csv_lines[0].startswith("symbol,date,table,rows") and csv_lines[1].startswith("AAA,2024-01-02,events,2,")

    # deleting a raw table takes the derived tables with it, the rest of the partition stays
    res = ok("partitions", "delete", "GOOG", "2012-06-21", "--table", "book")
    assert "book" in res.stdout and "features_tick" in res.stdout
    assert not lake.exists("book", goog) and not lake.exists("features_tick", goog) and lake.exists("events", goog)
    assert ok("catalog", "select count(*) as n from book", "--format", "csv").stdout.splitlines() == ["n", "0"]
    # the whole partition, validation record included; the other partition is untouched
    ok("partitions", "delete", "GOOG", "2012-06-21", "--yes")
    assert lake.partition_info(goog).tables == {} and lake.read_report(goog) is None
    assert ok("catalog", "select symbol from events group by all", "--format", "csv").stdout.splitlines() == [
        "symbol", "AAA"]
    res = run("partitions", "delete", "GOOG", "2012-06-21")
    assert res.exit_code == 2 and res.stderr.startswith("error: no partition GOOG|2012-06-21")
    res = run("partitions", "delete", "AAA", "2024-01-02", "--table", "book")
    assert res.exit_code == 2 and "has no table 'book'" in res.stderr


def test_catalog_formats_and_wide_results(home: Path, tmp_path: Path) -> None:
    trades = tmp_path / "aaa-trades.csv"
    trades.write_text("timestamp,price,size\n2024-01-02T15:00:00Z,10.5,3\n2024-01-02T15:00:01Z,10.6,4\n")
    ok("ingest", str(trades), "--symbol", "AAA")
    sql = "select symbol, price, size from trades order by seq"
    assert ok("catalog", sql, "--format", "csv").stdout == "symbol,price,size\nAAA,10.5,3\nAAA,10.6,4\n"
    assert json.loads(ok("catalog", sql, "--format", "json").stdout) == [
        {"symbol": "AAA", "price": 10.5, "size": 3}, {"symbol": "AAA", "price": 10.6, "size": 4}]
    # a wide single row is transposed: one line per column, every column visible
    wide = "select " + ", ".join(f"{i} as column_number_{i}" for i in range(40))
    out = ok("catalog", wide).stdout
    assert "column_number_0 " in out and "column_number_39 " in out and "│ 39 " in out
    # many wide rows: the columns that fit, and the names of those that do not
    many = wide + " from range(3)"
    res = CliRunner(env={"COLUMNS": "100"}).invoke(__import__("flowsense.cli").cli.app, ["catalog", many])
    assert res.exit_code == 0, res.output
    assert "more column(s) not shown" in res.stdout and "column_number_39" in res.stdout
    assert max(len(ln) for ln in res.stdout.splitlines() if ln.startswith(("┃", "│"))) <= 100
    # --limit, and the note that there is more
    res = ok("catalog", "select * from range(100)", "--limit", "5")
    assert "first 5 rows shown" in res.stdout
    assert len(ok("catalog", "select * from range(100)", "--format", "csv").stdout.splitlines()) == 101
    res = run("catalog", "select * from nope")
    assert res.exit_code == 2 and res.stderr.startswith("error: SQL: Catalog Error") and "nope" in res.stderr
    res = run("catalog", "select 1", "--format", "xml")
    assert res.exit_code == 2 and "--format 'xml'" in res.stderr


def test_ingest_a_directory_reads_the_raw_files_under_it(home: Path, tmp_path: Path) -> None:
    """``flowsense ingest DIR`` ingests the raw files under DIR (a LOBSTER CSV pair once, hidden files
    skipped); an empty directory is one clear line and exit 2."""
    raw = tmp_path / "raw"
    (raw / "sub").mkdir(parents=True)
    with zipfile.ZipFile(lobster_zip("GOOG", 1)) as zf:
        zf.extractall(raw / "sub", members=[n for n in zf.namelist() if n.endswith(".csv")])
    shutil.copy(lobster_zip("AMZN", 1), raw)
    (raw / ".notes.txt").write_text("not market data")
    res = ok("ingest", str(raw))
    assert "GOOG" in res.stdout and "AMZN" in res.stdout
    listing = json.loads(ok("partitions", "list", "--format", "json").stdout)
    assert sorted(r["symbol"] for r in listing) == ["AMZN", "GOOG"]
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run("ingest", str(empty))
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert res.stderr.strip() == f"error: {empty}: directory holds no raw files (hidden and temporary files are skipped)"
