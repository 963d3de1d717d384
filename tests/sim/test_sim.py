"""Tests for the order-book simulator (flowsense.sim) and the ``flowsense simulate`` command."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flowsense.cli import app
from flowsense.data.lobster import read_lobster
from flowsense.sim import SimParams, simulate, trading_days
from flowsense.sim.params import PARAMS_PATH
from flowsense.sim.replay import read_raw, replay, replay_zip

SYMBOLS = ["AAA", "BBB", "GOOG"]
SCALE = 0.2
LEVELS = 5


@pytest.fixture(scope="module")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(SYMBOLS, 2, out, seed=11, start_date=dt.date(2024, 3, 1), levels=LEVELS, scale=SCALE)
    return out


@pytest.fixture(scope="module")
def raw(sim_dir: Path) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    return {p.name: read_raw(p) for p in sorted(sim_dir.glob("*.zip"))}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_file_names_weekdays_and_members(sim_dir: Path) -> None:
    # 2024-03-01 is a Friday: the second day must be Monday 2024-03-04
    expected = {f"{s}_{d}_{LEVELS}.zip" for s in SYMBOLS for d in ("2024-03-01", "2024-03-04")}
    assert {p.name for p in sim_dir.glob("*.zip")} == expected
    assert not list(sim_dir.glob(".*tmp"))  # atomic writes leave no temp files
    with zipfile.ZipFile(sim_dir / f"AAA_2024-03-04_{LEVELS}.zip") as zf:
        assert sorted(zf.namelist()) == [
            f"AAA_2024-03-04_34200000_57600000_message_{LEVELS}.csv",
            f"AAA_2024-03-04_34200000_57600000_orderbook_{LEVELS}.csv",
        ]
        first = zf.read(f"AAA_2024-03-04_34200000_57600000_message_{LEVELS}.csv").split(b"\n")[0].decode()
    fields = first.split(",")
    assert len(fields) == 6 and len(fields[0].split(".")[1]) == 9 and fields[1] == "1"


def test_trading_days_skip_weekends() -> None:
    days = trading_days(dt.date(2024, 1, 5), 3)
    assert days == [dt.date(2024, 1, 5), dt.date(2024, 1, 8), dt.date(2024, 1, 9)]


def test_trading_days_skip_the_holidays_the_backtest_calendar_refuses() -> None:
    from flowsense.data.instruments import instrument_for

    days = trading_days(dt.date(2024, 1, 12), 2)  # Monday 2024-01-15 is Martin Luther King Jr. Day
    assert days == [dt.date(2024, 1, 12), dt.date(2024, 1, 16)]
    seventy = trading_days(dt.date(2024, 1, 2), 70)  # the 60/7 walk-forward's window crosses three holidays
    assert seventy == instrument_for("SIMA").trade_dates(seventy[0], seventy[-1])


def test_deterministic_for_seed(tmp_path: Path) -> None:
    kw = {"start_date": dt.date(2024, 1, 2), "levels": 3, "scale": 0.03}
    a = simulate(["XX", "YY"], 1, tmp_path / "a", seed=3, **kw)
    b = simulate(["XX", "YY"], 1, tmp_path / "b", seed=3, **kw)
    c = simulate(["XX", "YY"], 1, tmp_path / "c", seed=4, **kw)
    only = simulate(["YY"], 1, tmp_path / "d", seed=3, **kw)
    assert [_digest(p) for p in a] == [_digest(p) for p in b]
    assert all(_digest(x) != _digest(y) for x, y in zip(a, c, strict=True))
    # one symbol's file does not depend on which other symbols were simulated with it
    assert _digest(only[0]) == _digest(a[1])


def test_parses_with_read_lobster(sim_dir: Path) -> None:
    path = sim_dir / f"BBB_2024-03-01_{LEVELS}.zip"
    (day,) = read_lobster(path)
    assert day.symbol == "BBB" and day.date == dt.date(2024, 3, 1)
    assert day.events.height == day.book.height > 10_000
    counts = dict(
        zip(*day.events["event_type"].value_counts().to_dict(as_series=False).values(), strict=True)
    )
    assert {"add", "delete", "execute_visible", "execute_hidden"} <= set(counts)
    assert day.trades.height == counts["execute_visible"] + counts["execute_hidden"]
    # after the opening batch both sides are quoted and the spread is positive
    book = day.book.slice(100)
    assert book["ask_px_1"].null_count() == 0 and book["bid_px_1"].null_count() == 0
    assert ((book["ask_px_1"] - book["bid_px_1"]) >= 0.01 - 1e-9).all()


def test_book_replays_exactly(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    for name, (msg, book, levels) in raw.items():
        assert levels == LEVELS
        rep = replay(msg, book, levels)
        assert rep.ok, (name, rep)
        assert rep.rows == len(msg)


def test_replay_detects_corruption(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    msg, book, levels = raw[f"AAA_2024-03-01_{LEVELS}.zip"]
    bad = book.copy()
    bad[5000, 1] += 1  # one size off by one share
    rep = replay(msg, bad, levels)
    assert rep.mismatches == 1 and rep.first_mismatch == 5000
    bad_msg = msg.copy()
    execs = np.flatnonzero(bad_msg[:, 1] == 4)
    bad_msg[execs[10], 4] -= 100 * int(bad_msg[execs[10], 5])  # execution one tick behind the best
    assert replay(bad_msg, book, levels).bad_executions >= 1


def test_never_crossed_or_locked_and_exec_at_best(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    for msg, book, _ in raw.values():
        ok = (np.abs(book[:, 0]) < 9_999_999_999) & (np.abs(book[:, 2]) < 9_999_999_999)
        assert ok[100:].all()
        assert (book[ok, 0] > book[ok, 2]).all()
        ex = np.flatnonzero(msg[:, 1] == 4)[1:]
        prev = book[ex - 1]
        best = np.where(msg[ex, 5] == 1, prev[:, 2], prev[:, 0])
        assert (msg[ex, 4] == best).all()
        hidden = np.flatnonzero(msg[:, 1] == 5)
        hidden = hidden[hidden > 0]
        assert (book[hidden] == book[hidden - 1]).all()


def test_timestamps(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    for msg, _, _ in raw.values():
        t = msg[:, 0]
        assert (np.diff(t) >= 0).all()
        assert t[0] >= 34_200 and t[-1] < 57_600
        assert t[-1] > 57_000  # the session is covered to the close


def test_u_shaped_activity(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    per_min = sum(np.histogram(m[:, 0], bins=390, range=(34_200, 57_600))[0] for m, _, _ in raw.values())
    edges = (per_min[:30].mean() + per_min[-30:].mean()) / 2
    midday = per_min[150:240].mean()
    assert edges > 1.3 * midday


def _mid_1min(msg: np.ndarray, book: np.ndarray) -> np.ndarray:
    minute = np.clip(((msg[:, 0] - 34_200) // 60).astype(int), 0, 389)
    mid = (book[:, 0] + book[:, 2]) / 2
    out = np.full(390, np.nan)
    out[minute] = mid  # the last mid in each minute wins
    for i in range(1, 390):
        if np.isnan(out[i]):
            out[i] = out[i - 1]
    return np.diff(np.log(out))


def test_cross_symbol_correlation(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    corrs = []
    for day in ("2024-03-01", "2024-03-04"):
        rets = [_mid_1min(*raw[f"{s}_{day}_{LEVELS}.zip"][:2]) for s in SYMBOLS]
        c = np.corrcoef(np.vstack(rets))
        corrs += [c[0, 1], c[0, 2], c[1, 2]]
    assert np.mean(corrs) > 0.1, corrs
    assert min(corrs) > -0.1


def test_order_flow_moves_prices(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    """10-second order-flow imbalance (Cont-Kukanov-Stoikov, level 1) correlates with mid changes."""
    for name, (msg, book, _) in raw.items():
        a, asz, b, bsz = (book[:, k].astype(float) for k in range(4))
        e = np.zeros(len(a))
        e[1:] = (
            np.where(b[1:] >= b[:-1], bsz[1:], 0)
            - np.where(b[1:] <= b[:-1], bsz[:-1], 0)
            - np.where(a[1:] <= a[:-1], asz[1:], 0)
            + np.where(a[1:] >= a[:-1], asz[:-1], 0)
        )
        k = ((msg[:, 0] - 34_200) // 10).astype(int)
        ofi = np.bincount(k[200:], weights=e[200:], minlength=2340)[:2340]
        last = np.full(2340, np.nan)
        last[k] = (a + b) / 2
        for i in range(1, 2340):
            if np.isnan(last[i]):
                last[i] = last[i - 1]
        dm = np.diff(last)
        assert np.corrcoef(ofi[1:], dm)[0, 1] > 0.15, name


def test_event_mix_and_rate_match_calibration(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    params = SimParams.from_json()
    types = np.concatenate([m[:, 1] for m, _, _ in raw.values()])
    mix = np.array([(types == k).mean() for k in range(1, 6)])
    real = np.asarray(params.type_mix)
    assert np.abs(mix - real).max() < 0.05, (mix, real)
    assert mix[0] > mix[2] > mix[3] > mix[1]  # adds > deletes > visible executions > partial cancels
    per_day = len(types) / len(raw)
    assert 0.7 * SCALE * params.messages_per_day < per_day < 1.3 * SCALE * params.messages_per_day


def test_prices_and_spreads(raw: dict[str, tuple[np.ndarray, np.ndarray, int]]) -> None:
    params = SimParams.from_json()
    goog_open = dict((s, p) for s, p, _ in params.known_symbols)["GOOG"]
    _, book, _ = raw[f"GOOG_{'2024-03-01'}_{LEVELS}.zip"]
    mid = (book[200:, 0] + book[200:, 2]) / 2e4
    assert abs(mid[0] / goog_open - 1) < 0.02
    spread_bp = ((book[200:, 0] - book[200:, 2]) / 1e4 / mid * 1e4).mean()
    assert 1.0 < spread_bp < 20.0
    opens = {s: raw[f"{s}_2024-03-01_{LEVELS}.zip"][1][200, 0] for s in SYMBOLS}
    assert len(set(opens.values())) == 3


def test_params_json_is_calibrated() -> None:
    raw = json.loads(PARAMS_PATH.read_text())
    assert "LOBSTER" in raw["source"]
    assert abs(sum(raw["type_mix"].values()) - 1) < 1e-3
    assert 100_000 < raw["messages_per_day"] < 200_000
    assert 0 < raw["hawkes"]["spectral_radius"] < 1
    assert len(raw["intraday_profile"]) == 13
    p = SimParams.from_json()
    mid = min(p.profile[4:9])
    assert p.profile[0] > 1.3 * mid and p.profile[-1] > 1.3 * mid


def test_api_validation(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        simulate([], 1, tmp_path)
    with pytest.raises(ValueError):
        simulate(["A"], 0, tmp_path)
    with pytest.raises(ValueError):
        simulate(["A"], 1, tmp_path, levels=51)


def test_cli_simulate(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(
        app,
        [
            "simulate",
            "--symbols",
            "QQ,RR",
            "--days",
            "1",
            "--out",
            str(out),
            "--seed",
            "5",
            "--levels",
            "2",
            "--scale",
            "0.02",
            "--start-date",
            "2024-02-05",
        ],
    )
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in out.glob("*.zip"))
    assert files == ["QQ_2024-02-05_2.zip", "RR_2024-02-05_2.zip"]
    assert "QQ" in res.output and "2024-02-05" in res.output
    assert replay_zip(out / files[0]).ok


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--symbols", " , ", "--days", "1"], "symbol"),
        (["--symbols", "A", "--days", "0"], "--days"),
        (["--symbols", "A", "--days", "1", "--levels", "0"], "--levels"),
        (["--symbols", "A", "--days", "1", "--start-date", "2024-13-01"], "--start-date"),
    ],
)
def test_cli_rejects_bad_arguments(tmp_path: Path, args: list[str], needle: str) -> None:
    res = CliRunner().invoke(app, ["simulate", *args, "--out", str(tmp_path)])
    assert res.exit_code == 2
    assert needle in res.output


def test_cli_help_documents_options() -> None:
    res = CliRunner().invoke(app, ["simulate", "--help"])
    assert res.exit_code == 0
    for opt in ("--symbols", "--days", "--out", "--seed", "--start-date", "--levels", "--scale"):
        assert opt in res.output
