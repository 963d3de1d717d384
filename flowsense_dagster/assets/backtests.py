"""Backtest assets: an event-driven backtest per symbol x day, an intraday walk-forward per symbol x day
(one backtest per fold, out-of-sample predictions only, next to naive baselines), and an aggregate report.

Lake tables (through the lake IO manager): ``backtest_days`` (one metrics row per symbol x day, node
``backtest_day``), ``walkforward_folds`` and ``walkforward_summary`` (node ``walkforward_day``). The report
files (HTML/PDF per day, the aggregate HTML) go under ``FLOWSENSE_HOME/reports``.

Thin: the work is :func:`flowsense.backtest.runner.run_partition`, :func:`flowsense.backtest.walkforward.
walk_forward` and :func:`flowsense.reporting.summary.write_summary`; the settings are run config
(:class:`BacktestDayConfig`, :class:`WalkForwardConfig`) with the domain's defaults.
"""

import dataclasses
from collections.abc import Iterator
from typing import Any

import dagster as dg
import numpy as np
import polars as pl
from dagster import (
    AssetExecutionContext,
    AssetIn,
    AssetOut,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
    multi_asset,
)
from pydantic import Field

from flowsense.backtest.models import FixedBpsSlippage, MakerTakerFees
from flowsense.backtest.runner import run_partition
from flowsense.reporting.figures import equity_curves_png
from flowsense.reporting.summary import write_summary
from flowsense_dagster.metadata import png_value, table_md
from flowsense_dagster.partitions import symbol_date_partitions, to_lake_partition
from flowsense_dagster.resources import LAKE_IO_MANAGER, LakeResource
from flowsense_dagster.resources.io_manager import TABLE_KEY, UNION_KEY

GROUP = "backtests"
DEFAULT_FEE_RATE = MakerTakerFees().taker_rate  # 0.08% taker
DEFAULT_SLIPPAGE_BPS = FixedBpsSlippage().bps  # 1 bp
DAY_METRICS = ("total_return", "sharpe", "max_drawdown", "win_rate", "fees_paid", "turnover", "fill_rate")


def cost_label(fee_rate: float, slippage_bps: float) -> str:
    return f"{fee_rate:.2%} + {slippage_bps:g} bp"


class BacktestDayConfig(dg.Config):
    """The event-driven backtest of one day (latency/queue: the engine's defaults). Fees and slippage left
    empty are the defaults for the partition's instrument (equities: 0.08% taker, 1 bp;
    :func:`flowsense.backtest.runner.instrument_defaults`); set, they are used as given."""

    strategy: str = Field(default="ofi_threshold", description="Built-in strategy (flowsense.backtest.strategies).")
    params: dict[str, float] = Field(default_factory=dict, description="Strategy parameters.")
    taker_fee_rate: float | None = Field(
        default=None, description="Taker fee, fraction of notional; empty: the instrument's default."
    )
    slippage_bps: float | None = Field(
        default=None, description="Taker slippage, basis points; empty: the instrument's default."
    )


class WalkForwardConfig(dg.Config):
    """The intraday walk-forward of one day on a bar table."""

    clock: str = Field(default="1s", description="Bar clock: 1s (features_1s) or 1min (features_1min).")
    train: str = Field(default="2h", description="Training window of each fold.")
    test: str = Field(default="30m", description="Out-of-sample test window of each fold (the roll step).")
    fee_rate: float = Field(default=DEFAULT_FEE_RATE, description="Net run: fee, fraction of notional.")
    slippage_bps: float = Field(default=DEFAULT_SLIPPAGE_BPS, description="Net run: slippage, basis points.")
    periods_per_year: float = Field(default=252 * 23_400, description="Bars per year (annualisation).")


def _engine_config(config: BacktestDayConfig) -> tuple[Any, frozenset[str]]:
    """The engine config and the cost models set on purpose (the others follow the instrument)."""
    from flowsense.backtest.engine import BacktestConfig

    base = BacktestConfig()
    explicit: set[str] = set()
    if config.taker_fee_rate is not None:
        base = dataclasses.replace(base, fees=dataclasses.replace(base.fees, taker_rate=config.taker_fee_rate))
        explicit.add("fees")
    if config.slippage_bps is not None:
        base = dataclasses.replace(base, slippage=dataclasses.replace(base.slippage, bps=config.slippage_bps))
        explicit.add("slippage")
    return base, frozenset(explicit)


