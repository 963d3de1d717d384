"""A small real run through the library, for the API tests and the API benchmark: simulate two symbol-days
(LOBSTER format), ingest them, compute features, fill the Feast online store (SQLite), run event-driven
backtests of two strategies and an intraday walk-forward next to its baselines. Everything lands under
``home`` exactly where the CLI and the Dagster assets put it.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

SYMBOLS = ("AAA", "BBB")


def build(home: Path, *, symbols: tuple[str, ...] = SYMBOLS, scale: float = 0.05, feast: bool = True,
          seed: int = 11, backtest_symbols: int = 1) -> dict[str, Any]:
    """``backtest_symbols``: how many of the symbols get the two event-driven backtests (each writes an
    HTML + PDF report, the slow part)."""
    import numpy as np
    import polars as pl

    from flowsense.backtest.engine import BacktestConfig
    from flowsense.backtest.predictors import OfiLinearPredictor
    from flowsense.backtest.runner import run_partition
    from flowsense.backtest.walkforward import walk_forward
    from flowsense.config import Settings
    from flowsense.data.ingest import ingest_file
    from flowsense.data.lake import Lake
    from flowsense.features import compute_partition
    from flowsense.sim import simulate

    t0 = time.perf_counter()
    settings = Settings(home=home.resolve())
    lake = Lake(settings.lake)
    zips = simulate(list(symbols), 1, settings.inbox, scale=scale, seed=seed)
    parts = []
    for z in zips:
        for res in ingest_file(z, lake):
            parts.append(res.partition)
            compute_partition(lake, res.partition, clocks=("1s",))
    runs = []
    for k, part in enumerate(parts):
        for strategy, params in (("ofi_threshold", {}), ("buy_and_hold", {})) if k < backtest_symbols else ():
            run = run_partition(lake, settings.reports, part.symbol, part.date, strategy, params, BacktestConfig())
            runs.append(run.payload)
        bars = lake.read("features_1s", part).sort("ts").filter(pl.col("mid_close").is_not_null())
        folds, summary = [], []
        for costs, fee, slip in (("gross", 0.0, 0.0), ("net", 0.0008, 1.0)):
            band = fee + slip * 1e-4

            def to_position(pred: np.ndarray, band: float = band) -> np.ndarray:
                return np.where(np.abs(pred) > band, np.sign(pred), 0.0)

            res = walk_forward(bars, OfiLinearPredictor(), train="2h", test="30m", price_col="mid_close",
                               strategy_name="ofi_ridge", fee_rate=fee, slippage_bps=slip,
                               periods_per_year=252 * 23_400, to_position=to_position)
            keys = [pl.lit(costs).alias("costs"), pl.lit(part.symbol).alias("symbol"), pl.lit(part.date).alias("date")]
            folds.append(res.fold_metrics.with_columns(keys))
            summary.append(res.summary.with_columns(keys))
        lake.write_derived("walkforward_folds", part, pl.concat(folds, how="diagonal_relaxed"))
        lake.write_derived("walkforward_summary", part, pl.concat(summary, how="diagonal_relaxed"))
    if feast:
        from flowsense.serving import apply, feature_store, latest_ts, materialize, sync_sources

        sync_sources(settings, lake)
        store = feature_store(settings)
        apply(settings, store=store)
        start = dt.datetime.combine(min(p.date for p in parts), dt.time(), tzinfo=dt.UTC)
        materialize(settings, start, latest_ts(settings) or start + dt.timedelta(days=1), store=store)
    return {"settings": settings, "partitions": parts, "backtests": runs, "seconds": time.perf_counter() - t0}
