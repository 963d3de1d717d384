"""Back into the pipeline: the worker's fills as lake tables, and live vs backtest on the same day.

At the end of a session the worker writes ``live_orders`` and ``live_fills`` for its symbol x day into
the lake (derived tables, one file per partition, like every other table). :func:`compare_day` runs the
backtest of the same day with the same strategy and parameters and compares:

* **slippage**: average signed cost of the fills against the book price they took (live and backtest,
  in dollars per share and bp), and the per-order average price gap on orders matched by order number;
* **fill rate**: orders with at least one fill / orders (live and backtest);
* **PnL gap**: live net PnL - backtest net PnL (and realized, fees).

For a paper session the two agree by construction (the paper broker is the backtest's exchange), which is
the check that the live path is wired right; for an IB session the gap measures the simulator.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl

LIVE_ORDERS, LIVE_FILLS, LIVE_VS_BACKTEST = "live_orders", "live_fills", "live_vs_backtest"


def session_frames(summary: dict[str, Any]) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The worker summary's orders and fills as frames (with the session's identity on every row)."""
    ident = {"symbol": summary["symbol"], "date": dt.date.fromisoformat(summary["date"]),
             "session": summary["session"], "strategy": summary["strategy"],
             "params": json.dumps(summary.get("params") or {}, sort_keys=True), "broker": summary["broker"],
             "pnl": float(summary["pnl"])}
    o_schema = {"order_id": pl.Int64, "client_order_id": pl.String, "ts_submit": pl.Int64, "side": pl.Int8,
                "type": pl.String, "price": pl.Float64, "size": pl.Int64, "status": pl.String, "filled": pl.Int64,
                "avg_price": pl.Float64, "fees": pl.Float64, "ts_done": pl.Int64, "reason": pl.String,
                "model_version": pl.String}
    f_schema = {"fill_no": pl.Int64, "ts": pl.Int64, "order_id": pl.Int64, "client_order_id": pl.String,
                "side": pl.Int8, "price": pl.Float64, "size": pl.Int64, "fee": pl.Float64, "liquidity": pl.String,
                "slippage": pl.Float64, "book_price": pl.Float64, "model_version": pl.String}
    orders = pl.DataFrame([{k: o.get(k) for k in o_schema} for o in summary["orders"]], schema=o_schema)
    fills = pl.DataFrame([{k: f.get(k) for k in f_schema} for f in summary["fills"]], schema=f_schema)
    extra = [pl.lit(v).alias(k) for k, v in ident.items()]
    return orders.with_columns(extra), fills.with_columns(extra)


def write_session(lake: Any, summary: dict[str, Any]) -> dict[str, str]:
    """Write ``live_orders`` / ``live_fills`` for the session's symbol x day; returns the paths."""
    from flowsense.data.lake import Partition

    part = Partition(summary["symbol"], dt.date.fromisoformat(summary["date"]))
    orders, fills = session_frames(summary)
    return {t: str(lake.write_derived(t, part, df)) for t, df in ((LIVE_ORDERS, orders), (LIVE_FILLS, fills))}


def _slip(fills: pl.DataFrame) -> dict[str, float]:
    if fills.height == 0:
        return {"per_share": 0.0, "bp": 0.0, "total": 0.0}
    signed = (fills["price"] - fills["book_price"]) * fills["side"].cast(pl.Float64)
    shares = float(fills["size"].sum())
    total = float((signed * fills["size"]).sum())
    notional = float((fills["book_price"] * fills["size"]).sum())
    return {"per_share": total / shares, "bp": 1e4 * total / notional if notional else 0.0, "total": total}


def _fill_rate(orders: pl.DataFrame) -> float:
    return float((orders["filled"] > 0).sum()) / orders.height if orders.height else 0.0


def compare_day(lake: Any, symbol: str, date: dt.date, *, config: Any = None) -> dict[str, Any]:
    """Live fills of the day (from the lake) vs the backtest of the same day, strategy and parameters."""
    from flowsense.backtest.engine import BacktestConfig, run_backtest
    from flowsense.data.lake import Partition
    from flowsense.trading import strategy_configs

    part = Partition(symbol, date)
    if not lake.exists(LIVE_FILLS, part):
        raise FileNotFoundError(f"no {LIVE_FILLS} for {part.key}: run `flowsense worker run` on that day first")
    lo = lake.read(LIVE_ORDERS, part)
    lf = lake.read(LIVE_FILLS, part)
    strategy = lo["strategy"][0] if lo.height else lf["strategy"][0]
    params = json.loads((lo["params"][0] if lo.height else lf["params"][0]) or "{}")
    live_pnl = float((lo["pnl"] if lo.height else lf["pnl"])[0])
    cfg = strategy_configs()[strategy].from_params(params)
    res = run_backtest(lake.read("events", part), lake.read("book", part), cfg, config or BacktestConfig())
    bo, bf = res.orders, res.fills
    bf = bf.with_columns(pl.col("book_price"))
    summ = res.summary()
    matched = lo.join(bo.select("order_id", pl.col("avg_price").alias("bt_avg_price"),
                                pl.col("filled").alias("bt_filled")), on="order_id", how="inner")
    with_px = matched.filter(pl.col("avg_price").is_not_null() & pl.col("bt_avg_price").is_not_null())
    gap = ((with_px["avg_price"] - with_px["bt_avg_price"]) * with_px["side"].cast(pl.Float64))
    live_slip, bt_slip = _slip(lf), _slip(bf)
    return {
        "symbol": symbol, "date": date.isoformat(), "strategy": strategy, "params": json.dumps(params),
        "session": lo["session"][0] if lo.height else lf["session"][0],
        "live_orders": lo.height, "backtest_orders": bo.height, "matched_orders": matched.height,
        "live_fills": lf.height, "backtest_fills": bf.height,
        "live_fill_rate": _fill_rate(lo), "backtest_fill_rate": _fill_rate(bo),
        "live_slippage_bp": live_slip["bp"], "backtest_slippage_bp": bt_slip["bp"],
        "live_slippage_per_share": live_slip["per_share"], "backtest_slippage_per_share": bt_slip["per_share"],
        "avg_price_gap_per_share": float(gap.mean()) if gap.len() else 0.0,
        "max_abs_price_gap": float(gap.abs().max()) if gap.len() else 0.0,
        "live_pnl": live_pnl, "backtest_pnl": float(summ["pnl"]), "pnl_gap": live_pnl - float(summ["pnl"]),
    }
