"""Feature tables per symbol x day: ``features_tick``, ``features_1s``, ``features_1min`` and ``labels``.

One ``@multi_asset`` computes all four with one call of :func:`flowsense.features.compute_day` (they come
from one pass over the partition's raw book/events/trades, which it takes as parameters) and returns them as
frames; the lake IO manager stores them with the input version. It also exports the bar tables as the Feast
offline sources (:func:`flowsense.serving.export_partition`). It is downstream of the raw assets, so the
inbox sensor's ``all_assets_job`` runs it for every new raw partition.

Metadata: row counts, feature-column counts, the column schema with registry descriptions, a Markdown
preview and, on ``features_1s``, a day plot (mid/microprice and cumulative OFI) embedded as a base64 PNG.

Checks (``feature_validation``, non-blocking, severity ERROR: each is a correctness issue), evaluated by
:func:`flowsense.serving.quality.partition_gates` on the tables in the lake: ``features_finite`` (no
NaN/inf where the registry says a column is always defined, after warm-up; no inf anywhere),
``ts_monotonic`` (all four tables), ``rows_match_events`` (``features_tick`` vs raw events) and
``labels_disjoint`` (no label column in a feature table).
"""

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetKey,
    AssetOut,
    MetadataValue,
    Output,
    PreviewWarning,
    TableColumn,
    TableSchema,
    multi_asset,
    multi_asset_check,
)

from flowsense.config import Settings
from flowsense.data.lake import Partition
from flowsense.features import DEFAULT_CLOCKS, LABELS_TABLE, TICK_TABLE, bar_table, compute_day
from flowsense.features.plots import day_plot
from flowsense.features.registry import describe
from flowsense.serving import export_partition
from flowsense.serving.quality import Gate, feature_columns, partition_gates
from flowsense_dagster.metadata import png_value, table_md
from flowsense_dagster.partitions import symbol_date_partitions, to_lake_partition
from flowsense_dagster.resources import LAKE_IO_MANAGER, LakeResource
from flowsense_dagster.resources.io_manager import TABLE_KEY

FEATURES_GROUP = "features"
CLOCKS: tuple[str, ...] = tuple(DEFAULT_CLOCKS)  # one output asset per clock (and a Feast view each)
BAR_TABLES: tuple[str, ...] = tuple(bar_table(c) for c in CLOCKS)
FEATURE_ASSETS: tuple[str, ...] = (TICK_TABLE, *BAR_TABLES, LABELS_TABLE)  # asset name == lake table
PLOT_TABLE = "features_1s"
PREVIEW_ROWS = 5
RAW_DEPS = ("raw_events", "raw_book", "raw_trades")

_DESCRIPTIONS = {
    TICK_TABLE: "Event-level features (one row per book event): OFI, depth imbalance, trade flow, rates.",
    "features_1s": "1-second bar features (keys symbol, date, bar_start, ts = bar end).",
    "features_1min": "1-minute bar features (keys symbol, date, bar_start, ts = bar end).",
    LABELS_TABLE: "Forward returns/directions per event (look into the future: never a feature).",
}

# check name -> assets it is evaluated on
_CHECKS = {
    "features_finite": (TICK_TABLE, *BAR_TABLES),
    "ts_monotonic": FEATURE_ASSETS,
    "rows_match_events": (TICK_TABLE,),
    "labels_disjoint": (LABELS_TABLE,),
}
_CHECK_DESCRIPTIONS = {
    "features_finite": "No NaN/inf where the feature registry says the column is always defined (after "
    "warm-up, i.e. once the book is two-sided); no inf in any feature column.",
    "ts_monotonic": "ts never decreases (strictly increases for bar tables); no null ts.",
    "rows_match_events": "features_tick has exactly one row per raw event.",
    "labels_disjoint": "No label column (keys aside) appears in a feature table.",
}


def _outs() -> dict[str, AssetOut]:
    return {
        name: AssetOut(
            group_name=FEATURES_GROUP,
            description=_DESCRIPTIONS[name],
            kinds={"parquet", "polars"},
            metadata={TABLE_KEY: name},
            io_manager_key=LAKE_IO_MANAGER,
        )
        for name in FEATURE_ASSETS
    }


def plot_path(settings: Settings, part: Partition) -> Path:
    """Where the day plot of ``part`` goes: ``FLOWSENSE_HOME/reports/plots/features/<SYMBOL>/<date>.png``."""
    return settings.reports / "plots" / "features" / part.symbol / f"{part.date.isoformat()}.png"