@multi_asset(
    name="backtest_day",
    outs={
        "backtest_days": AssetOut(
            group_name=GROUP,
            io_manager_key=LAKE_IO_MANAGER,
            metadata={TABLE_KEY: "backtest_days"},
            kinds={"parquet", "polars"},
            description="Event-driven order-book backtest of the day (default: the OFI-threshold strategy, "
            "1 ms latencies, risk-averse queue, 0.08% taker fee, 1 bp slippage): one metrics row; report "
            "(HTML/PDF) under FLOWSENSE_HOME/reports/backtest_day.",
        )
    },
    ins={
        "raw_events": AssetIn("raw_events", input_manager_key=LAKE_IO_MANAGER),
        "raw_book": AssetIn("raw_book", input_manager_key=LAKE_IO_MANAGER),
    },
    partitions_def=symbol_date_partitions,
)
def backtest_day(
    context: AssetExecutionContext,
    config: BacktestDayConfig,
    lake: LakeResource,
    raw_events: pl.DataFrame,
    raw_book: pl.DataFrame,
) -> Output[pl.DataFrame]:
    part = to_lake_partition(context.partition_key)
    cfg = lake.settings()
    engine_config, explicit = _engine_config(config)
    run = run_partition(
        lake.lake(), cfg.reports, part.symbol, part.date, config.strategy, dict(config.params), engine_config,
        out_dir=cfg.reports / "backtest_day" / f"{part.symbol}_{part.date.isoformat()}",
        events=raw_events, book=raw_book, explicit=explicit,
    )
    p = run.payload
    row = pl.DataFrame([{k: p.get(k) for k in DAY_METRICS}]).with_columns(
        pl.lit(part.symbol).alias("symbol"), pl.lit(part.date).alias("date"), pl.lit(config.strategy).alias("strategy")
    )
    md = "\n".join(f"| {k} | {v} |" for k, v in run.summary_rows)
    meta: dict[str, Any] = {
        "summary": MetadataValue.md("| metric | value |\n|---|---|\n" + md),
        "report_html": MetadataValue.path(p["report_html"]),
        "report_pdf": MetadataValue.path(p["report_pdf"]),
        "n_fills": int(p["engine"].get("n_fills", 0)),
        "pnl": float(p["engine"].get("pnl", 0.0)),
    }
    if "equity" in run.pngs:
        meta["equity_curve"] = png_value(run.pngs["equity"], "equity")
    return Output(row, output_name="backtest_days", metadata=meta)


def _wf_out(description: str, table: str) -> AssetOut:
    return AssetOut(group_name=GROUP, io_manager_key=LAKE_IO_MANAGER, metadata={TABLE_KEY: table},
                    kinds={"parquet", "polars"}, description=description)


