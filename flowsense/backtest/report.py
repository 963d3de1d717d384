"""Backtest reports: one HTML file (Jinja2, PNGs embedded as base64) and one PDF (matplotlib PdfPages).

Figures: equity curve, drawdown, distribution of per-trade PnL, fills on top of the bid/ask/mid over the
day. Tables: summary metrics, parameters, per-regime metrics. :func:`write_report` returns the paths,
the PNG bytes (for Dagster ``MetadataValue.md``/image metadata) and the summary rows.

Matplotlib is used through :class:`matplotlib.figure.Figure` (no ``pyplot`` global state), so reports
can be built from threads and servers without choosing a backend.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from jinja2 import Environment, FileSystemLoader, select_autoescape
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure

from flowsense.backtest.metrics import drawdown_stats, trades_from_fills

__all__ = ["ReportArtifacts", "format_value", "summary_rows", "write_report"]

TEMPLATES = Path(__file__).parent / "templates"
MAX_PLOT_POINTS = 4000

# (key, label, kind) in display order; kind: pct | ratio | int | money | float | seconds
SUMMARY_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "pct"),
    ("annualized_return", "Annualized return", "pct"),
    ("annualized_volatility", "Annualized volatility", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("calmar", "Calmar", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("max_drawdown_duration", "Max drawdown duration (periods)", "int"),
    ("max_drawdown_duration_s", "Max drawdown duration (s)", "seconds"),
    ("n_trades", "Trades", "int"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("avg_trade_pnl", "Avg trade PnL", "money"),
    ("turnover", "Turnover (x equity)", "ratio"),
    ("fees_paid", "Fees paid", "money"),
    ("fill_rate", "Fill rate", "pct"),
    ("psr", "Probabilistic Sharpe (vs 0)", "pct"),
    ("dsr", "Deflated Sharpe", "pct"),
    ("n_trials", "Configurations tried", "int"),
    ("final_equity", "Final equity", "money"),
)


def format_value(value: Any, kind: str = "float") -> str:
    """Human formatting used by the HTML/PDF tables and the CLI."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if kind == "pct":
        return f"{100 * float(value):.2f}%"
    if kind == "ratio":
        return f"{float(value):.3f}"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{float(value):,.2f}"
    if kind == "seconds":
        return str(dt.timedelta(seconds=round(float(value))))
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def summary_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(label, formatted value)`` rows of the summary table for the keys present in ``metrics``."""
    return [(label, format_value(metrics[key], kind)) for key, label, kind in SUMMARY_FIELDS
            if key in metrics and metrics[key] is not None]


@dataclass(slots=True)
class ReportArtifacts:
    """Paths of the written report and the figures as PNG bytes (keyed by figure name)."""

    directory: Path
    html: Path
    pdf: Path
    pngs: dict[str, bytes] = field(default_factory=dict)
    png_paths: dict[str, Path] = field(default_factory=dict)
    summary: list[tuple[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# figures
# ------------------------------------------------------------------------------------------------


def _x_axis(frame: pl.DataFrame) -> np.ndarray:
    if "ts" in frame.columns:
        ts = frame["ts"]
        if isinstance(ts.dtype, pl.Datetime):
            return ts.dt.replace_time_zone(None).to_numpy()
        return ts.to_numpy()
    return np.arange(frame.height)


def _thin(frame: pl.DataFrame, n: int = MAX_PLOT_POINTS) -> pl.DataFrame:
    return frame.gather_every(max(frame.height // n, 1)) if frame.height > n else frame


def _fig(height: float = 3.2) -> Figure:
    fig = Figure(figsize=(10, height), layout="constrained")
    return fig


def _equity_fig(equity: pl.DataFrame) -> Figure:
    eq = _thin(equity)
    fig = _fig()
    ax = fig.add_subplot()
    ax.plot(_x_axis(eq), eq["equity"].to_numpy(), lw=1.0, color="#1f77b4")
    ax.set_title("Equity curve")
    ax.set_ylabel("equity")
    ax.grid(alpha=0.3)
    return fig


def _drawdown_fig(equity: pl.DataFrame) -> Figure:
    _, _, dd = drawdown_stats(equity["equity"].to_numpy())
    frame = _thin(equity.with_columns(pl.Series("dd", -100 * dd)))
    fig = _fig(2.6)
    ax = fig.add_subplot()
    x = _x_axis(frame)
    ax.fill_between(x, frame["dd"].to_numpy(), 0.0, color="#d62728", alpha=0.35, lw=0)
    ax.plot(x, frame["dd"].to_numpy(), color="#d62728", lw=0.8)
    ax.set_title("Drawdown")
    ax.set_ylabel("% below peak")
    ax.grid(alpha=0.3)
    return fig


def _trades_fig(trades: pl.DataFrame | None) -> Figure:
    fig = _fig(2.8)
    ax = fig.add_subplot()
    pnl = trades["pnl"].cast(pl.Float64).drop_nulls().to_numpy() if trades is not None and trades.height else None
    if pnl is None or pnl.size == 0:
        ax.text(0.5, 0.5, "no closed trades", ha="center", va="center", transform=ax.transAxes)
    else:
        bins = min(max(int(np.sqrt(pnl.size)) * 2, 10), 80)
        ax.hist(pnl[pnl >= 0], bins=bins, color="#2ca02c", alpha=0.7, label=f"wins ({int((pnl > 0).sum())})")
        ax.hist(pnl[pnl < 0], bins=bins, color="#d62728", alpha=0.7, label=f"losses ({int((pnl < 0).sum())})")
        ax.axvline(0.0, color="k", lw=0.8)
        ax.legend(loc="upper right")
    ax.set_title("Per-trade PnL")
    ax.set_xlabel("PnL")
    ax.set_ylabel("trades")
    ax.grid(alpha=0.3)
    return fig


def _book_fig(book: pl.DataFrame | None, fills: pl.DataFrame | None, equity: pl.DataFrame) -> Figure:
    """Top: the whole day (thinned); bottom: a 5-minute zoom around the median fill at full resolution."""
    zoom = (book is not None and fills is not None and fills.height > 0 and "ts" in fills.columns
            and "ts" in book.columns and isinstance(book["ts"].dtype, pl.Datetime))
    fig = Figure(figsize=(10, 6.4 if zoom else 3.6), layout="constrained")
    ax = fig.add_subplot(2, 1, 1) if zoom else fig.add_subplot()
    _book_axes(ax, book, fills, equity, 6000)
    ax.set_title("Fills vs book (day)")
    if zoom:
        assert book is not None and fills is not None
        centre = fills["ts"].sort()[fills.height // 2]
        half = dt.timedelta(minutes=2, seconds=30)
        lo, hi = centre - half, centre + half
        ax2 = fig.add_subplot(2, 1, 2)
        _book_axes(ax2, book.filter(pl.col("ts").is_between(lo, hi)), fills.filter(pl.col("ts").is_between(lo, hi)),
                   equity.head(0), 20_000)
        ax2.set_title(f"Fills vs book (zoom {lo:%H:%M:%S}-{hi:%H:%M:%S})")
    return fig


def _book_axes(ax: Any, book: pl.DataFrame | None, fills: pl.DataFrame | None, equity: pl.DataFrame,
               max_points: int) -> None:
    drew = False
    if book is not None and {"ts", "bid_px_1", "ask_px_1"} <= set(book.columns) and book.height:
        b = _thin(book.select("ts", "bid_px_1", "ask_px_1").drop_nulls(), max_points)
        x = _x_axis(b)
        bid, ask = b["bid_px_1"].to_numpy(), b["ask_px_1"].to_numpy()
        ax.plot(x, ask, color="#d62728", lw=0.6, alpha=0.8, drawstyle="steps-post", label="best ask")
        ax.plot(x, bid, color="#2ca02c", lw=0.6, alpha=0.8, drawstyle="steps-post", label="best bid")
        ax.plot(x, (bid + ask) / 2, color="#7f7f7f", lw=0.5, alpha=0.8, drawstyle="steps-post", label="mid")
        drew = True
    elif "mid" in equity.columns and equity.height:
        e = _thin(equity.select("ts", "mid").drop_nulls()) if "ts" in equity.columns else equity
        ax.plot(_x_axis(e), e["mid"].to_numpy(), color="#7f7f7f", lw=0.6, label="mid")
        drew = True
    if fills is not None and fills.height and "ts" in fills.columns:
        f = fills.with_columns(pl.col("side").cast(pl.Float64).alias("_s")) if fills["side"].dtype.is_numeric() \
            else fills.with_columns(pl.when(pl.col("side").cast(pl.String).str.to_lowercase().str.starts_with("b"))
                                    .then(1.0).otherwise(-1.0).alias("_s"))
        for sign, color, marker, label in ((1.0, "#1f77b4", "^", "buy fill"), (-1.0, "#ff7f0e", "v", "sell fill")):
            sub = f.filter(pl.col("_s") == sign)
            if sub.height:
                sub = _thin(sub, 3000)
                ax.scatter(_x_axis(sub), sub["price"].to_numpy(), s=14, marker=marker, color=color,
                           edgecolors="k", linewidths=0.3, zorder=3, label=f"{label} ({f.filter(pl.col('_s') == sign).height})")
        drew = True
    if not drew:
        ax.text(0.5, 0.5, "no book or fills", ha="center", va="center", transform=ax.transAxes)
    else:
        ax.legend(loc="best", fontsize=8)
    ax.set_title("Fills vs book")
    ax.set_ylabel("price")
    ax.grid(alpha=0.3)


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def _table_page(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> Figure:
    fig = Figure(figsize=(8.27, 11.69))
    ax = fig.add_subplot()
    ax.axis("off")
    ax.set_title(title, loc="left", fontsize=14)
    if rows:
        tbl = ax.table(cellText=[list(r) for r in rows], colLabels=list(header), loc="upper left",
                       cellLoc="left")
        tbl.auto_set_font_size(False)
        tbl.set_fontsize(8 if len(header) > 4 else 10)
        tbl.scale(1.0, 1.3)
    return fig


# ------------------------------------------------------------------------------------------------
# report
# ------------------------------------------------------------------------------------------------

FIGURES = (
    ("equity", "Equity curve"),
    ("drawdown", "Drawdown"),
    ("trades", "Trade distribution"),
    ("fills_vs_book", "Fills vs book"),
)


def _regime_table(regimes: pl.DataFrame | None) -> dict[str, Any] | None:
    if regimes is None or regimes.height == 0:
        return None
    pct = {"share", "total_return", "mean_return", "annualized_volatility", "hit_rate", "max_drawdown"}
    rows = []
    for row in regimes.iter_rows(named=True):
        rows.append([
            format_value(v, "pct" if k in pct else ("ratio" if isinstance(v, float) else "str"))
            for k, v in row.items()
        ])
    return {"columns": regimes.columns, "rows": rows,
            "note": "Regimes: terciles of the trailing rolling volatility (ex-post labels)."}


def write_report(
    out_dir: str | Path,
    *,
    equity: pl.DataFrame | np.ndarray,
    metrics: Mapping[str, Any],
    fills: pl.DataFrame | None = None,
    book: pl.DataFrame | None = None,
    trades: pl.DataFrame | None = None,
    regimes: pl.DataFrame | None = None,
    params: Mapping[str, Any] | None = None,
    title: str = "Backtest report",
    subtitle: str = "",
    save_pngs: bool = False,
) -> ReportArtifacts:
    """Write ``report.html`` and ``report.pdf`` into ``out_dir`` (created) and return the artifacts.

    ``equity``: frame with ``equity`` (and ``ts``, ``mid``) or an array of equity values. ``trades``
    (with ``pnl``) defaults to the round trips of ``fills``. ``regimes``: the output of
    :func:`flowsense.backtest.walkforward.regime_metrics`. ``save_pngs`` also writes each figure as PNG.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    eq = equity if isinstance(equity, pl.DataFrame) else pl.DataFrame({"equity": np.asarray(equity, float)})
    if "ts" in eq.columns:
        eq = eq.sort("ts", maintain_order=True)
    if trades is None and fills is not None:
        mark = None
        if "mid" in eq.columns:
            mids = eq["mid"].drop_nulls()
            mark = float(mids[-1]) if mids.len() else None
        trades = trades_from_fills(fills, mark)
    figs = {
        "equity": _equity_fig(eq),
        "drawdown": _drawdown_fig(eq),
        "trades": _trades_fig(trades),
        "fills_vs_book": _book_fig(book, fills, eq),
    }
    pngs = {name: _png(fig) for name, fig in figs.items()}
    png_paths: dict[str, Path] = {}
    if save_pngs:
        for name, data in pngs.items():
            p = out / f"{name}.png"
            p.write_bytes(data)
            png_paths[name] = p
    summary = summary_rows(metrics)
    regime_tbl = _regime_table(regimes)
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        title=title, subtitle=subtitle, generated=generated, summary=summary,
        params={k: format_value(v) for k, v in (params or {}).items()},
        figures=FIGURES, images={k: base64.b64encode(v).decode("ascii") for k, v in pngs.items()},
        regimes=regime_tbl, periods_per_year=format_value(metrics.get("periods_per_year")),
    )
    html_path = out / "report.html"
    html_path.write_text(html, encoding="utf-8")

    pdf_path = out / "report.pdf"
    with PdfPages(pdf_path) as pdf:
        page = _table_page(f"{title}\n{subtitle}".strip(), ["metric", "value"],
                           summary + [(str(k), format_value(v)) for k, v in (params or {}).items()])
        pdf.savefig(page)
        for name, _caption in FIGURES:
            pdf.savefig(figs[name])
        if regime_tbl is not None:
            pdf.savefig(_table_page("Per regime", regime_tbl["columns"], regime_tbl["rows"]))
        info = pdf.infodict()
        info["Title"] = title
        info["Creator"] = "FlowSense"
    return ReportArtifacts(directory=out, html=html_path, pdf=pdf_path, pngs=pngs, png_paths=png_paths,
                           summary=summary)
