"""The Feast ``FeatureStore`` of a FlowSense home, built in code from a ``RepoConfig``.

* registry: file ``FLOWSENSE_HOME/feast/registry.db``;
* offline store: ``duckdb`` over the exported sources (:mod:`flowsense.serving.sources`);
* online store: SQLite ``FLOWSENSE_HOME/feast/online.db`` for profile ``local``, Redis for ``production``
  (``FLOWSENSE_REDIS_URL``: ``host:port[,db=0,password=..]`` or ``redis://[:password@]host:port[/db]``,
  default ``127.0.0.1:6379``);
* project: ``FLOWSENSE_FEAST_PROJECT`` (default ``flowsense``); Redis keys end with the project name, so a
  separate project keeps separate keys on a shared Redis.

Writers (apply, materialize) hold an exclusive file lock (``feast/.lock``): Feast's file registry is
rewritten in place, and concurrent Dagster runs (one per symbol x day) must not interleave their writes.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

import pandas as pd
import polars as pl
from feast import FeatureStore, RepoConfig
from feast.infra.offline_stores.duckdb import DuckDBOfflineStoreConfig
from feast.infra.online_stores.redis import RedisOnlineStoreConfig
from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
from feast.repo_config import RegistryConfig

from flowsense.config import Settings, env
from flowsense.errors import ConfigError
from flowsense.serving.feast_repo import (
    ENTITY,
    VIEW_NAMES,
    FeastDefinitions,
    build_definitions,
    feast_dir,
    feature_refs,
)
from flowsense.serving.sources import source_files

DEFAULT_PROJECT = "flowsense"
DEFAULT_REDIS = "127.0.0.1:6379"
REGISTRY_CACHE_TTL_S = 60
_PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


def project_name(project: str | None = None) -> str:
    """``project``, else ``$FLOWSENSE_FEAST_PROJECT``, else ``flowsense`` (validated for Feast)."""
    name = (project or env("FLOWSENSE_FEAST_PROJECT") or DEFAULT_PROJECT).strip()
    if not _PROJECT_RE.match(name):
        raise ConfigError(f"Feast project {name!r} must be alphanumeric/underscores, not starting with '_'")
    return name


def redis_connection_string(url: str | None = None) -> str:
    """Feast's Redis connection string from ``url`` (else ``$FLOWSENSE_REDIS_URL``, else 127.0.0.1:6379).

    Accepts Feast's own ``host:port[,db=N,password=..,ssl=true]`` or a ``redis[s]://`` URL.
    """
    raw = (url or env("FLOWSENSE_REDIS_URL") or DEFAULT_REDIS).strip()
    if "://" not in raw:
        return raw
    u = urlparse(raw)
    if u.scheme not in ("redis", "rediss"):
        raise ConfigError(f"FLOWSENSE_REDIS_URL {raw!r}: scheme must be redis:// or rediss://")
    parts = [f"{u.hostname or '127.0.0.1'}:{u.port or 6379}"]
    db = u.path.lstrip("/")
    if db:
        parts.append(f"db={int(db)}")
    if u.password:
        parts.append(f"password={unquote(u.password)}")
    if u.username and u.username != "default":
        parts.append(f"username={unquote(u.username)}")
    if u.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def repo_config(
    settings: Settings,
    *,
    project: str | None = None,
    redis_url: str | None = None,
    online_store: str | None = None,
) -> RepoConfig:
    """The ``RepoConfig`` of ``settings`` (paths under ``FLOWSENSE_HOME``).

    ``online_store``: ``"sqlite"`` or ``"redis"``; default by profile (``redis`` for ``production``).
    """
    base = feast_dir(settings)
    base.mkdir(parents=True, exist_ok=True)
    kind = online_store or ("redis" if settings.profile == "production" else "sqlite")
    if kind not in ("sqlite", "redis"):
        raise ConfigError(f"Feast online store {kind!r} must be 'sqlite' or 'redis'")
    online: Any
    if kind == "redis":
        online = RedisOnlineStoreConfig(connection_string=redis_connection_string(redis_url))
    else:
        online = SqliteOnlineStoreConfig(path=str(base / "online.db"))
    return RepoConfig(
        project=project_name(project or settings.feast_project),
        provider="local",
        registry=RegistryConfig(
            registry_type="file", path=str(base / "registry.db"), cache_ttl_seconds=REGISTRY_CACHE_TTL_S
        ),
        offline_store=DuckDBOfflineStoreConfig(),
        online_store=online,
        entity_key_serialization_version=3,
        repo_path=base,
    )


def feature_store(
    settings: Settings,
    *,
    project: str | None = None,
    redis_url: str | None = None,
    online_store: str | None = None,
) -> FeatureStore:
    """A ``FeatureStore`` for ``settings`` (cheap; reuse one per process for online reads)."""
    config = repo_config(settings, project=project, redis_url=redis_url, online_store=online_store)
    return FeatureStore(config=config, repo_path=str(config.repo_path))


@contextmanager
def write_lock(settings: Settings) -> Iterator[None]:
    """Exclusive lock of the Feast home (registry and online store writers)."""
    path = feast_dir(settings) / ".lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def apply(settings: Settings, *, project: str | None = None, store: FeatureStore | None = None) -> FeastDefinitions:
    """Register (create or update) the entity, feature views and feature service; returns them."""
    store = store or feature_store(settings, project=project)
    defs = build_definitions(settings)
    with write_lock(settings), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store.apply(defs.objects())
    return defs


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


@dataclass
class MaterializeSummary:
    """What :func:`materialize` wrote: per view, the source rows in the window and the entities written."""

    start: dt.datetime
    end: dt.datetime
    rows: dict[str, int] = field(default_factory=dict)
    entities: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def views(self) -> list[str]:
        return list(self.rows)


def source_window_stats(settings: Settings, view: str, start: dt.datetime, end: dt.datetime) -> tuple[int, int]:
    """(rows, distinct symbols) of ``view``'s sources with ``start <= ts <= end``."""
    files = source_files(settings, view)
    if not files:
        return 0, 0
    out = (
        pl.scan_parquet(files)
        .filter(pl.col("ts").is_between(_utc(start), _utc(end), closed="both"))
        .select(pl.len().alias("rows"), pl.col(ENTITY).n_unique().alias("entities"))
        .collect()
    )
    return int(out["rows"][0]), int(out["entities"][0])


