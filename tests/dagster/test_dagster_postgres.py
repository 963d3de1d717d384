"""Dagster on PostgreSQL (the production instance config): a raw partition's run and events land in PostgreSQL.

Uses ``deploy/dagster.production.yaml`` as is, against a fresh database on 127.0.0.1:5432 (user postgres,
trust auth) that is dropped afterwards (the ``pg_database`` fixture in ``tests/conftest.py``).
"""

from __future__ import annotations

import datetime as dt
import shutil
import warnings
from pathlib import Path

import pytest

dg = pytest.importorskip("dagster")
psycopg2 = pytest.importorskip("psycopg2")
pytest.importorskip("dagster_postgres")

from flowsense.data.lake import Partition  # noqa: E402
from flowsense_dagster.assets.ingestion import raw_ingest, raw_validation  # noqa: E402
from flowsense_dagster.partitions import SYMBOLS, register_partitions, to_partition_key  # noqa: E402
from flowsense_dagster.resources import CatalogResource, LakeResource  # noqa: E402

pytestmark = [pytest.mark.postgres, pytest.mark.real_data]

REPO = Path(__file__).resolve().parents[2]
DATA = REPO.parent / "shared" / "data" / "lobster_2012-06-21"
GOOG_1 = DATA / "LOBSTER_SampleFile_GOOG_2012-06-21_1.zip"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}


def test_runs_and_events_are_stored_in_postgres(
    pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not GOOG_1.exists():
        pytest.skip(f"LOBSTER sample data not found at {DATA}")
    home = tmp_path / "home"
    (home / "inbox").mkdir(parents=True)
    shutil.copy(GOOG_1, home / "inbox")
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    shutil.copyfile(REPO / "deploy" / "dagster.production.yaml", dagster_home / "dagster.yaml")
    monkeypatch.setenv("FLOWSENSE_HOME", str(home))
    monkeypatch.setenv("FLOWSENSE_PROFILE", "production")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    monkeypatch.setenv("DAGSTER_PG_HOST", PG["host"])
    monkeypatch.setenv("DAGSTER_PG_PORT", str(PG["port"]))
    monkeypatch.setenv("DAGSTER_PG_USER", PG["user"])
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "")
    monkeypatch.setenv("DAGSTER_PG_DB", pg_database)

    part = Partition("GOOG", dt.date(2012, 6, 21))
    lake = LakeResource(home=dg.EnvVar("FLOWSENSE_HOME"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        instance = dg.DagsterInstance.from_config(str(dagster_home))
        try:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            register_partitions(instance, [part])
            result = dg.materialize(
                [raw_ingest, raw_validation],
                instance=instance,
                resources={"lake": lake, "catalog": CatalogResource(lake=lake)},
                partition_key=to_partition_key(part),
            )
            assert result.success
            run_id = result.run_id
        finally:
            instance.dispose()

    conn = psycopg2.connect(dbname=pg_database, **PG)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
            assert cur.fetchone() == ("SUCCESS",)
            cur.execute(
                "SELECT asset_key, partition FROM event_logs "
                "WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION' ORDER BY asset_key",
                (run_id,),
            )
            rows = cur.fetchall()
            assert [r[0] for r in rows] == ['["raw_book"]', '["raw_events"]', '["raw_trades"]']
            assert {r[1] for r in rows} == {"2012-06-21|GOOG"}
            cur.execute(
                "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_CHECK_EVALUATION'",
                (run_id,),
            )
            assert cur.fetchone()[0] == 9
            cur.execute("SELECT partition FROM dynamic_partitions WHERE partitions_def_name = %s", (SYMBOLS,))
            assert cur.fetchall() == [("GOOG",)]
    finally:
        conn.close()
    assert (home / "lake" / "events" / "symbol=GOOG" / "date=2012-06-21" / "part-0.parquet").exists()
