"""``flowsense backtest``: parameter validation through the strategy configs, strategy files, and the
``--json`` fields the live worker's parity test compares against (orders, fills, position, pnl)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowsense.data.lake import Lake
from tests.backtest.test_backtest_report_cli import DATE, SYMBOL, synthetic_day


@pytest.fixture
def lake_home(home: Path) -> Path:
    Lake(home / "lake").write_day(synthetic_day(1500))
    return home


def _run(*args: str):
    from flowsense.cli import app

    return CliRunner().invoke(app, ["backtest", "--symbol", SYMBOL, "--date", DATE.isoformat(), *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "ofi_threshold", "--param", "size=-100"], "ofi_threshold: size must be > 0, got -100"),
        (["--strategy", "buy_and_hold", "--param", "size=0"], "buy_and_hold: size must be > 0, got 0"),
        (["--strategy", "market_maker", "--param", "tick=0"], "market_maker: tick must be > 0"),
    ],
)
def test_bad_parameter_values_exit_2_with_one_line(lake_home: Path, args: list[str], message: str) -> None:
    res = _run(*args)
    assert res.exit_code == 2, res.output
    assert message in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1
    assert not (lake_home / "reports").exists()  # refused before any work


def test_json_carries_orders_fills_position_pnl_and_strategy_file(lake_home: Path, tmp_path: Path) -> None:
    spec = tmp_path / "mm.yaml"
    spec.write_text("strategy: market_maker\nconfig:\n  size: 10\n  max_position: 50\n")
    res = _run("--strategy-config", str(spec), "--json")
    assert res.exit_code == 0, res.output
    p = json.loads(res.stdout)
    assert p["strategy"] == "market_maker" and p["params"]["size"] == 10
    assert len(p["orders"]) == p["engine"]["n_orders"] > 0 and len(p["fills"]) == p["engine"]["n_fills"] > 0
    o, f = p["orders"][0], p["fills"][0]
    assert isinstance(o["ts_submit"], int) and o["order_id"] == 1 and o["type"] == "limit"
    assert {"ts", "order_id", "side", "price", "size", "fee", "liquidity"} <= set(f)
    assert p["position"] == p["engine"]["final_position"] == 0  # flattened on the last event
    assert p["pnl"] == pytest.approx(p["engine"]["pnl"])
    cash = 1_000_000.0 - sum(x["side"] * x["price"] * x["size"] + x["fee"] for x in p["fills"])
    assert p["pnl"] == pytest.approx(cash - 1_000_000.0, abs=1e-6)  # flat: net PnL = cash change
    bad = tmp_path / "bad.json"
    bad.write_text('{"strategy": "market_maker", "config": {"size": -1}}')
    res = _run("--strategy-config", str(bad))
    assert res.exit_code == 2 and "bad.json: market_maker: size must be > 0" in res.output