def latest_ts(settings: Settings, views: Sequence[str] = VIEW_NAMES) -> dt.datetime | None:
    """The latest bar end over the exported sources of ``views`` (None when nothing is exported)."""
    found: list[dt.datetime] = []
    for view in views:
        files = source_files(settings, view)
        if files:
            value = pl.scan_parquet(files).select(pl.col("ts").max()).collect().item()
            if value is not None:
                found.append(_utc(value))
    return max(found) if found else None


def materialize(
    settings: Settings,
    start: dt.datetime,
    end: dt.datetime,
    *,
    views: Sequence[str] | None = None,
    project: str | None = None,
    store: FeatureStore | None = None,
) -> MaterializeSummary:
    """Load the latest row per symbol with ``start <= ts <= end`` of each view into the online store.

    Views without exported sources are skipped (listed in ``skipped``). Naive datetimes are UTC. The online
    stores overwrite unconditionally, so to keep the latest values online, end the window at the latest
    data (:func:`latest_ts`) rather than at an older day's close.
    """
    store = store or feature_store(settings, project=project)
    start, end = _utc(start), _utc(end)
    summary = MaterializeSummary(start=start, end=end)
    todo: list[str] = []
    for view in views or VIEW_NAMES:
        if not source_files(settings, view):
            summary.skipped.append(view)
            continue
        rows, entities = source_window_stats(settings, view, start, end)
        summary.rows[view], summary.entities[view] = rows, entities
        todo.append(view)
    if todo:
        with write_lock(settings), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            store.materialize(start_date=start, end_date=end, feature_views=todo)
    return summary


