"""Backtest assets: an event-driven backtest per symbol x day, an intraday walk-forward per symbol x day
(one backtest per fold, out-of-sample predictions only, next to naive baselines), and an aggregate report.

Thin: the work is :func:`flowsense.backtest.runner.run_partition` and
:func:`flowsense.backtest.walkforward.walk_forward`; these assets pick the inputs and attach metadata.
"""


import base64
import io
import json
from typing import Any

import numpy as np
import polars as pl
from dagster import AssetExecutionContext, AssetKey, MaterializeResult, MetadataValue, asset

from flowsense.backtest.runner import run_partition
from flowsense_dagster.metadata import md_table, png_md
from flowsense_dagster.partitions import symbol_date_partitions, to_lake_partition
from flowsense_dagster.resources import LakeResource

GROUP = "backtests"
STRATEGY = "ofi_threshold"
WF_CLOCK = "features_1s"
WF_TRAIN, WF_TEST = "2h", "30m"
FEE_RATE, SLIPPAGE_BPS = 0.0008, 1.0  # the defaults: 0.08% taker, 1 bp slippage


def _fig_png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


@asset(
    partitions_def=symbol_date_partitions,
    deps=[AssetKey("raw_events"), AssetKey("raw_book")],
    group_name=GROUP,
    description="Event-driven order-book backtest of the OFI-threshold strategy on the day (1 ms latencies, "
    "risk-averse queue, 0.08% taker fee, 1 bp slippage): report (HTML/PDF) under FLOWSENSE_HOME/reports.",
)
def backtest_day(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    from flowsense.backtest.engine import BacktestConfig

    part = to_lake_partition(context.partition_key)
    cfg = lake.settings()
    run = run_partition(
        lake.lake(), cfg.reports, part.symbol, part.date, STRATEGY, {}, BacktestConfig(),
        out_dir=cfg.reports / "backtest_day" / f"{part.symbol}_{part.date.isoformat()}",
    )
    p = run.payload
    row = pl.DataFrame([{k: p.get(k) for k in ("total_return", "sharpe", "max_drawdown", "win_rate",
                                               "fees_paid", "turnover", "fill_rate")}])
    lake.lake().write_derived("backtest_days", part, row.with_columns(
        pl.lit(part.symbol).alias("symbol"), pl.lit(part.date).alias("date"), pl.lit(STRATEGY).alias("strategy")))
    md = "\n".join(f"| {k} | {v} |" for k, v in run.summary_rows)
    meta: dict[str, Any] = {
        "summary": MetadataValue.md("| metric | value |\n|---|---|\n" + md),
        "report_html": MetadataValue.path(p["report_html"]),
        "report_pdf": MetadataValue.path(p["report_pdf"]),
        "n_fills": int(p["engine"].get("n_fills", 0)),
        "pnl": float(p["engine"].get("pnl", 0.0)),
    }
    if "equity" in run.pngs:
        meta["equity_curve"] = MetadataValue.md(png_md(run.pngs["equity"], "equity"))
    return MaterializeResult(metadata=meta)


@asset(
    partitions_def=symbol_date_partitions,
    deps=[AssetKey(WF_CLOCK)],
    group_name=GROUP,
    description=f"Intraday walk-forward on {WF_CLOCK}: train {WF_TRAIN} / test {WF_TEST} rolled; a ridge "
    "regression of the next bar's return on OFI features, fitted on each train window only, trades the test "
    "window out of sample next to flat, buy-and-hold and last-return-sign baselines, before costs and net of "
    "0.08% + 1 bp (net: trades only when the predicted move exceeds the cost).",
)
def walkforward_day(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    from flowsense.backtest.predictors import OfiLinearPredictor
    from flowsense.backtest.walkforward import rolling_vol_regimes, walk_forward

    part = to_lake_partition(context.partition_key)
    store = lake.lake()
    bars = store.read(WF_CLOCK, part).sort("ts").filter(pl.col("mid_close").is_not_null())
    regimes = rolling_vol_regimes(bars["mid_close"], window=300)
    folds_all, summary_all, results = [], [], {}
    for costs, fee, slip in (("gross", 0.0, 0.0), ("net", FEE_RATE, SLIPPAGE_BPS)):
        band = fee + slip * 1e-4  # trade only when the predicted move covers the round's cost

        def to_position(pred: np.ndarray, band: float = band) -> np.ndarray:
            return np.where(np.abs(pred) > band, np.sign(pred), 0.0)

        result = walk_forward(
            bars, OfiLinearPredictor(), train=WF_TRAIN, test=WF_TEST, price_col="mid_close",
            strategy_name="ofi_ridge", regime=regimes, fee_rate=fee, slippage_bps=slip,
            periods_per_year=252 * 23_400, to_position=to_position,
        )
        results[costs] = result
        keys = [pl.lit(costs).alias("costs"), pl.lit(part.symbol).alias("symbol"), pl.lit(part.date).alias("date")]
        folds_all.append(result.fold_metrics.with_columns(keys))
        summary_all.append(result.summary.with_columns(keys))
    folds = pl.concat(folds_all, how="diagonal_relaxed")
    summary = pl.concat(summary_all, how="diagonal_relaxed")
    store.write_derived("walkforward_folds", part, folds)
    store.write_derived("walkforward_summary", part, summary)
    show = ["costs", "strategy", "total_return", "sharpe", "max_drawdown", "win_rate"]
    result = results["gross"]
    meta: dict[str, Any] = {
        "folds": len(result.folds),
        "out_of_sample_summary": MetadataValue.md(md_table(summary.select([c for c in show if c in summary.columns]))),
        "per_fold_gross": MetadataValue.md(md_table(
            folds.filter((pl.col("strategy") == "ofi_ridge") & (pl.col("costs") == "gross")).select(
                [c for c in ("fold", "test_start", "test_end", "total_return", "sharpe") if c in folds.columns]))),
    }
    if result.regimes is not None:
        meta["per_regime_gross"] = MetadataValue.md(md_table(result.regimes))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3))
    for name in result.strategies:
        ax.plot(result.equity(name), label=name, lw=1)
    ax.set_title(f"{part.symbol} {part.date}: stitched out-of-sample equity before costs")
    ax.legend(fontsize=7)
    meta["oos_equity"] = MetadataValue.md(png_md(_fig_png(fig), "oos equity"))
    return MaterializeResult(metadata=meta)