@multi_asset(
    name="walkforward_day",
    outs={
        "walkforward_folds": _wf_out("Per-fold out-of-sample metrics of the walk-forward (strategy and "
                                     "baselines, gross and net of costs).", "walkforward_folds"),
        "walkforward_summary": _wf_out(
            "Intraday walk-forward on a bar table (default features_1s, train 2h / test 30m rolled): a ridge "
            "regression of the next bar's return on OFI features, fitted on each train window only, trades the "
            "test window out of sample next to flat, buy-and-hold and last-return-sign baselines, before costs "
            "and net of 0.08% + 1 bp (net: trades only when the predicted move exceeds the cost).",
            "walkforward_summary"),
    },
    ins={
        "features_1s": AssetIn("features_1s", input_manager_key=LAKE_IO_MANAGER),
        "features_1min": AssetIn("features_1min", input_manager_key=LAKE_IO_MANAGER),
    },
    partitions_def=symbol_date_partitions,
)
def walkforward_day(
    context: AssetExecutionContext,
    config: WalkForwardConfig,
    lake: LakeResource,
    features_1s: pl.DataFrame,
    features_1min: pl.DataFrame,
) -> Iterator[Output[pl.DataFrame]]:
    from flowsense.backtest.predictors import OfiLinearPredictor
    from flowsense.backtest.walkforward import make_folds, walk_forward
    from flowsense.backtest.wfrun import walkforward_regimes

    part = to_lake_partition(context.partition_key)
    by_clock = {"1s": features_1s, "1min": features_1min}
    if config.clock not in by_clock:
        raise dg.Failure(f"walkforward_day: clock {config.clock!r} is not one of {', '.join(by_clock)}")
    bars = by_clock[config.clock].sort("ts").filter(pl.col("mid_close").is_not_null())
    wf_folds = make_folds(bars["ts"], config.train, config.test)
    # per-regime results by causally filtered HMM regimes: the lake's `regimes` table, else an HMM fitted on
    # each fold's training bars; rolling-vol terciles only when neither is possible (regime_source says)
    regimes, regime_source = walkforward_regimes(lake.lake(), part.symbol, part.date, bars, wf_folds)
    folds_all, summary_all, results = [], [], {}
    for costs, fee, slip in (("gross", 0.0, 0.0), ("net", config.fee_rate, config.slippage_bps)):
        band = fee + slip * 1e-4  # trade only when the predicted move covers the round's cost

        def to_position(pred: np.ndarray, band: float = band) -> np.ndarray:
            return np.where(np.abs(pred) > band, np.sign(pred), 0.0)

        result = walk_forward(
            bars, OfiLinearPredictor(), folds=wf_folds, price_col="mid_close",
            strategy_name="ofi_ridge", regime=regimes, regime_source=regime_source, fee_rate=fee, slippage_bps=slip,
            periods_per_year=config.periods_per_year, to_position=to_position,
        )
        results[costs] = result
        keys = [pl.lit(costs).alias("costs"), pl.lit(part.symbol).alias("symbol"), pl.lit(part.date).alias("date"),
                pl.lit(float(fee)).alias("fee_rate"), pl.lit(float(slip)).alias("slippage_bps")]
        folds_all.append(result.fold_metrics.with_columns(keys))
        summary_all.append(result.summary.with_columns(keys))
    folds = pl.concat(folds_all, how="diagonal_relaxed")
    summary = pl.concat(summary_all, how="diagonal_relaxed")
    show = ["costs", "strategy", "total_return", "sharpe", "max_drawdown", "win_rate"]
    gross = results["gross"]
    yield Output(folds, output_name="walkforward_folds", metadata={
        "folds": len(gross.folds),
        "per_fold_gross": table_md(
            folds.filter((pl.col("strategy") == "ofi_ridge") & (pl.col("costs") == "gross")).select(
                [c for c in ("fold", "test_start", "test_end", "total_return", "sharpe") if c in folds.columns])),
    })
    meta: dict[str, Any] = {
        "folds": len(gross.folds),
        "clock": config.clock,
        "regime_source": regime_source,
        "out_of_sample_summary": table_md(summary.select([c for c in show if c in summary.columns])),
        "oos_equity": png_value(
            equity_curves_png({name: gross.equity(name) for name in gross.strategies},
                              f"{part.symbol} {part.date}: stitched out-of-sample equity before costs"),
            "oos equity"),
    }
    if gross.regimes is not None:
        meta["per_regime_gross"] = table_md(gross.regimes)
    yield Output(summary, output_name="walkforward_summary", metadata=meta)


def _net_costs(wf: pl.DataFrame) -> str:
    """The net costs the walk-forward days were run with (from the table; the defaults when absent)."""
    if not wf.height or not {"fee_rate", "slippage_bps"} <= set(wf.columns):
        return cost_label(DEFAULT_FEE_RATE, DEFAULT_SLIPPAGE_BPS)
    net = wf.filter(pl.col("costs") == "net").select("fee_rate", "slippage_bps").unique()
    labels = sorted(cost_label(f, s) for f, s in net.iter_rows())
    return " / ".join(labels) or cost_label(DEFAULT_FEE_RATE, DEFAULT_SLIPPAGE_BPS)


@asset(
    ins={
        "backtest_days": AssetIn("backtest_days", input_manager_key=LAKE_IO_MANAGER, metadata={UNION_KEY: True}),
        "walkforward_summary": AssetIn(
            "walkforward_summary", input_manager_key=LAKE_IO_MANAGER, metadata={UNION_KEY: True}
        ),
    },
    group_name=GROUP,
    description="Aggregate report over every backtested partition: event-driven results per day and the "
    "walk-forward strategy next to its baselines; HTML under FLOWSENSE_HOME/reports/summary. Part of the "
    "runs that materialize its inputs (all_assets_job), so it is always up to date.",
)
def backtest_report(
    context: AssetExecutionContext,
    lake: LakeResource,
    backtest_days: pl.DataFrame,
    walkforward_summary: pl.DataFrame,
) -> MaterializeResult:
    out = lake.settings().reports / "summary"
    report = write_summary(out, backtest_days, walkforward_summary, cost_label=_net_costs(walkforward_summary))
    meta: dict[str, Any] = {"partitions": backtest_days.height, "report_html": MetadataValue.path(str(report.html))}
    if report.days.height:
        meta["event_driven"] = table_md(report.days)
    if report.walk_forward.height:
        meta["walk_forward_vs_baselines"] = table_md(report.walk_forward)
    if report.png is not None:
        meta["plot"] = png_value(report.png, "walk-forward")
    context.log.info(f"aggregate report: {report.html}")
    return MaterializeResult(metadata=meta)


defs = dg.Definitions(assets=[backtest_day, walkforward_day, backtest_report])