def _as_polars(df: pl.DataFrame | pd.DataFrame) -> pl.DataFrame:
    return df if isinstance(df, pl.DataFrame) else pl.from_pandas(df)


def training_frame(
    settings: Settings,
    entity_df: pl.DataFrame | pd.DataFrame,
    features: Sequence[str] | None = None,
    *,
    timestamp_col: str = "event_timestamp",
    full_feature_names: bool = True,
    project: str | None = None,
    store: FeatureStore | None = None,
) -> pl.DataFrame:
    """Point-in-time join of the feature views onto ``entity_df`` (``symbol`` + ``timestamp_col``).

    For each row the features come from the latest bar of that symbol with ``timestamp - ttl <= ts <=
    timestamp`` (view TTL: 5 min for 1 s bars, 15 min for 1 min bars; bars are dense within a session). Returns ``entity_df`` (all its columns, original order and
    timestamp precision) plus one column per feature, named ``<view>__<feature>`` when
    ``full_feature_names`` (the default; both views have e.g. ``mid_close``). Timestamps are floored to
    microseconds for Feast, which is exact for the comparison because bar ends are whole seconds. Naive
    timestamps are taken as UTC. A row with no bar in range gets NaN (Feast does not tell missing from NaN).
    """
    store = store or feature_store(settings, project=project)
    ent = _as_polars(entity_df)
    if ENTITY not in ent.columns or timestamp_col not in ent.columns:
        raise ValueError(f"entity_df needs columns {ENTITY!r} and {timestamp_col!r}, has {ent.columns}")
    dtype = ent.schema[timestamp_col]
    if not isinstance(dtype, pl.Datetime):
        raise ValueError(f"{timestamp_col} must be a datetime column, not {dtype}")
    ts = pl.col(timestamp_col)
    ts = ts.dt.replace_time_zone("UTC") if dtype.time_zone is None else ts.dt.convert_time_zone("UTC")
    query = ent.select(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("__row"),
        pl.col(ENTITY).cast(pl.String),
        ts.dt.cast_time_unit("us").alias("event_timestamp"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        job = store.get_historical_features(
            entity_df=query.to_pandas(),
            features=list(features or feature_refs()),
            full_feature_names=full_feature_names,
        )
        got = pl.from_pandas(job.to_df())
    feats = got.drop(ENTITY, "event_timestamp").sort("__row")
    base = ent.with_row_index("__row").with_columns(pl.col("__row").cast(pl.Int64))
    return base.join(feats, on="__row", how="left").sort("__row").drop("__row")


def online_features(
    settings: Settings,
    symbols: Sequence[str],
    features: Sequence[str] | None = None,
    *,
    full_feature_names: bool = True,
    project: str | None = None,
    store: FeatureStore | None = None,
) -> pl.DataFrame:
    """The latest materialized values for ``symbols`` (one row each, in order; nulls for unknown symbols).

    For the streaming worker: create the store once (:func:`feature_store`) and pass it as ``store``.
    """
    store = store or feature_store(settings, project=project)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        resp = store.get_online_features(
            features=list(features or feature_refs()),
            entity_rows=[{ENTITY: s} for s in symbols],
            full_feature_names=full_feature_names,
        ).to_dict()
    return pl.DataFrame(resp, strict=False)


def teardown(settings: Settings, *, project: str | None = None, store: FeatureStore | None = None) -> None:
    """Remove the project's online data (SQLite tables / Redis keys) and its registry."""
    store = store or feature_store(settings, project=project)
    with write_lock(settings), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store.teardown()


__all__ = [
    "DEFAULT_PROJECT",
    "MaterializeSummary",
    "apply",
    "feature_store",
    "latest_ts",
    "materialize",
    "online_features",
    "project_name",
    "redis_connection_string",
    "repo_config",
    "source_window_stats",
    "teardown",
    "training_frame",
    "write_lock",
]
