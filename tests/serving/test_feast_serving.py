"""Feast serving: definitions, offline sources, point-in-time training frames and online lookups.

Data: two simulated symbol-days (``flowsense.sim``, LOBSTER format, scale 0.2) ingested into a tmp lake and
turned into feature tables once per module; each store test gets its own FLOWSENSE_HOME (registry, online
store, exported sources) so the SQLite and the Redis stores never share a registry.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import numpy as np
import polars as pl
import pytest

pytest.importorskip("feast")

from flowsense.config import Settings
from flowsense.data.ingest import ingest_file
from flowsense.data.lake import Lake, Partition
from flowsense.features import compute_partition
from flowsense.features.registry import BAR_TABLE, REGISTRY
from flowsense.serving import (
    VIEWS,
    apply,
    build_definitions,
    export_partition,
    feature_refs,
    feature_store,
    latest_ts,
    materialize,
    online_features,
    repo_config,
    source_files,
    sync_sources,
    teardown,
    training_frame,
)
from flowsense.serving.store import redis_connection_string

SYMBOLS = ["AAA", "BBB"]
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Lake, list[Partition]]:
    """A lake with raw + feature tables of two simulated symbol-days."""
    try:
        from flowsense.sim import simulate
    except ImportError as exc:  # pragma: no cover - the simulator ships with the package
        pytest.skip(f"simulator unavailable ({exc}) and no fallback data wanted here")
    root = tmp_path_factory.mktemp("feast_lake")
    zips = simulate(SYMBOLS, 1, root / "sim", scale=0.2)
    the_lake = Lake(root / "lake")
    parts: list[Partition] = []
    for z in zips:
        (res,) = ingest_file(z, the_lake)
        compute_partition(the_lake, res.partition)
        parts.append(res.partition)
    return the_lake, parts


def _settings(tmp_path: Path, lake: tuple[Lake, list[Partition]], profile: str = "local") -> Settings:
    the_lake, parts = lake
    settings = Settings(home=tmp_path / "home", profile=profile)
    for part in parts:
        export_partition(settings, part, lake=the_lake)
    return settings


def _bars(lake: tuple[Lake, list[Partition]], table: str) -> pl.DataFrame:
    the_lake, parts = lake
    return pl.concat([the_lake.read(table, p) for p in parts]).sort("symbol", "ts")


def _assert_same(actual: pl.Series, expected: pl.Series, what: str) -> None:
    a = actual.cast(pl.Float64).fill_null(np.nan).to_numpy()
    e = expected.cast(pl.Float64).fill_null(np.nan).to_numpy()
    np.testing.assert_allclose(a, e, rtol=0, atol=0, equal_nan=True, err_msg=what)


# ---- definitions and configuration -----------------------------------------------------------------


def test_definitions_are_curated_from_the_registry(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    defs = build_definitions(settings)
    assert set(defs.views) == {"features_1s", "features_1min"}
    for spec in VIEWS:
        assert 20 <= len(spec.features) <= 30
        assert all(f"{BAR_TABLE}.{f}" in REGISTRY for f in spec.features)
        view = defs.views[spec.name]
        assert [f.name for f in view.features] == list(spec.features)
        assert view.batch_source.timestamp_field == "ts"
        assert view.batch_source.path.startswith(str(tmp_path / "feast" / "sources" / spec.name))
        assert view.entities == ["symbol"]
    assert len(feature_refs()) == sum(len(v.features) for v in VIEWS)


def test_repo_config_by_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLOWSENSE_FEAST_PROJECT", raising=False)
    local = repo_config(Settings(home=tmp_path))
    assert local.project == "flowsense"
    assert local.online_store.type == "sqlite"
    assert local.online_store.path == str(tmp_path / "feast" / "online.db")
    assert local.registry.path == str(tmp_path / "feast" / "registry.db")
    assert local.offline_store.type == "duckdb"
    monkeypatch.setenv("FLOWSENSE_REDIS_URL", "redis://:s3cret@cache.internal:6380/2")
    prod = repo_config(Settings(home=tmp_path, profile="production"), project="other_proj")
    assert prod.online_store.type == "redis"
    assert prod.online_store.connection_string == "cache.internal:6380,db=2,password=s3cret"
    assert prod.project == "other_proj"
    assert redis_connection_string("10.0.0.1:6379,db=1") == "10.0.0.1:6379,db=1"
    monkeypatch.delenv("FLOWSENSE_REDIS_URL")
    assert redis_connection_string() == "127.0.0.1:6379"


def test_exported_sources(tmp_path: Path, lake: tuple[Lake, list[Partition]]) -> None:
    settings = _settings(tmp_path, lake)
    for spec in VIEWS:
        files = source_files(settings, spec.name)
        assert [f.name for f in files] == [f"{s}__2024-01-02.parquet" for s in SYMBOLS]
        df = pl.read_parquet(files[0])
        assert df.columns == ["symbol", "date", "bar_start", "ts", *spec.features]
        assert df.schema["ts"] == pl.Datetime("us", "UTC")
        assert df.height == lake[0].read(spec.table, lake[1][0]).height
    assert sync_sources(settings, lake[0]) == []  # everything is up to date


# ---- SQLite (profile local) ------------------------------------------------------------------------


def test_point_in_time_join_matches_asof(tmp_path: Path, lake: tuple[Lake, list[Partition]]) -> None:
    settings = _settings(tmp_path, lake)
    apply(settings)
    the_lake, parts = lake
    labels = pl.concat([the_lake.read("labels", p) for p in parts])
    bars_1s = _bars(lake, "features_1s")
    # entity times: a sample of label times, bar ends exactly (ts <= t must include them), 1 us before a
    # bar end (must take the previous bar), and times before the first bar of the day (no bar: null)
    sample = labels.gather_every(97).select("symbol", pl.col("ts").alias("event_timestamp"), "seq", "fwd_ret_1s")
    ends = bars_1s.gather_every(1111).select("symbol", "ts")
    extra = pl.concat(
        [
            ends.rename({"ts": "event_timestamp"}),
            ends.select("symbol", (pl.col("ts") - pl.duration(microseconds=1, time_unit="ns")).alias("event_timestamp")),
            labels.group_by("symbol").agg(pl.col("ts").min().alias("event_timestamp")),
        ]
    ).with_columns(pl.lit(None, pl.Int64).alias("seq"), pl.lit(None, pl.Float64).alias("fwd_ret_1s"))
    entity = pl.concat([sample, extra]).sample(fraction=1.0, shuffle=True, seed=3)  # order must be kept
    got = training_frame(settings, entity)
    assert got.height == entity.height
    assert got.select(entity.columns).equals(entity)  # entity columns and order untouched
    exact_hits = 0
    for spec in VIEWS:
        bars = _bars(lake, spec.table).select("symbol", pl.col("ts").alias("bar_ts"), *spec.features)
        expected = (
            entity.with_row_index("i")
            .sort("event_timestamp")
            .join_asof(bars, left_on="event_timestamp", right_on="bar_ts", by="symbol", strategy="backward",
                       tolerance=spec.ttl, check_sortedness=False)
            .sort("i")
        )
        assert (expected["bar_ts"].drop_nulls() <= expected["event_timestamp"].filter(
            expected["bar_ts"].is_not_null())).all()
        exact_hits += int((expected["bar_ts"] == expected["event_timestamp"]).sum())
        # only the day's first events (before the first bar end) have no bar: bars are dense, TTL never hides one
        first_bar = bars.group_by("symbol").agg(pl.col("bar_ts").min().alias("first_bar"))
        early = entity.join(first_bar, on="symbol").filter(pl.col("event_timestamp") < pl.col("first_bar")).height
        assert expected["bar_ts"].null_count() == early >= len(SYMBOLS)
        for f in spec.features:
            _assert_same(got[f"{spec.name}__{f}"], expected[f], f"{spec.name}:{f}")
    assert exact_hits >= ends.height  # bar ends were joined to their own bar


def test_online_lookup_returns_latest_bar(tmp_path: Path, lake: tuple[Lake, list[Partition]]) -> None:
    settings = _settings(tmp_path, lake)
    apply(settings)
    end = latest_ts(settings)
    assert end is not None
    summary = materialize(settings, dt.datetime(2024, 1, 2), end)
    assert summary.entities == {"features_1s": 2, "features_1min": 2}
    assert summary.rows["features_1min"] == _bars(lake, "features_1min").height
    store = feature_store(settings)
    got = online_features(settings, [*SYMBOLS, "NOPE"], store=store)
    assert got["symbol"].to_list() == [*SYMBOLS, "NOPE"]
    for spec in VIEWS:
        last = _bars(lake, spec.table).group_by("symbol").agg(pl.all().sort_by("ts").last()).sort("symbol")
        for f in spec.features:
            _assert_same(got[f"{spec.name}__{f}"].head(2), last[f], f"{spec.name}:{f}")
            assert got[f"{spec.name}__{f}"][2] is None  # unknown symbol
    one = online_features(settings, ["BBB"], ["features_1min:vpin"], full_feature_names=False, store=store)
    assert one.columns == ["symbol", "vpin"]


# ---- Redis (profile production) --------------------------------------------------------------------


def _redis_client():  # type: ignore[no-untyped-def]
    redis = pytest.importorskip("redis")
    client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_connect_timeout=1)
    try:
        client.ping()
    except Exception as exc:
        pytest.skip(f"Redis is not reachable on {REDIS_HOST}:{REDIS_PORT}: {exc}")
    return client


@pytest.mark.redis
def test_redis_online_store(tmp_path: Path, lake: tuple[Lake, list[Partition]], monkeypatch: pytest.MonkeyPatch) -> None:
    client = _redis_client()
    project = f"fs_test_{uuid.uuid4().hex[:12]}"  # Redis keys end with the project name
    monkeypatch.setenv("FLOWSENSE_REDIS_URL", f"{REDIS_HOST}:{REDIS_PORT}")
    settings = _settings(tmp_path, lake, profile="production")
    store = feature_store(settings, project=project)
    assert store.config.online_store.type == "redis"
    pattern = f"*{project}".encode()
    try:
        apply(settings, store=store)
        end = latest_ts(settings)
        assert end is not None
        summary = materialize(settings, dt.datetime(2024, 1, 2), end, store=store)
        assert summary.entities == {"features_1s": 2, "features_1min": 2}
        assert len(list(client.scan_iter(pattern))) == len(SYMBOLS)  # one hash per symbol
        got = online_features(settings, SYMBOLS, store=store)
        for spec in VIEWS:
            last = _bars(lake, spec.table).group_by("symbol").agg(pl.all().sort_by("ts").last()).sort("symbol")
            for f in spec.features:
                _assert_same(got[f"{spec.name}__{f}"], last[f], f"redis {spec.name}:{f}")
    finally:
        try:
            teardown(settings, store=store)
        finally:
            for key in client.scan_iter(pattern):
                client.delete(key)
    assert list(client.scan_iter(pattern)) == []
