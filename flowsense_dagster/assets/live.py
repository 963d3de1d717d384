"""Live trading back in the pipeline: the worker's paper (or IB) fills vs the backtest of the same day.

``live_vs_backtest`` (per symbol x day): reads the ``live_orders`` / ``live_fills`` lake tables the worker
wrote at the end of its session, runs the backtest of that day with the same strategy and parameters, and
records slippage, fill rate and the PnL gap (one row, lake table ``live_vs_backtest``; the numbers are in
the materialization's metadata in the UI). Thin: the work is :func:`flowsense.live.compare.compare_day`.
"""


from collections.abc import Iterator
from typing import Any

import dagster as dg
import polars as pl
from dagster import AssetExecutionContext, MetadataValue, Output, asset

from flowsense.live.compare import LIVE_FILLS, LIVE_VS_BACKTEST, compare_day
from flowsense_dagster.partitions import symbol_date_partitions, to_lake_partition
from flowsense_dagster.resources import LAKE_IO_MANAGER, LakeResource
from flowsense_dagster.resources.io_manager import TABLE_KEY

GROUP = "live"


@asset(
    name=LIVE_VS_BACKTEST,
    group_name=GROUP,
    io_manager_key=LAKE_IO_MANAGER,
    metadata={TABLE_KEY: LIVE_VS_BACKTEST},
    kinds={"parquet", "polars"},
    partitions_def=symbol_date_partitions,
    deps=["raw_events", "raw_book"],
    output_required=False,  # no worker session that day: nothing to compare, nothing materialized
    description="The worker's fills of the day (lake table live_fills, written by `flowsense worker run`) "
    "against the backtest of the same day, strategy and parameters: slippage, fill rate, PnL gap.",
)
def live_vs_backtest(context: AssetExecutionContext, lake: LakeResource) -> Iterator[Output[pl.DataFrame]]:
    part = to_lake_partition(context.partition_key)
    lk = lake.lake()
    if not lk.exists(LIVE_FILLS, part):
        context.log.info(f"no {LIVE_FILLS} for {part.key}: the worker did not trade that day (run `flowsense "
                         f"worker run --symbol {part.symbol} --date {part.date}`); nothing to compare")
        return
    row = compare_day(lk, part.symbol, part.date)
    md = "| | live | backtest |\n|---|---:|---:|\n" + "\n".join([
        f"| orders | {row['live_orders']:,} | {row['backtest_orders']:,} |",
        f"| fills | {row['live_fills']:,} | {row['backtest_fills']:,} |",
        f"| fill rate | {row['live_fill_rate']:.1%} | {row['backtest_fill_rate']:.1%} |",
        f"| slippage (bp) | {row['live_slippage_bp']:.3f} | {row['backtest_slippage_bp']:.3f} |",
        f"| net PnL | {row['live_pnl']:,.2f} | {row['backtest_pnl']:,.2f} |",
    ])
    meta: dict[str, Any] = {
        "comparison": MetadataValue.md(md),
        "pnl_gap": MetadataValue.float(row["pnl_gap"]),
        "avg_price_gap_per_share": MetadataValue.float(row["avg_price_gap_per_share"]),
        "fill_rate_gap": MetadataValue.float(row["live_fill_rate"] - row["backtest_fill_rate"]),
        "matched_orders": MetadataValue.int(row["matched_orders"]),
        "session": MetadataValue.text(str(row["session"])),
    }
    yield Output(pl.DataFrame([row]), metadata=meta)


defs = dg.Definitions(assets=[live_vs_backtest])
