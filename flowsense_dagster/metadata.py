"""Thin wrappers: the domain's renderings (:mod:`flowsense.reporting`) as Dagster metadata values."""

from __future__ import annotations

import polars as pl
from dagster import MetadataValue

from flowsense.reporting import md_table, png_md


def table_md(df: pl.DataFrame, *, rows: int | None = None, max_cols: int | None = None) -> MetadataValue:
    """``df`` as a Markdown table value."""
    return MetadataValue.md(md_table(df, rows=rows, max_cols=max_cols))


def png_value(png: bytes, alt: str) -> MetadataValue:
    """A PNG embedded in a Markdown value (rendered inline by the UI)."""
    return MetadataValue.md(png_md(png, alt))
