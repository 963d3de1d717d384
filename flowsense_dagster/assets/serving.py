"""``feast_online_store``: register the Feast repository and load the latest bar features online.

Partitioned like the features (symbol x day), so the inbox sensor's ``all_assets_job`` refreshes the online
store in the same run as the new partition's features. A run:

1. re-exports any lake bar partition whose Feast source is missing or stale (:func:`sync_sources`);
2. applies the definitions (idempotent; entity ``symbol``, views ``features_1s``/``features_1min``);
3. materializes the window from the partition's day (00:00 UTC) to the latest exported bar, so the online
   store always ends at the newest data even when an old day is (re)processed (Feast's online writes
   overwrite, so a window ending at an old close would roll newer values back);
4. reads the partition's symbol back online as an example.

The store comes from the ``feast`` resource, whose online store differs per profile: SQLite under
``FLOWSENSE_HOME/feast`` (local) or Redis ``FLOWSENSE_REDIS_URL`` (production); see
:mod:`flowsense_dagster.resources`.
"""

import datetime as dt
import math
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from flowsense.serving import (
    VIEWS,
    apply,
    latest_ts,
    materialize,
    online_features,
    sync_sources,
)
from flowsense_dagster.partitions import symbol_date_partitions, to_lake_partition
from flowsense_dagster.resources import FeastResource

SERVING_GROUP = "serving"
EXAMPLE_FEATURES = ("features_1s:mid_close", "features_1s:ofi_int", "features_1s:vpin", "features_1min:rv_20")


def _json_row(row: dict[str, Any]) -> dict[str, Any]:
    """NaN -> None (JSON has no NaN)."""
    return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}


@asset(
    name="feast_online_store",
    partitions_def=symbol_date_partitions,
    deps=["features_1s", "features_1min"],
    group_name=SERVING_GROUP,
    kinds={"feast"},
    description="Apply the Feast repository and materialize the latest bar features into the online store.",
)
def feast_online_store(context: AssetExecutionContext, feast: FeastResource) -> MaterializeResult:
    part = to_lake_partition(context.partition_key)
    settings = feast.settings()
    synced = sync_sources(settings, feast.lake.lake())
    store = feast.store()
    apply(settings, store=store)
    start = dt.datetime.combine(part.date, dt.time(), tzinfo=dt.UTC)
    end = latest_ts(settings) or start + dt.timedelta(days=1)
    end = max(end, start)
    summary = materialize(settings, start, end, store=store)
    example = online_features(settings, [part.symbol], list(EXAMPLE_FEATURES), store=store)
    online_type = store.config.online_store.type
    context.log.info(f"{part.key}: {summary.rows} source rows in {start} .. {end} -> {online_type} online store")
    meta: dict[str, Any] = {
        "project": store.project,
        "online_store": online_type,
        "views": MetadataValue.json({v.name: list(v.features) for v in VIEWS}),
        "feature_count": sum(len(v.features) for v in VIEWS),
        "rows_materialized": sum(summary.entities.values()),  # one online row per symbol and view
        "rows_materialized_by_view": MetadataValue.json(summary.entities),
        "source_rows_in_window": MetadataValue.json(summary.rows),
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "sources_reexported": len(synced),
        "example_online_lookup": MetadataValue.json(_json_row(example.to_dicts()[0] if example.height else {})),
    }
    if summary.skipped:
        meta["views_without_sources"] = MetadataValue.json(summary.skipped)
    return MaterializeResult(metadata=meta)


defs = dg.Definitions(assets=[feast_online_store])
