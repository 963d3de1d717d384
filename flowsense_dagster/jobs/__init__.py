"""Jobs and schedules.

* ``ingest_job``: the raw assets (group ``ingestion``) and their checks, per symbol x day.
* ``all_assets_job``: every asset partitioned by symbol x day (``AssetSelection.all()`` minus assets with
  another or no partitions definition, which cannot share a partitioned run) and their checks. The inbox
  sensor targets it, so assets added later (features, labels, per-day backtests) run for new data
  automatically. It is built from the assets package, so new modules there are included without edits.

Schedules go in :data:`schedules` (none yet); :mod:`flowsense_dagster.definitions` collects them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from dagster import (
    AssetChecksDefinition,
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    ScheduleDefinition,
    define_asset_job,
    load_assets_from_package_module,
)

from flowsense_dagster import assets as assets_package
from flowsense_dagster.assets.ingestion import INGESTION_GROUP
from flowsense_dagster.partitions import symbol_date_partitions

if TYPE_CHECKING:  # not exported by dagster itself; only for annotations
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

INGEST_JOB = "ingest_job"
ALL_ASSETS_JOB = "all_assets_job"

ingest_job = define_asset_job(
    INGEST_JOB,
    selection=AssetSelection.groups(INGESTION_GROUP),
    description="Ingest one symbol x day from the inbox into the lake and validate it.",
)


def not_symbol_date(assets: Iterable[object]) -> list[AssetKey]:
    """Keys of the executable assets whose partitions definition is not ``symbol_date_partitions``."""
    keys: list[AssetKey] = []
    for a in assets:
        if isinstance(a, AssetChecksDefinition) or not isinstance(a, AssetsDefinition):
            continue
        if a.is_executable and a.partitions_def != symbol_date_partitions:
            keys.extend(a.keys)
    return keys


def build_all_assets_job(assets: Sequence[object]) -> UnresolvedAssetJobDefinition:
    """``all_assets_job`` for ``assets``: everything partitioned by symbol x day."""
    others = not_symbol_date(assets)
    selection = AssetSelection.all() - AssetSelection.assets(*others) if others else AssetSelection.all()
    return define_asset_job(
        ALL_ASSETS_JOB,
        selection=selection,
        description="Every symbol x day asset (raw data and everything derived from it) for one partition.",
    )


all_assets_job = build_all_assets_job(load_assets_from_package_module(assets_package))

jobs: list[UnresolvedAssetJobDefinition] = [ingest_job, all_assets_job]
schedules: list[ScheduleDefinition] = []
