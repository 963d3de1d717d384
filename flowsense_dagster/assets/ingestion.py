"""Raw data: ``raw_events``, ``raw_book``, ``raw_trades`` per symbol x day, plus their validation checks.

The three tables of a partition come from one read of one raw file and are written to the lake together,
atomically (:func:`flowsense.data.ingest.ingest_file`), so they are one ``@multi_asset``. The partition's
raw file is found through the inbox source index (:mod:`flowsense.data.inbox`).

The checks read the partition's validation sidecar (``lake/_validation/...``) written by the ingest and
turn each count into one check, with the severity of :data:`flowsense.data.validate.SEVERITY`: ``error``
checks are blocking (downstream assets of that partition do not run), ``warn`` checks warn, ``info``
checks always pass and carry the count. They run in the same run as the materialization (any job or UI
launch that materializes the raw assets includes them) and can also be re-run on their own.
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
    AssetKey,
    AssetSpec,
    DataVersion,
    Failure,
    MaterializeResult,
    MetadataValue,
    PreviewWarning,
    multi_asset,
    multi_asset_check,
)

from flowsense.data.ingest import IngestResult, ingest_file
from flowsense.data.lake import Lake, Partition
from flowsense.data.validate import SEVERITY
from flowsense_dagster.metadata import table_md
from flowsense_dagster.partitions import symbol_date_partitions, to_lake_partition
from flowsense_dagster.resources import CatalogResource, LakeResource
from flowsense_dagster.resources.io_manager import OPTIONAL_KEY, TABLE_KEY

INGESTION_GROUP = "ingestion"
RAW_ASSETS = {"events": "raw_events", "book": "raw_book", "trades": "raw_trades"}  # lake table -> asset
RAW_KEYS = tuple(AssetKey(name) for name in RAW_ASSETS.values())
OPTIONAL_RAW = ("trades",)  # a source may have no trades (downstream inputs get None)
PREVIEW_ROWS = 5

# which raw asset each validation count is about
CHECK_TARGETS = {
    "non_monotonic_ts": "raw_events",
    "crossed_book": "raw_book",
    "locked_book": "raw_book",
    "non_positive_size": "raw_events",
    "non_positive_price": "raw_events",
    "nan_values": "raw_events",
    "event_book_mismatch": "raw_book",
    "duplicate_add_order_ids": "raw_events",
    "halts": "raw_events",
}
CHECK_DESCRIPTIONS = {
    "non_monotonic_ts": "Events whose timestamp is earlier than the previous event's.",
    "crossed_book": "Book rows with best ask < best bid.",
    "locked_book": "Book rows with best ask == best bid.",
    "non_positive_size": "Order events with size <= 0.",
    "non_positive_price": "Order events with price <= 0.",
    "nan_values": "NaN/null where a value is required (ts, order prices, sizes).",
    "event_book_mismatch": "Book rows != event rows, plus book transitions that contradict their event.",
    "duplicate_add_order_ids": "Adds whose order id was already added earlier that day.",
    "halts": "Trading-halt events (informational).",
}
assert set(CHECK_TARGETS) == set(SEVERITY), "every validation count needs a target asset"

_DESCRIPTIONS = {
    "raw_events": "Canonical order-book events (adds, cancels, executions, halts) of one symbol x day.",
    "raw_book": "Book snapshot after each event (LOBSTER-style, aligned with raw_events row by row).",
    "raw_trades": "Trades (visible and hidden executions) of one symbol x day.",
}


def _raw_specs() -> list[AssetSpec]:
    # written by the ingest (one atomic commit of the three tables); downstream assets read them through
    # the lake IO manager (input_manager_key), which finds the table in the metadata
    return [
        AssetSpec(
            name,
            group_name=INGESTION_GROUP,
            description=_DESCRIPTIONS[name],
            kinds={"parquet", "polars"},
            metadata={TABLE_KEY: table, **({OPTIONAL_KEY: True} if table in OPTIONAL_RAW else {})},
        )
        for table, name in RAW_ASSETS.items()
    ]


def _asset_metadata(
    table: str, result: IngestResult, lake: Lake, source: Path, sha: str, index_entry: dict[str, Any]
) -> dict[str, Any]:
    report = result.report
    path = result.paths.get(table)
    meta: dict[str, Any] = {
        "source": MetadataValue.path(str(source)),
        "source_sha256": sha,
        "format": result.format,
        "levels": report.levels,
        "lake_path": MetadataValue.path(str(path) if path else str(lake.path(table, result.partition))),
        "validation": MetadataValue.json(report.counts()),
        "validation_ok": report.ok,
        **index_entry,
    }
    if path is None:  # e.g. a trades-only source has no book
        meta["dagster/partition_row_count"] = 0
        meta["note"] = f"the source has no {table} table; the partition's {table} file was removed"
        return meta
    df = pl.read_parquet(path, n_rows=PREVIEW_ROWS)
    rows = {"events": report.events, "book": report.book_rows, "trades": report.trades}[table]
    meta["dagster/partition_row_count"] = rows
    meta["rows"] = rows
    meta["preview"] = table_md(df, rows=PREVIEW_ROWS, max_cols=12)
    return meta


@multi_asset(
    name="raw_ingest",
    specs=_raw_specs(),
    partitions_def=symbol_date_partitions,
    description="Ingest the partition's raw file from the inbox into the lake (events, book, trades).",
)
def raw_ingest(
    context: AssetExecutionContext, lake: LakeResource, catalog: CatalogResource
) -> Iterator[MaterializeResult]:
    part = to_lake_partition(context.partition_key)
    index = lake.source_index(rescan=True)
    entry = index.source_for(part)
    if entry is None:
        holders = ", ".join(f"{p.symbol} {p.date}" for p in index.partitions()[:20]) or "none"
        raise Failure(
            description=(
                f"No raw source file for partition {part.symbol} {part.date} in the inbox {index.root}. "
                f"Drop a LOBSTER zip/CSV pair, a .dbn[.zst] or a trades/quotes file holding it there "
                f"(the inbox holds: {holders})."
            ),
            metadata={"inbox": MetadataValue.path(str(index.root)), "partition": part.key},
        )
    source = index.path_of(entry)
    others = [e.path for e in index.sources_for(part)[1:]]
    if others:
        context.log.info(f"{part.key}: using {entry.path} (levels={entry.levels}); also held by {others}")
    the_lake = lake.lake()
    # only this partition's day: a trades/quotes or DBN file may hold several (each is its own run)
    results = ingest_file(source, the_lake, symbol=part.symbol, date=part.date if entry.format == "lobster" else None,
                          only_date=part.date, fmt=entry.format, tz=lake.settings().tick_tz)
    matching = [r for r in results if r.partition == part]
    if len(matching) != 1:
        raise Failure(description=f"{source} yielded {len(matching)} partitions {part.key} (expected one)")
    result = matching[0]
    report_sidecar = the_lake.read_report(part) or {}
    sha = str(report_sidecar.get("source_sha256", ""))
    # content hash of the partition's raw tables, the data version of all three raw assets: a re-ingest that
    # changes it makes every downstream asset of the partition stale in Dagster (and the lake drops them)
    version = result.version or the_lake.version(part)
    try:
        catalog.refresh()
    except Exception as exc:  # the data is in the lake; a busy catalog must not fail the ingest
        context.log.warning(f"catalog refresh failed (the lake is fine, rerun `flowsense catalog`): {exc}")
    problems = {**result.report.problems("error"), **result.report.problems("warn")}
    if problems:
        context.log.warning(f"{part.key}: validation found {problems}")
    extra: dict[str, Any] = {"inbox_entry": entry.path, "partition_version": version or ""}
    if result.previous_version and result.previous_version != version:
        extra["previous_version"] = result.previous_version
    if result.invalidated:
        extra["invalidated_derived_tables"] = MetadataValue.json(list(result.invalidated))
        context.log.info(f"{part.key}: re-ingested with new content; removed derived {list(result.invalidated)}")
    if others:
        extra["other_sources"] = MetadataValue.json(others)
    for table, name in RAW_ASSETS.items():
        yield MaterializeResult(
            asset_key=name,
            metadata=_asset_metadata(table, result, the_lake, source, sha, extra),
            data_version=DataVersion(version) if version else None,
        )


def _check_specs() -> list[AssetCheckSpec]:
    with warnings.catch_warnings():  # partitioned checks are a preview feature in dagster 1.13
        warnings.simplefilter("ignore", PreviewWarning)
        return [
            AssetCheckSpec(
                name,
                asset=CHECK_TARGETS[name],
                description=f"[{sev}] {CHECK_DESCRIPTIONS[name]}",
                blocking=sev == "error",
                partitions_def=symbol_date_partitions,
                metadata={"severity": sev},
            )
            for name, sev in SEVERITY.items()
        ]


def evaluate_report(report: dict[str, Any] | None, part: Partition) -> list[AssetCheckResult]:
    """One check result per validation count in a sidecar ``report`` (None: the partition is missing)."""
    results = []
    for name, sev in SEVERITY.items():
        severity = AssetCheckSeverity.ERROR if sev == "error" else AssetCheckSeverity.WARN
        key = AssetKey(CHECK_TARGETS[name])
        if report is None:
            results.append(
                AssetCheckResult(
                    asset_key=key,
                    check_name=name,
                    passed=False,
                    severity=severity,
                    description=f"no validation report for {part.key}: materialize the raw assets first",
                )
            )
            continue
        count = int(report.get(name, 0) or 0)
        passed = count == 0 or sev == "info"
        results.append(
            AssetCheckResult(
                asset_key=key,
                check_name=name,
                passed=passed,
                severity=severity,
                metadata={
                    "count": count,
                    "severity": sev,
                    "events": int(report.get("events", 0) or 0),
                    "book_rows": int(report.get("book_rows", 0) or 0),
                    "source": str(report.get("source", "")),
                },
                description=None if passed else f"{count} {name.replace('_', ' ')} ({sev})",
            )
        )
    return results


@multi_asset_check(
    name="raw_validation",
    specs=_check_specs(),
    description="Validation counts of the partition (from its sidecar report), one check each.",
)
def raw_validation(context: AssetCheckExecutionContext, lake: LakeResource) -> Iterator[AssetCheckResult]:
    part = to_lake_partition(context.op_execution_context.partition_key)
    yield from evaluate_report(lake.lake().read_report(part), part)


defs = dg.Definitions(assets=[raw_ingest], asset_checks=[raw_validation])
