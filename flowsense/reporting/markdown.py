"""Markdown for tables and embedded pictures (what the Dagster UI renders in asset metadata)."""

from __future__ import annotations

import base64

import polars as pl


def md_table(df: pl.DataFrame, *, rows: int | None = None, max_cols: int | None = None, digits: int = 6) -> str:
    """A Markdown table of ``df`` (the first ``rows`` rows and ``max_cols`` columns); floats to ``digits``
    significant digits, nulls empty."""
    head = df if rows is None else df.head(rows)
    cols = head.columns if max_cols is None else head.columns[:max_cols]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for row in head.select(cols).iter_rows():
        out.append("| " + " | ".join("" if v is None else f"{v:.{digits}g}" if isinstance(v, float) else str(v)
                                     for v in row) + " |")
    if len(cols) < len(head.columns):
        out.append(f"\n_{len(head.columns) - len(cols)} more columns not shown_")
    return "\n".join(out)


def png_md(png: bytes, alt: str) -> str:
    """A PNG embedded in Markdown (a data URI; the Dagster UI renders it inline)."""
    return f"![{alt}]({png_data_uri(png)})"


def png_data_uri(png: bytes) -> str:
    return f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}"