@asset(
    deps=[AssetKey("backtest_day"), AssetKey("walkforward_day")],
    group_name=GROUP,
    description="Aggregate report over every backtested partition: event-driven results per day and the "
    "walk-forward strategy next to its baselines; HTML under FLOWSENSE_HOME/reports/summary.",
)
def backtest_report(context: AssetExecutionContext, lake: LakeResource) -> MaterializeResult:
    store = lake.lake()
    cfg = lake.settings()

    def collect(table: str) -> pl.DataFrame:
        parts = store.partitions(table)
        return pl.concat([store.read(table, p) for p in parts], how="diagonal_relaxed") if parts else pl.DataFrame()

    days = collect("backtest_days")
    wf = collect("walkforward_summary")
    out = cfg.reports / "summary"
    out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"partitions": days.height}
    html = ["<html><head><meta charset='utf-8'><title>FlowSense backtests</title></head><body>",
            "<h1>FlowSense backtest summary</h1>"]
    if days.height:
        view = days.select("symbol", "date", "strategy", "total_return", "sharpe", "max_drawdown", "fees_paid")
        meta["event_driven"] = MetadataValue.md(md_table(view))
        html += ["<h2>Event-driven (per day)</h2>", view.to_pandas().to_html(index=False)]
    if wf.height:
        agg = (wf.group_by("costs", "strategy").agg(pl.len().alias("days"), pl.col("total_return").mean().alias("mean_return"),
                                           pl.col("sharpe").mean().alias("mean_sharpe"))
               .sort("costs", "mean_return", descending=[False, True]))
        meta["walk_forward_vs_baselines"] = MetadataValue.md(md_table(agg))
        html += ["<h2>Walk-forward out of sample, mean over days</h2>", agg.to_pandas().to_html(index=False)]
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 3))
        labels = [f"{c}\n{s}" for c, s in zip(agg["costs"], agg["strategy"], strict=True)]
        ax.bar(labels, agg["mean_return"].fill_null(0).to_list())
        ax.tick_params(axis="x", labelsize=6)
        ax.set_title("mean out-of-sample return per day (gross / net of 0.08% + 1 bp)")
        png = _fig_png(fig)
        meta["plot"] = MetadataValue.md(png_md(png, "walk-forward"))
        html.append(f"<img src='data:image/png;base64,{base64.b64encode(png).decode()}'/>")
    html.append("</body></html>")
    path = out / "report.html"
    tmp = path.with_suffix(".tmp")
    tmp.write_text("\n".join(html))
    tmp.replace(path)
    (out / "summary.json").write_text(json.dumps({"days": days.to_dicts(), "walk_forward": wf.to_dicts()},
                                                 default=str, indent=1))
    meta["report_html"] = MetadataValue.path(str(path))
    context.log.info(f"aggregate report: {path}")
    return MaterializeResult(metadata=meta)