def _column_schema(df: pl.DataFrame, table: str) -> TableSchema:
    cols = []
    for name, dtype in df.schema.items():
        try:
            desc: str | None = describe(name, table).description if table != LABELS_TABLE else None
        except KeyError:
            desc = None
        cols.append(TableColumn(name=name, type=str(dtype), description=desc))
    return TableSchema(columns=cols)


def _metadata(df: pl.DataFrame, table: str) -> dict[str, Any]:
    n_feat = 0 if table == LABELS_TABLE else len(feature_columns(df))
    meta: dict[str, Any] = {  # the lake IO manager adds lake_path and dagster/partition_row_count
        "rows": df.height,
        "columns": df.width,
        "preview": table_md(df, rows=PREVIEW_ROWS, max_cols=10),
        "dagster/column_schema": _column_schema(df, table),
    }
    if table == LABELS_TABLE:
        meta["n_label_columns"] = sum(1 for c in df.columns if c.startswith("fwd_"))
    else:
        meta["n_feature_columns"] = n_feat
    if df.height:
        meta["ts_first"] = str(df["ts"][0])
        meta["ts_last"] = str(df["ts"][-1])
    return meta


def _plot_metadata(path: Path, title: str) -> dict[str, Any]:
    return {
        "plot": png_value(path.read_bytes(), title),
        "plot_path": MetadataValue.path(str(path)),
    }


@multi_asset(
    name="feature_tables",
    outs=_outs(),
    ins={name: AssetIn(name, input_manager_key=LAKE_IO_MANAGER) for name in RAW_DEPS},
    internal_asset_deps={
        name: {AssetKey("raw_book")} if name == LABELS_TABLE else {AssetKey(d) for d in RAW_DEPS}
        for name in FEATURE_ASSETS
    },
    partitions_def=symbol_date_partitions,
    description="Compute the partition's feature tables and labels (one pass) and export the Feast sources.",
)
def feature_tables(
    context: AssetExecutionContext,
    lake: LakeResource,
    raw_events: pl.DataFrame,
    raw_book: pl.DataFrame,
    raw_trades: pl.DataFrame | None,
) -> Iterator[Output[pl.DataFrame]]:
    part = to_lake_partition(context.partition_key)
    settings = lake.settings()
    tables = compute_day(raw_book, raw_events, raw_trades, clocks=CLOCKS)
    exported = export_partition(settings, part, tables, lake=lake.lake())
    plot = day_plot(tables[PLOT_TABLE], plot_path(settings, part))
    context.log.info(f"{part.key}: " + ", ".join(f"{t} {df.height} rows" for t, df in tables.items()))
    for name in FEATURE_ASSETS:
        df = tables[name]
        meta = _metadata(df, name)
        if name in exported:
            meta["feast_source"] = MetadataValue.path(str(exported[name]))
        if name == PLOT_TABLE:
            meta.update(_plot_metadata(plot, f"{part.symbol} {part.date} {name}"))
        yield Output(df, output_name=name, metadata=meta)


def _check_specs() -> list[AssetCheckSpec]:
    with warnings.catch_warnings():  # partitioned checks are a preview feature in dagster 1.13
        warnings.simplefilter("ignore", PreviewWarning)
        return [
            AssetCheckSpec(
                name,
                asset=asset,
                description=f"[error] {_CHECK_DESCRIPTIONS[name]}",
                blocking=False,
                partitions_def=symbol_date_partitions,
                metadata={"severity": "error"},
            )
            for name, assets in _CHECKS.items()
            for asset in assets
        ]


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict | list):
        return MetadataValue.json(value)
    return value


def gate_result(gate: Gate) -> AssetCheckResult:
    """A :class:`~flowsense.serving.quality.Gate` as a Dagster check result."""
    return AssetCheckResult(
        asset_key=AssetKey(gate.table),
        check_name=gate.name,
        passed=gate.passed,
        severity=AssetCheckSeverity.ERROR if gate.severity == "error" else AssetCheckSeverity.WARN,
        description=gate.description,
        metadata={k: _json_safe(v) for k, v in gate.metadata.items()},
    )


@multi_asset_check(
    name="feature_validation",
    specs=_check_specs(),
    description="Correctness checks of the partition's feature tables and labels (read from the lake).",
)
def feature_validation(context: AssetCheckExecutionContext, lake: LakeResource) -> Iterator[AssetCheckResult]:
    part = to_lake_partition(context.op_execution_context.partition_key)
    for gate in partition_gates(lake.lake(), part, BAR_TABLES):
        yield gate_result(gate)


defs = dg.Definitions(assets=[feature_tables], asset_checks=[feature_validation])
