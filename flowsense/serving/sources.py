"""Offline sources of the Feast views: curated per-partition exports of the bar tables.

Choice (documented in :mod:`flowsense.serving`): Feast does not read the hive-partitioned lake directly.

* The lake stores ``ts``/``bar_start`` as ``timestamp[ns, UTC]``; Feast's DuckDB offline store goes through
  ibis, which does not know DuckDB's ``TIMESTAMP_NS WITH TIME ZONE`` (the column comes back as
  ``unknown``), so point-in-time joins on it fail.
* Bar tables of books with different depths have different column sets (``ofi_l2..``, ``depth_imb_5``...),
  which one ``FileSource`` glob cannot mix.

So every symbol x day of a served table is exported to ``FLOWSENSE_HOME/feast/sources/<view>/
<SYMBOL>__<YYYY-MM-DD>.parquet`` with the keys (``symbol, date, bar_start, ts``) and exactly the view's
curated features, timestamps in microseconds (bar boundaries are whole seconds, so this is lossless).
Each file is written atomically (temporary file + ``os.replace``; the temporary name does not match the
``*.parquet`` glob). One file per partition keeps re-exports O(partition), never O(lake); the source of a
view is the glob ``.../<view>/*.parquet``. :func:`sync_sources` re-exports partitions whose lake file is
newer than their export, so the lake stays the single source of truth.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path

import polars as pl

from flowsense.config import Settings
from flowsense.data.lake import Lake, Partition, atomic_write_bytes
from flowsense.serving.feast_repo import SOURCE_KEYS, VIEWS, ViewSpec, sources_dir, view_spec


def source_file(settings: Settings, view: str, part: Partition) -> Path:
    """The exported source file of ``view`` for partition ``part``."""
    return sources_dir(settings) / view / f"{part.symbol}__{part.date.isoformat()}.parquet"


def source_files(settings: Settings, view: str) -> list[Path]:
    """Every exported file of ``view`` (sorted)."""
    folder = sources_dir(settings) / view
    return sorted(folder.glob("*.parquet")) if folder.exists() else []


def curate(df: pl.DataFrame, spec: ViewSpec) -> pl.DataFrame:
    """The view's columns of a bar table, timestamps cast to microseconds, sorted by ``ts``."""
    missing = [c for c in (*SOURCE_KEYS, *spec.features) if c not in df.columns]
    if missing:
        raise ValueError(f"table {spec.table} lacks columns {missing} needed by feature view {spec.name}")
    return (
        df.select(*SOURCE_KEYS, *spec.features)
        .with_columns(
            pl.col("bar_start").dt.cast_time_unit("us"),
            pl.col("ts").dt.cast_time_unit("us"),
            *(pl.col(f).cast(pl.Float64) for f in spec.features),
        )
        .sort("ts")
    )


def export_partition(
    settings: Settings,
    part: Partition,
    tables: Mapping[str, pl.DataFrame] | None = None,
    *,
    lake: Lake | None = None,
    views: tuple[str, ...] | None = None,
) -> dict[str, Path]:
    """Export ``part``'s bar tables (from ``tables`` when given, else read from ``lake``) for every view.

    A view whose table is neither in ``tables`` nor in the lake is skipped. Returns view -> written file.
    """
    the_lake = lake or Lake(settings.lake)
    out: dict[str, Path] = {}
    for spec in VIEWS if views is None else tuple(view_spec(v) for v in views):
        if tables is not None and spec.table in tables:
            df = tables[spec.table]
        elif the_lake.exists(spec.table, part):
            df = the_lake.read(spec.table, part, columns=[*SOURCE_KEYS, *spec.features])
        else:
            continue
        buf = io.BytesIO()
        curate(df, spec).write_parquet(buf, compression="zstd", statistics=True)
        path = source_file(settings, spec.name, part)
        atomic_write_bytes(path, buf.getvalue())
        out[spec.name] = path
    return out


def remove_partition(settings: Settings, part: Partition) -> None:
    """Drop ``part``'s exports (e.g. when its lake partition was deleted)."""
    for spec in VIEWS:
        with suppress(FileNotFoundError):
            source_file(settings, spec.name, part).unlink()


def sync_sources(settings: Settings, lake: Lake | None = None) -> list[tuple[str, Partition]]:
    """Export every lake partition whose export is missing or older than the lake file; return them."""
    the_lake = lake or Lake(settings.lake)
    done: list[tuple[str, Partition]] = []
    for spec in VIEWS:
        for part in the_lake.partitions(spec.table):
            src = source_file(settings, spec.name, part)
            lake_file = the_lake.path(spec.table, part)
            if src.exists() and src.stat().st_mtime_ns >= lake_file.stat().st_mtime_ns:
                continue
            export_partition(settings, part, lake=the_lake, views=(spec.name,))
            done.append((spec.name, part))
    return done


__all__ = ["curate", "export_partition", "remove_partition", "source_file", "source_files", "sync_sources"]
