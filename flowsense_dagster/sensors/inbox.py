"""``inbox_sensor``: new or changed raw files in ``FLOWSENSE_HOME/inbox`` -> runs for their partitions.

Each tick rescans the inbox (recursively; hidden and temporary files are ignored) through the source index,
then for every file that is new or changed since the cursor:

* unknown or malformed files are logged once and skipped (they never fail the tick);
* a LOBSTER CSV half whose partner has not arrived yet is left out of the cursor, to be seen again;
* the partitions it holds are collected; new symbols and days are registered as dynamic partitions, and one run is
  requested per partition (``all_assets_job``: the raw assets, their checks and every symbol x day asset
  downstream), keyed by the source file's identity so that nothing is requested twice for the same file.

A partition that Dagster already materialized from the very same file content (path and sha256, e.g. by
``python -m flowsense_dagster.run``) is not requested again either.

The cursor is JSON ``{relative path: [mtime_ns, size]}`` of the files already handled.
"""

import json
from pathlib import Path

import dagster as dg
from dagster import (
    AddDynamicPartitionsRequest,
    AssetKey,
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)

from flowsense.data.inbox import SourceEntry
from flowsense.data.ingest import sha256
from flowsense.data.lake import Partition
from flowsense_dagster.jobs import all_assets_job
from flowsense_dagster.partitions import partition_requests, to_partition_key
from flowsense_dagster.resources import LakeResource

SOURCE_TAG = "flowsense/source"


def _load_cursor(raw: str | None) -> dict[str, list[int]]:
    if not raw:
        return {}
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): list(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _already_materialized(context: SensorEvaluationContext, part: Partition, source: Path) -> bool:
    """Whether raw_events of ``part`` was last materialized from exactly this file content."""
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey("raw_events"), asset_partitions=[to_partition_key(part)]),
        limit=1,
    ).records
    if not records:
        return False
    mat = records[0].asset_materialization
    if mat is None:
        return False
    meta = mat.metadata
    src = meta.get("source")
    sha = meta.get("source_sha256")
    if src is None or sha is None or str(getattr(src, "value", src)) != str(source):
        return False
    try:
        return str(getattr(sha, "value", sha)) == sha256(source)
    except OSError:
        return False


def evaluate_inbox(
    context: SensorEvaluationContext, lake: LakeResource
) -> tuple[list[RunRequest], list[AddDynamicPartitionsRequest], dict[str, list[int]], list[str]]:
    """The sensor's logic: (run requests, new symbols/dates to register, new cursor, skipped files)."""
    inbox = lake.inbox_path
    previous = _load_cursor(context.cursor)
    index = lake.source_index(rescan=True)
    cursor: dict[str, list[int]] = {}
    skipped: list[str] = []
    changed: dict[str, SourceEntry] = {}
    described = set(index.changed)  # described again by this scan (a new FLOWSENSE_TICK_TZ re-describes all)
    for rel, entry in sorted(index.entries.items()):
        if not entry.is_ready(inbox):
            context.log.debug(f"{rel}: waiting for its partner file {entry.partner}")
            continue
        cursor[rel] = entry.stat
        if previous.get(rel) == entry.stat and rel not in described:
            continue
        if entry.error is not None:
            context.log.warning(f"skipping {rel}: {entry.error}")
            skipped.append(f"{rel}: {entry.error}")
            continue
        changed[rel] = entry

    wanted: dict[str, Partition] = {}
    for entry in changed.values():
        for part in entry.lake_partitions:
            wanted[part.key] = part

    requests: list[RunRequest] = []
    for key in sorted(wanted):
        part = wanted[key]
        source = index.source_for(part)
        if source is None:  # pragma: no cover - the changed file itself holds it
            continue
        path = index.path_of(source)
        if _already_materialized(context, part, path):
            context.log.info(f"{key}: already materialized from {source.path}; nothing to do")
            continue
        requests.append(
            RunRequest(
                run_key=f"{key}@{source.path}:{source.mtime_ns}:{source.size}",
                partition_key=to_partition_key(part),
                tags={SOURCE_TAG: source.path},
            )
        )
    return requests, partition_requests(context.instance, wanted.values()), cursor, skipped


@sensor(
    name="inbox_sensor",
    job=all_assets_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
    description="Watches FLOWSENSE_HOME/inbox and requests a run per new symbol x day partition.",
)
def inbox_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
    requests, registrations, cursor, skipped = evaluate_inbox(context, lake)
    new_cursor = json.dumps(cursor, sort_keys=True, separators=(",", ":"))
    if not requests and not registrations:
        reason = f"no new raw files in {lake.inbox_path}"
        if skipped:
            reason += f" ({len(skipped)} skipped: " + "; ".join(skipped[:3]) + ")"
        return SensorResult(skip_reason=reason, cursor=new_cursor)
    added = {r.partitions_def_name: list(r.partition_keys) for r in registrations}
    context.log.info(f"requesting {len(requests)} partition run(s); new partitions: {added or 'none'}")
    return SensorResult(run_requests=requests, dynamic_partitions_requests=registrations, cursor=new_cursor)


defs = dg.Definitions(sensors=[inbox_sensor])
