"""Jobs: ``ingest_job`` and ``all_assets_job`` (one object each; the inbox sensor is given the job itself).

* ``ingest_job``: the raw assets (group ``ingestion``) and their checks, per symbol x day.
* ``all_assets_job``: the raw assets and everything downstream of them, with their checks, for one symbol x
  day partition: features, labels, Feast online store, per-day backtests, and the unpartitioned aggregate
  ``backtest_report`` (refreshed in the same run as its inputs). An asset added downstream of the raw data
  joins it without an edit here; it must be partitioned by ``symbol_date_partitions`` or unpartitioned.
"""

from __future__ import annotations

import dagster as dg

from flowsense_dagster.assets.ingestion import INGESTION_GROUP, RAW_KEYS

INGEST_JOB = "ingest_job"
ALL_ASSETS_JOB = "all_assets_job"

ingest_job = dg.define_asset_job(
    INGEST_JOB,
    selection=dg.AssetSelection.groups(INGESTION_GROUP),
    description="Ingest one symbol x day from the inbox into the lake and validate it.",
)

all_assets_job = dg.define_asset_job(
    ALL_ASSETS_JOB,
    # the model assets (group "models") retrain on a window of days: the nightly_retrain schedule runs them,
    # not every new partition
    selection=dg.AssetSelection.assets(*RAW_KEYS).downstream() - dg.AssetSelection.groups("models"),
    description="The raw data of one symbol x day and everything derived from it (and the aggregate report).",
)

defs = dg.Definitions(jobs=[ingest_job, all_assets_job])
