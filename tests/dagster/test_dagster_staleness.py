"""Derived assets go stale in Dagster when their source is re-ingested with other content (issue 7).

The raw assets carry the lake's partition version (a content hash of the ingested tables) as their data
version; features record it as their input version. Ingesting the same file again keeps the version (the
features stay fresh); a deeper book of the same day (GOOG level 5 after level 1) changes it: the features are
STALE in Dagster, and the lake has removed them.
"""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from pathlib import Path

import pytest

dg = pytest.importorskip("dagster")

from dagster._core.definitions.data_version import StaleStatus  # noqa: E402
from dagster._utils.test.data_versions import get_stale_status_resolver  # noqa: E402  (Dagster's own test helper)

from flowsense.data.lake import Lake, Partition  # noqa: E402
from flowsense_dagster.assets.features import feature_tables  # noqa: E402
from flowsense_dagster.assets.ingestion import raw_ingest  # noqa: E402
from flowsense_dagster.partitions import register_partitions, to_partition_key  # noqa: E402
from flowsense_dagster.resources import resources_for_profile  # noqa: E402
from tests.conftest import lobster_zip  # noqa: E402

pytestmark = pytest.mark.real_data


def _status(instance: dg.DagsterInstance, asset: str, key: dg.MultiPartitionKey) -> StaleStatus:
    """What the UI shows: Dagster's stale status of ``asset`` in partition ``key``."""
    return get_stale_status_resolver(instance, [raw_ingest, feature_tables]).get_status(dg.AssetKey(asset), key)


def _version(instance: dg.DagsterInstance, asset: str, key: dg.MultiPartitionKey) -> str | None:
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[str(key)]), limit=1
    ).records[0]
    tags = record.asset_materialization.tags or {}
    return tags.get("dagster/data_version")


def test_reingest_with_new_content_makes_features_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    level1, level5 = lobster_zip("GOOG", 1), lobster_zip("GOOG", 5)
    home = tmp_path / "home"
    inbox = home / "inbox"
    inbox.mkdir(parents=True)
    shutil.copy(level1, inbox / level1.name)
    monkeypatch.setenv("FLOWSENSE_HOME", str(home))
    part = Partition("GOOG", dt.date(2012, 6, 21))
    key = to_partition_key(part)
    instance = dg.DagsterInstance.ephemeral()
    register_partitions(instance, [part])
    resources = resources_for_profile("local", home=home)
    lake = Lake(home / "lake")

    def run(selection: list[dg.AssetsDefinition]) -> dg.ExecuteInProcessResult:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = dg.materialize([raw_ingest, feature_tables], selection=selection, instance=instance,
                                    resources=resources, partition_key=key)
        assert result.success
        return result

    run([raw_ingest, feature_tables])
    v1 = _version(instance, "raw_events", key)
    assert v1 == lake.version(part) and len(v1) == 16
    assert lake.table_meta("features_1s", part)["inputs_version"] == v1
    assert _status(instance, "features_1s", key) == StaleStatus.FRESH

    run([raw_ingest])  # the same file again: same content version, nothing goes stale
    assert _version(instance, "raw_events", key) == v1
    assert _status(instance, "features_1s", key) == StaleStatus.FRESH
    assert lake.exists("features_1s", part)

    shutil.copy(level5, inbox / level5.name)  # a deeper book of the same day wins: new content
    result = run([raw_ingest])
    v5 = _version(instance, "raw_events", key)
    assert v5 != v1 and v5 == lake.version(part)
    (mat,) = [m for m in result.asset_materializations_for_node("raw_ingest") if m.asset_key.path == ["raw_events"]]
    assert mat.metadata["previous_version"].value == v1
    assert "features_1s" in mat.metadata["invalidated_derived_tables"].value
    for asset in ("features_tick", "features_1s", "features_1min", "labels"):
        assert _status(instance, asset, key) == StaleStatus.STALE, asset
        assert not lake.exists(asset, part), asset  # the lake removed the derived tables of the old version

    run([feature_tables])  # recomputed from the new version: fresh again
    assert _status(instance, "features_1s", key) == StaleStatus.FRESH
    assert lake.table_meta("features_1s", part)["inputs_version"] == v5
