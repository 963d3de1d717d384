"""Reports (HTML/PDF/PNGs) and the ``flowsense backtest`` command on a tiny synthetic lake partition."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from flowsense.backtest.metrics import METRIC_KEYS, compute_metrics
from flowsense.backtest.report import write_report
from flowsense.backtest.walkforward import regime_metrics, rolling_vol_regimes
from flowsense.data.day import DayTables
from flowsense.data.lake import Lake
from flowsense.data.schemas import EVENTS_SCHEMA, TRADES_SCHEMA, book_schema

SYMBOL = "TEST"
DATE = dt.date(2024, 1, 2)


def synthetic_day(n: int = 3000, seed: int = 7) -> DayTables:
    """A one-level book random walk (1-cent ticks) with adds and visible executions, 9:30 to ~10:20."""
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC)
    ts = [t0 + dt.timedelta(milliseconds=1000 * i + int(rng.integers(0, 900))) for i in range(n)]
    bid = 100.0 + 0.01 * np.cumsum(rng.choice([-1, 0, 0, 1], size=n))
    ask = bid + 0.01 * rng.choice([1, 1, 2], size=n)
    bsz = rng.integers(200, 1000, size=n)
    asz = rng.integers(200, 1000, size=n)
    etype = np.where(rng.random(n) < 0.2, "execute_visible", "add")
    side = rng.choice([-1, 1], size=n).astype(np.int8)
    price = np.where(side == 1, bid, ask)
    size = rng.integers(1, 100, size=n)
    events = pl.DataFrame({
        "ts": pl.Series(ts, dtype=pl.Datetime("ns", "UTC")),
        "symbol": SYMBOL, "date": DATE, "seq": np.arange(n),
        "event_type": pl.Series(etype.tolist()).cast(EVENTS_SCHEMA["event_type"]),
        "order_id": np.arange(1, n + 1), "side": side, "price": price, "size": size,
    }).cast(EVENTS_SCHEMA)
    book = pl.DataFrame({
        "ts": events["ts"], "symbol": SYMBOL, "date": DATE, "seq": np.arange(n),
        "ask_px_1": ask, "ask_sz_1": asz, "bid_px_1": bid, "bid_sz_1": bsz,
    }).cast(book_schema(1))
    ex = events.filter(pl.col("event_type") == "execute_visible")
    trades = ex.select("ts", "symbol", "date", pl.int_range(0, pl.len(), dtype=pl.Int64).alias("seq"),
                       "price", "size", (-pl.col("side")).alias("aggressor_side")).cast(TRADES_SCHEMA)
    return DayTables(SYMBOL, DATE, events, trades, book)


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------


def test_write_report_files_and_pngs(tmp_path: Path) -> None:
    day = synthetic_day(600)
    ts = day.book["ts"]
    mid = ((day.book["bid_px_1"] + day.book["ask_px_1"]) / 2).to_numpy()
    pos = np.where(np.arange(mid.size) % 100 < 50, 100, 0)
    cash = 1e6 - np.cumsum(np.diff(pos, prepend=0) * mid)
    equity = pl.DataFrame({"ts": ts, "cash": cash, "position": pos, "mid": mid, "equity": cash + pos * mid})
    chg = np.flatnonzero(np.diff(pos, prepend=0))
    fills = pl.DataFrame({
        "ts": ts.gather(chg), "order_id": np.arange(1, chg.size + 1),
        "side": np.sign(np.diff(pos, prepend=0)[chg]).astype(np.int8), "price": mid[chg],
        "size": np.full(chg.size, 100), "fee": np.full(chg.size, 0.5), "liquidity": "taker",
        "slippage": 0.0,
    })
    metrics = compute_metrics(equity, fills, periods_per_year=252 * 23400)
    labels = rolling_vol_regimes(equity["mid"], window=20)
    regimes = regime_metrics(equity["equity"].pct_change().fill_null(0.0).to_numpy(), labels)
    art = write_report(tmp_path / "rep", equity=equity, metrics=metrics, fills=fills, book=day.book,
                       regimes=regimes, params={"size": 100}, title="test report", save_pngs=True)
    for path in (art.html, art.pdf, *art.png_paths.values()):
        assert path.exists() and path.stat().st_size > 1000, path
    assert set(art.pngs) == {"equity", "drawdown", "trades", "fills_vs_book"}
    assert all(b.startswith(b"\x89PNG") for b in art.pngs.values())
    assert art.pdf.read_bytes().startswith(b"%PDF")
    html = art.html.read_text()
    assert html.count("data:image/png;base64,") == 4
    assert "Per regime" in html and "Sharpe" in html
    assert any(label == "Trades" for label, _ in art.summary)


def test_write_report_from_array(tmp_path: Path) -> None:
    eq = np.cumprod(1 + np.random.default_rng(0).normal(0, 0.01, 300))
    art = write_report(tmp_path, equity=eq, metrics=compute_metrics(eq))
    assert art.html.stat().st_size > 0 and art.pdf.stat().st_size > 0


# ------------------------------------------------------------------------------------------------
# CLI
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def lake_home(home: Path) -> Path:
    Lake(home / "lake").write_day(synthetic_day())
    return home


def _app():
    pytest.importorskip("flowsense.backtest.engine")
    pytest.importorskip("flowsense.backtest.strategies")
    from flowsense.cli import app

    return app


def test_list_strategies(home: Path) -> None:
    app = _app()
    res = CliRunner().invoke(app, ["backtest", "--list-strategies"])
    assert res.exit_code == 0, res.output
    for name in ("buy_and_hold", "ofi_threshold", "market_maker"):
        assert name in res.output
    res = CliRunner().invoke(app, ["backtest", "--list-strategies", "--json"])
    listing = json.loads(res.stdout)
    assert "threshold" in listing["ofi_threshold"]


def test_backtest_json(lake_home: Path) -> None:
    app = _app()
    res = CliRunner().invoke(app, ["backtest", "--symbol", SYMBOL, "--date", DATE.isoformat(),
                                   "--strategy", "ofi_threshold", "--param", "threshold=50",
                                   "--param", "size=10", "--latency-ms", "2", "--queue", "probabilistic",
                                   "--fee-taker", "0.0005", "--slippage-bps", "0.5", "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)  # the whole of stdout is one JSON object
    assert set(METRIC_KEYS) <= set(payload)
    assert payload["params"] == {"threshold": 50.0, "size": 10}
    assert payload["config"]["latency"]["order_ns"] == 2_000_000
    assert payload["config"]["queue"]["model"] == "ProbabilisticQueue"
    out = Path(payload["report_dir"])
    assert out.parent == lake_home / "reports"
    assert out.name.startswith(f"backtest_{SYMBOL}_{DATE}_ofi_threshold_")
    for name in ("report.html", "report.pdf", "metrics.json", "fills.parquet", "equity.parquet"):
        assert (out / name).stat().st_size > 0, name
    assert json.loads((out / "metrics.json").read_text())["strategy"] == "ofi_threshold"
    assert pl.read_parquet(out / "equity.parquet").height > 0


def test_backtest_table(lake_home: Path) -> None:
    app = _app()
    res = CliRunner().invoke(app, ["backtest", "-s", SYMBOL, "-d", DATE.isoformat(), "--strategy", "buy_and_hold"])
    assert res.exit_code == 0, res.output
    assert "Sharpe" in res.stdout and "report.html" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "nope"], "unknown strategy"),
        (["--strategy", "ofi_threshold", "--param", "bogus=1"], "unknown parameter"),
        (["--strategy", "ofi_threshold", "--param", "size=abc"], "size"),
        (["--strategy", "ofi_threshold", "--param", "size"], "k=v"),
        (["--strategy", "buy_and_hold", "--queue", "fifo"], "queue"),
    ],
)
def test_backtest_bad_input_exit_2(lake_home: Path, args: list[str], message: str) -> None:
    app = _app()
    res = CliRunner().invoke(app, ["backtest", "--symbol", SYMBOL, "--date", DATE.isoformat(), *args])
    assert res.exit_code == 2, res.output
    assert message in res.output


def test_backtest_not_ingested(home: Path) -> None:
    app = _app()
    res = CliRunner().invoke(app, ["backtest", "--symbol", "ZZZ", "--date", "2024-01-02", "--strategy", "buy_and_hold"])
    assert res.exit_code == 2
    assert "flowsense ingest" in res.output
