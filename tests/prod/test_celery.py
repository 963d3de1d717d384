"""The production profile on real services: Dagster on PostgreSQL, the daemon, Celery workers on RabbitMQ.

The stack (``conftest.prod_stack``) is started as ``deploy/Procfile`` starts it, as separate processes.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import time

import pytest

from flowsense.data.lake import Partition
from flowsense_dagster.stack import Ephemeral, failure_messages, run_stats, storage_kind
from tests.prod.conftest import SYMBOLS

pytestmark = [pytest.mark.postgres, pytest.mark.rabbitmq, pytest.mark.slow]

DAY = dt.date(2024, 1, 2)


def _key(symbol: str) -> str:
    from flowsense_dagster.partitions import to_partition_key

    return str(to_partition_key(Partition(symbol, DAY)))


def _latest_per_partition(stack: Ephemeral, runs: list) -> dict:
    latest = {}
    for r in sorted(runs, key=lambda r: stack.instance.get_run_record_by_id(r.run_id).create_timestamp):
        latest[r.tags["dagster/partition"]] = r
    return latest


def test_backfill_on_two_celery_workers_survives_a_worker_killed_mid_step(prod_stack: Ephemeral) -> None:
    """Files in the inbox: the daemon's inbox sensor requests a run per partition, the run queue launches
    them, and every step executes in one of the two Celery worker processes. The worker process running
    one partition's ``feature_tables`` step is killed (SIGKILL) in the middle of it: the broker hands the
    step to the other worker, the run still succeeds, and the lake holds whole files only."""
    import dagster as dg
    import polars as pl

    keys = sorted(_key(s) for s in SYMBOLS)
    victim = _key(SYMBOLS[-1])
    killed: int | None = None
    deadline = time.monotonic() + 900
    latest: dict = {}
    while time.monotonic() < deadline:
        runs = list(prod_stack.instance.get_runs(filters=dg.RunsFilter(job_name="all_assets_job")))
        latest = _latest_per_partition(prod_stack, runs)
        if killed is None and victim in latest:
            for rec in prod_stack.instance.all_logs(latest[victim].run_id, of_type=dg.DagsterEventType.STEP_START):
                if rec.dagster_event.step_key == "feature_tables":
                    os.kill(rec.dagster_event.pid, signal.SIGKILL)
                    killed = rec.dagster_event.pid
        if sorted(latest) == keys and all(r.status.value in ("SUCCESS", "FAILURE", "CANCELED")
                                          for r in latest.values()):
            break
        time.sleep(0.2 if killed is None else 2.0)
    assert killed is not None, "feature_tables of the victim partition never started"
    # a run that could not start (a code server too slow to answer on a loaded machine) is retried by the
    # instance's run retries (deploy/dagster.production.yaml): the newest run of each partition must succeed
    failures = {k: failure_messages(prod_stack.instance, r.run_id) for k, r in latest.items()
                if r.status.value != "SUCCESS"}
    assert {k: r.status.value for k, r in latest.items()} == dict.fromkeys(keys, "SUCCESS"), failures
    assert storage_kind(prod_stack.instance) == "postgres"
    stats = run_stats(prod_stack.instance, [r.run_id for r in latest.values()])
    # the steps ran in the Celery worker processes, not in the run workers the daemon launched
    assert set(stats["worker_pids"]) - {killed} <= prod_stack.celery_pids(), stats
    assert len(stats["worker_pids"]) >= 2, stats
    assert len(stats["workers"]) == 2, stats
    # the killed attempt, then the same step again in a live worker process, from the start
    starts = [r.dagster_event.pid for r in prod_stack.instance.all_logs(
        latest[victim].run_id, of_type=dg.DagsterEventType.STEP_START) if r.dagster_event.step_key == "feature_tables"]
    assert len(starts) == 2 and starts[0] == killed and starts[1] != killed, starts
    # every lake file is whole, and no temporary file is left behind
    lake = prod_stack.home / "lake"
    assert not [f for f in lake.rglob("*") if f.is_file() and "tmp" in f.name]
    for symbol in SYMBOLS:
        for table in ("events", "features_tick", "labels"):
            part = lake / table / f"symbol={symbol}" / f"date={DAY}"
            assert pl.read_parquet(next(part.glob("*.parquet"))).height > 0, (table, symbol)
