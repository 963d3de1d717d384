"""Day plot for asset metadata: mid, microprice and cumulative OFI (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def day_plot(features: pl.DataFrame, path: str | Path, *, max_points: int = 20_000) -> Path:
    """PNG of mid and microprice (top) and cumulative L1/integrated OFI (bottom) over the day.

    Accepts ``features_tick`` (uses ``mid``, ``microprice``, ``ofi_l1``/``ofi_int``) or a bar table
    (``mid_close``, ``microprice_close``, bar OFI sums). Long tables are thinned to ``max_points``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    df = features
    mid = "mid" if "mid" in df.columns else "mid_close"
    micro = "microprice" if "microprice" in df.columns else "microprice_close"
    df = df.with_columns(
        pl.col("ofi_l1").fill_nan(0).cum_sum().alias("_cum_l1"),
        (pl.col("ofi_int").fill_nan(0).cum_sum() if "ofi_int" in df.columns else pl.lit(None)).alias("_cum_int"),
    )
    if df.height > max_points:
        df = df.gather_every(df.height // max_points + 1)
    t = df["ts"].dt.replace_time_zone(None).to_numpy()
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    ax1.plot(t, df[mid].to_numpy(), lw=0.7, label="mid")
    ax1.plot(t, df[micro].to_numpy(), lw=0.5, alpha=0.7, label="microprice")
    ax1.set_ylabel("price")
    ax1.legend(loc="upper left")
    sym = df["symbol"][0] if "symbol" in df.columns and df.height else ""
    day = df["date"][0] if "date" in df.columns and df.height else ""
    ax1.set_title(f"{sym} {day}")
    ax2.plot(t, df["_cum_l1"].to_numpy(), lw=0.7, label="cum OFI L1")
    if df["_cum_int"].null_count() < df.height:
        ax2.plot(t, df["_cum_int"].to_numpy(), lw=0.7, label="cum OFI integrated")
    ax2.set_ylabel("shares")
    ax2.set_xlabel("time (UTC)")
    ax2.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
