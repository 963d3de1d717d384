"""Feature serving with Feast: offline (training) and online (live) access to the bar feature tables.

* :mod:`~flowsense.serving.feast_repo`: the Feast objects (entity ``symbol``, views ``features_1s`` and
  ``features_1min`` with curated features from the registry, feature service ``flowsense_bars``), built for
  a :class:`~flowsense.config.Settings` by :func:`build_definitions`;
* :mod:`~flowsense.serving.sources`: the offline sources, per symbol x day Parquet exports of the bar
  tables under ``FLOWSENSE_HOME/feast/sources/`` (why not the lake itself: see that module);
* :mod:`~flowsense.serving.store`: the ``FeatureStore`` built in code from a ``RepoConfig`` (registry
  ``FLOWSENSE_HOME/feast/registry.db``, DuckDB offline store, SQLite online store for profile ``local`` /
  Redis ``$FLOWSENSE_REDIS_URL`` for ``production``) and the operations :func:`apply`,
  :func:`materialize`, :func:`training_frame` (point-in-time join) and :func:`online_features`.

``feature_repo/`` at the repository root holds the same definitions for the ``feast`` CLI
(``feast -c feature_repo apply`` with ``FLOWSENSE_HOME`` set).
"""

from __future__ import annotations

from flowsense.serving.feast_repo import (
    ENTITY,
    FEATURE_SERVICE,
    FEATURES_1MIN,
    FEATURES_1S,
    VIEW_NAMES,
    VIEWS,
    FeastDefinitions,
    ViewSpec,
    build_definitions,
    feast_dir,
    feature_refs,
    sources_dir,
)
from flowsense.serving.sources import export_partition, source_file, source_files, sync_sources
from flowsense.serving.store import (
    MaterializeSummary,
    apply,
    feature_store,
    latest_ts,
    materialize,
    online_features,
    repo_config,
    teardown,
    training_frame,
)

__all__ = [
    "ENTITY",
    "FEATURES_1MIN",
    "FEATURES_1S",
    "FEATURE_SERVICE",
    "VIEWS",
    "VIEW_NAMES",
    "FeastDefinitions",
    "MaterializeSummary",
    "ViewSpec",
    "apply",
    "build_definitions",
    "export_partition",
    "feast_dir",
    "feature_refs",
    "feature_store",
    "latest_ts",
    "materialize",
    "online_features",
    "repo_config",
    "source_file",
    "source_files",
    "sources_dir",
    "sync_sources",
    "teardown",
    "training_frame",
]
