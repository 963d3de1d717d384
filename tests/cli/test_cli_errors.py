"""Errors a user can act on: one line on stderr naming the file (and line) and the reason, exit 2, the lake
as it was. Each case was reproduced on the code before this test (traceback, misleading text, emoji)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import REPO, lobster_zip

GOOD_TRADES = "timestamp,price,size\n" + "".join(
    f"2024-01-02T15:00:{i // 10:02d}.{i % 10}Z,100.5,10\n" for i in range(50)
)


def run(*argv: str):
    from flowsense.cli import app

    return CliRunner().invoke(app, list(argv))


def one_error_line(res, *needles: str) -> str:
    """The result's stderr is exactly one line starting with ``error:`` and containing ``needles``."""
    assert res.exit_code == 2, (res.stdout, res.stderr)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in res.output
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def lake_digest(home: Path) -> dict[str, str]:
    lake = home / "lake"
    if not lake.exists():
        return {}
    return {str(p.relative_to(lake)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(lake.rglob("*")) if p.is_file()}


@pytest.fixture
def seeded(home: Path, tmp_path: Path) -> Path:
    """A home whose lake holds one small trades partition, so 'the lake as it was' is not vacuous."""
    good = tmp_path / "SEED_trades.csv"
    good.write_text(GOOD_TRADES)
    res = run("ingest", str(good), "--symbol", "SEED")
    assert res.exit_code == 0, res.output
    return home


def test_zip_member_with_bad_crc(seeded: Path, tmp_path: Path) -> None:
    src = lobster_zip("GOOG", 1)
    raw = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = next(i for i in zf.infolist() if "_orderbook_" in i.filename)
    # flip a byte inside the member's compressed data: inflates fine, fails the CRC-32 check
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw[start + info.compress_size // 2] ^= 0x01
    bad = tmp_path / src.name
    bad.write_bytes(bytes(raw))
    before = lake_digest(seeded)
    res = run("ingest", str(bad))
    line = one_error_line(res, str(bad), "zip member", "_orderbook_1.csv", "corrupt")
    assert "BadZipFile" not in line and ("CRC" in line or "Error -3" in line)
    assert lake_digest(seeded) == before


def test_truncated_zip(seeded: Path, tmp_path: Path) -> None:
    src = lobster_zip("GOOG", 1)
    bad = tmp_path / src.name
    bad.write_bytes(src.read_bytes()[:50_000])
    before = lake_digest(seeded)
    one_error_line(run("ingest", str(bad)), str(bad), "truncated", "50,000 bytes")
    assert lake_digest(seeded) == before


def test_empty_file(seeded: Path, tmp_path: Path) -> None:
    empty = tmp_path / "trades.csv"
    empty.write_bytes(b"")
    before = lake_digest(seeded)
    line = one_error_line(run("ingest", str(empty)), str(empty), "file is empty")
    assert "unknown file type" not in line
    assert lake_digest(seeded) == before


def test_error_text_is_not_markup_or_emoji(seeded: Path, tmp_path: Path) -> None:
    # line 100 is bad: rich used to render "file.csv:100:" as "file.csv💯"
    rows = "".join(f"2024-01-02T10:00:{i // 10:02d}.{i % 10}Z,100.5,10\n" for i in range(98))
    bad = tmp_path / "file.csv"
    bad.write_text("timestamp,price,size\n" + rows + "2024-01-02T10:00:59Z,[bold]abc[/bold],10\n")
    line = one_error_line(run("ingest", str(bad)), f"{bad}:100: ", "'[bold]abc[/bold]' is not a number")
    assert "\N{HUNDRED POINTS SYMBOL}" not in line


def test_resample_is_checked_before_the_run(home: Path) -> None:
    res = run("backtest", "--symbol", "ZZZ", "--date", "2024-01-02", "--strategy", "buy_and_hold",
              "--resample", "7x")
    one_error_line(res, "--resample '7x' is not a duration")
    assert not (home / "reports").exists()


def test_date_that_contradicts_a_dated_file_name(home: Path) -> None:
    src = lobster_zip("GOOG", 1)
    one_error_line(run("ingest", str(src), "--date", "2012-06-22"), str(src),
                   "--date 2012-06-22 contradicts the date in the file name (2012-06-21)")
    assert lake_digest(home) == {}


def test_naive_timestamps_need_tz(home: Path, tmp_path: Path) -> None:
    naive = tmp_path / "ES_trades.csv"
    naive.write_text("timestamp,price,size\n2013-09-01 17:00:00.083,1640.25,8\n2013-09-01 17:00:01,1640.5,1\n")
    one_error_line(run("ingest", str(naive)), f"{naive}:2:", "without a time zone", "--tz")
    assert lake_digest(home) == {}
    res = run("ingest", str(naive), "--tz", "America/Chicago")
    assert res.exit_code == 0, res.output
    # 17:00 in Chicago (CDT, UTC-5) is 22:00 UTC
    res = run("catalog", "select strftime(min(ts) at time zone 'UTC', '%H:%M') as t from events", "--format", "csv")
    assert res.stdout.splitlines() == ["t", "22:00"]
    one_error_line(run("ingest", str(naive), "--tz", "Mars/Olympus"), "--tz 'Mars/Olympus'")


# ---- read-only FLOWSENSE_HOME -------------------------------------------------------------------------


@pytest.fixture
def readonly_home(seeded: Path):
    """``seeded`` made read-only: a read-only bind mount as root (root ignores file modes), else chmod."""
    if os.geteuid() != 0:
        for p in [seeded, *seeded.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        yield seeded
        for p in [seeded, *seeded.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
        return
    mnt = seeded.parent / "ro_home"
    mnt.mkdir()
    res = subprocess.run(["mount", "--bind", "-o", "ro", str(seeded), str(mnt)], capture_output=True, check=False)
    if res.returncode != 0:
        pytest.skip(f"cannot make a read-only mount here: {res.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def test_readonly_home_query_works_and_writes_fail_in_one_line(readonly_home: Path, monkeypatch,
                                                               tmp_path: Path) -> None:
    monkeypatch.setenv("FLOWSENSE_HOME", str(readonly_home))
    with pytest.raises(OSError):
        (readonly_home / "probe").write_text("x")
    before = lake_digest(readonly_home)
    res = run("catalog", "select symbol, count(*) as n from events group by all", "--format", "csv")
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == ["symbol,n", "SEED,50"]
    res = run("catalog")  # listing: the catalog file cannot be refreshed, the lake is listed read-only
    assert res.exit_code == 0, res.output
    assert "read-only" in res.stdout
    assert run("partitions", "list").exit_code == 0
    good = tmp_path / "OTHER_trades.csv"
    good.write_text(GOOD_TRADES)
    line = one_error_line(run("ingest", str(good)), str(readonly_home), "not writable")
    assert "OSError" not in line
    one_error_line(run("partitions", "delete", "SEED", "2024-01-02"), "not writable")
    assert lake_digest(readonly_home) == before


# ---- Ctrl-C -------------------------------------------------------------------------------------------

# The real program in a subprocess; the second file's read is slowed down so the test knows when to press
# Ctrl-C (SIGINT), after the first file was ingested.
SLOW_SECOND_READ = """
import sys, time
import flowsense.data.ingest as ing
real = ing.read_file
def read_file(path, **kw):
    if "SLOW" in str(path):
        print("READING", flush=True)
        time.sleep(60)
    return real(path, **kw)
ing.read_file = read_file
from flowsense.cli import app
sys.argv = ["flowsense", *sys.argv[1:]]
app()
"""


def test_ctrl_c_says_what_was_interrupted(home: Path, tmp_path: Path) -> None:
    first, second = tmp_path / "AAA_trades.csv", tmp_path / "SLOW_trades.csv"
    first.write_text(GOOD_TRADES)
    second.write_text(GOOD_TRADES)
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLOWSENSE_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SECOND_READ, "ingest", str(first), str(second)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "READING"
    written = lake_digest(home)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("interrupted: flowsense ingest stopped by Ctrl-C while ingesting ")
    assert str(second) in lines[0] and "AAA|2024-01-02" in lines[0] and "no partition is half-written" in lines[0]
    assert lake_digest(home) == written and any("symbol=AAA" in k for k in written)
    assert not any("symbol=SLOW" in k for k in written)


def test_ctrl_c_before_anything_was_written(home: Path, tmp_path: Path) -> None:
    slow = tmp_path / "SLOW_trades.csv"
    slow.write_text(GOOD_TRADES)
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLOWSENSE_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SECOND_READ, "ingest", str(slow)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "READING"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().endswith("the lake is unchanged"), err
    assert lake_digest(home) == {}
