"""The production profile's resources against the real services of this machine: Dagster's instance on
PostgreSQL (``deploy/dagster.production.yaml``), the Feast online store and the ``redis`` resource on Redis.

One simulated symbol-day goes through raw -> features -> ``feast_online_store`` with
``resources_for_profile("production")``; the run is recorded in a fresh PostgreSQL database, the online
features land in Redis under a unique Feast project (its keys end with the project name) and are read back.
Database and keys are removed afterwards.
"""

from __future__ import annotations

import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import pytest

dg = pytest.importorskip("dagster")
psycopg2 = pytest.importorskip("psycopg2")
redis = pytest.importorskip("redis")
pytest.importorskip("dagster_postgres")
pytest.importorskip("feast")

from flowsense.data.lake import Lake  # noqa: E402
from flowsense_dagster.assets.features import feature_tables  # noqa: E402
from flowsense_dagster.assets.ingestion import raw_ingest  # noqa: E402
from flowsense_dagster.assets.serving import feast_online_store  # noqa: E402
from flowsense_dagster.partitions import register_partitions, to_partition_key  # noqa: E402
from flowsense_dagster.resources import resources_for_profile  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

REPO = Path(__file__).resolve().parents[2]
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_client() -> Any:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        pytest.skip(f"Redis is not reachable at {REDIS_URL}: {exc}")
    return client


def test_production_resources_on_postgres_and_redis(
    pg_database: str, redis_client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flowsense.sim import simulate

    home = tmp_path / "home"
    (home / "inbox").mkdir(parents=True)
    simulate(["PRODX"], 1, home / "inbox", scale=0.05, seed=3)
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copyfile(REPO / "deploy" / "dagster.production.yaml", dagster_home / "dagster.yaml")
    project = f"fs_test_{uuid.uuid4().hex[:12]}"
    for k, v in {"FLOWSENSE_HOME": str(home), "FLOWSENSE_PROFILE": "production", "FLOWSENSE_REDIS_URL": REDIS_URL,
                 "FLOWSENSE_FEAST_PROJECT": project, "DAGSTER_HOME": str(dagster_home), "DAGSTER_PG_HOST": PG["host"],
                 "DAGSTER_PG_PORT": str(PG["port"]), "DAGSTER_PG_USER": PG["user"], "DAGSTER_PG_PASSWORD": "",
                 "DAGSTER_PG_DB": pg_database}.items():
        monkeypatch.setenv(k, v)

    resources = resources_for_profile()  # FLOWSENSE_PROFILE=production, everything from Settings
    assert resources["feast"].online_store == "redis" and resources["feast"].project == project
    assert resources["redis"].ping()
    from flowsense.data.inbox import scan_inbox

    (src,) = scan_inbox(home / "inbox")
    part = src.partition
    pattern = f"*{project}".encode()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            register_partitions(instance, [part])
            result = dg.materialize(
                [raw_ingest, feature_tables, feast_online_store], instance=instance, resources=resources,
                partition_key=to_partition_key(part), raise_on_error=False,
            )
            assert result.success
            (mat,) = result.asset_materializations_for_node("feast_online_store")
            meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
            assert meta["online_store"] == "redis" and meta["project"] == project
            assert meta["rows_materialized"] == 2  # one symbol x two views
            last = Lake(home / "lake").read("features_1s", part).sort("ts").tail(1)
            assert meta["example_online_lookup"]["features_1s__mid_close"] == pytest.approx(last["mid_close"][0])
            assert len(list(redis_client.scan_iter(pattern))) == 1  # one hash per symbol in Redis
            run_id = result.run_id
        finally:
            try:
                from flowsense.serving import teardown

                teardown(resources["feast"].settings(), store=resources["feast"].store())
            finally:
                for key in redis_client.scan_iter(pattern):
                    redis_client.delete(key)
                instance.dispose()
    assert list(redis_client.scan_iter(pattern)) == []
    conn = psycopg2.connect(dbname=pg_database, **PG)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            assert cur.fetchone() == ("SUCCESS",)
            cur.execute("SELECT partitions_def_name, partition FROM dynamic_partitions ORDER BY 1")
            assert cur.fetchall() == [("dates", part.date.isoformat()), ("symbols", "PRODX")]
    finally:
        conn.close()
