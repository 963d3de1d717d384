"""The aggregate backtest report: event-driven results per day and the walk-forward next to its baselines.

:func:`write_summary` renders ``report.html`` (tables + an embedded bar chart) and ``summary.json`` into a
folder, atomically, from the ``backtest_days`` and ``walkforward_summary`` tables.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from flowsense.data.lake import atomic_write_bytes
from flowsense.reporting.figures import bar_png
from flowsense.reporting.markdown import png_data_uri

DAY_COLUMNS = ("symbol", "date", "strategy", "total_return", "sharpe", "max_drawdown", "fees_paid")


@dataclass(frozen=True)
class SummaryReport:
    html: Path
    json: Path
    days: pl.DataFrame  # event-driven rows shown (DAY_COLUMNS)
    walk_forward: pl.DataFrame  # mean over days per (costs, strategy)
    png: bytes | None  # the walk-forward bar chart


def walk_forward_means(wf: pl.DataFrame) -> pl.DataFrame:
    """Days, mean return and mean Sharpe per (costs, strategy), best return first within each cost."""
    return (
        wf.group_by("costs", "strategy")
        .agg(pl.len().alias("days"), pl.col("total_return").mean().alias("mean_return"),
             pl.col("sharpe").mean().alias("mean_sharpe"))
        .sort("costs", "mean_return", descending=[False, True])
    )


def write_summary(out: Path, days: pl.DataFrame, wf: pl.DataFrame, *, cost_label: str) -> SummaryReport:
    """Write ``out/report.html`` and ``out/summary.json``; ``cost_label`` describes the net costs."""
    out.mkdir(parents=True, exist_ok=True)
    html = ["<html><head><meta charset='utf-8'><title>FlowSense backtests</title></head><body>",
            "<h1>FlowSense backtest summary</h1>"]
    view = days.select([c for c in DAY_COLUMNS if c in days.columns]) if days.height else pl.DataFrame()
    if days.height:
        html += ["<h2>Event-driven (per day)</h2>", view.to_pandas().to_html(index=False)]
    agg = walk_forward_means(wf) if wf.height else pl.DataFrame()
    png = None
    if wf.height:
        html += ["<h2>Walk-forward out of sample, mean over days</h2>", agg.to_pandas().to_html(index=False)]
        labels = [f"{c}\n{s}" for c, s in zip(agg["costs"], agg["strategy"], strict=True)]
        png = bar_png(labels, agg["mean_return"].to_list(),
                      f"mean out-of-sample return per day (gross / net of {cost_label})")
        html.append(f"<img src='{png_data_uri(png)}'/>")
    html.append("</body></html>")
    path = out / "report.html"
    atomic_write_bytes(path, "\n".join(html).encode())
    summary = out / "summary.json"
    atomic_write_bytes(summary, json.dumps({"days": days.to_dicts(), "walk_forward": wf.to_dicts()},
                                           default=str, indent=1).encode())
    return SummaryReport(html=path, json=summary, days=view, walk_forward=agg, png=png)
