"""Rendering for people: Markdown tables, figures as PNG bytes, and the aggregate backtest report (HTML).

Used by the Dagster assets for their metadata (``flowsense_dagster`` only wraps the strings in
``MetadataValue``) and usable from any caller; no orchestration here.

* :mod:`~flowsense.reporting.markdown`: :func:`md_table`, :func:`png_md`;
* :mod:`~flowsense.reporting.figures`: :func:`fig_png` (a matplotlib figure -> PNG bytes) and the
  walk-forward plots;
* :mod:`~flowsense.reporting.summary`: the report over every backtested partition.
"""

from __future__ import annotations

from flowsense.reporting.markdown import md_table, png_md

__all__ = ["md_table", "png_md"]
