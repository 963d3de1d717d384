"""The nightly retrain schedule, evaluated by the daemon's scheduler on a PostgreSQL instance.

The scheduler is Dagster's own (``dagster._scheduler.scheduler.launch_scheduled_runs``, what
``dagster-daemon run`` calls every few seconds) with the clock set to chosen instants
(``dagster._core.test_utils.freeze_time``), so the test does not wait for 02:00 in New York. The run it
requests stays queued: no daemon dequeues it here, nothing is trained.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

pytestmark = [pytest.mark.postgres]

REPO = Path(__file__).resolve().parents[2]
NY = ZoneInfo("America/New_York")
SCHEDULE = "nightly_retrain_schedule"


@pytest.fixture
def pg_instance(pg_database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    import dagster as dg

    home = tmp_path / "dagster"
    home.mkdir()
    shutil.copyfile(REPO / "deploy" / "dagster.production.yaml", home / "dagster.yaml")
    for k, v in {"DAGSTER_HOME": str(home), "DAGSTER_PG_HOST": "127.0.0.1", "DAGSTER_PG_PORT": "5432",
                 "DAGSTER_PG_USER": "postgres", "DAGSTER_PG_PASSWORD": "", "DAGSTER_PG_DB": pg_database,
                 "FLOWSENSE_PROFILE": "production", "FLOWSENSE_HOME": str(tmp_path),
                 "FLOWSENSE_MLFLOW_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}.items():
        monkeypatch.setenv(k, v)
    instance = dg.DagsterInstance.get()
    try:
        yield instance
    finally:
        instance.dispose()


def test_nightly_retrain_ticks_at_two_in_new_york_on_weekdays_only(pg_instance: object) -> None:
    from dagster._core.test_utils import create_test_daemon_workspace_context, freeze_time
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._scheduler.scheduler import launch_scheduled_runs

    instance = pg_instance
    target = ModuleTarget(module_name="flowsense_dagster.definitions", attribute="defs",
                          working_directory=str(REPO), location_name="flowsense")
    with create_test_daemon_workspace_context(target, instance) as ctx:  # one code server for every pass
        def _scheduler_pass(_: object, at: dt.datetime) -> None:
            with freeze_time(at):
                list(launch_scheduled_runs(ctx, logging.getLogger("scheduler"), at.astimezone(dt.UTC), {}))

        _check_ticks(instance, _scheduler_pass)


def _check_ticks(instance: object, _scheduler_pass: object) -> None:
    import dagster as dg
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus

    # Friday 2026-12-04 01:59 New York: the schedule is seen for the first time, no tick yet
    _scheduler_pass(instance, dt.datetime(2026, 12, 4, 1, 59, tzinfo=NY))
    assert not instance.get_runs(filters=dg.RunsFilter(job_name="nightly_retrain"))
    # 02:00:30: one tick, one run of the retrain job, queued for the daemon to launch
    _scheduler_pass(instance, dt.datetime(2026, 12, 4, 2, 0, 30, tzinfo=NY))
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="nightly_retrain"))
    assert len(runs) == 1
    assert runs[0].status == dg.DagsterRunStatus.QUEUED
    assert runs[0].tags.get("dagster/schedule_name") == SCHEDULE
    # Saturday and Sunday 02:00: no tick; Monday 2026-12-07 02:00 (still EST): the next one
    _scheduler_pass(instance, dt.datetime(2026, 12, 5, 2, 0, 30, tzinfo=NY))
    _scheduler_pass(instance, dt.datetime(2026, 12, 6, 2, 0, 30, tzinfo=NY))
    assert len(instance.get_runs(filters=dg.RunsFilter(job_name="nightly_retrain"))) == 1
    _scheduler_pass(instance, dt.datetime(2026, 12, 7, 2, 0, 30, tzinfo=NY))
    runs = instance.get_runs(filters=dg.RunsFilter(job_name="nightly_retrain"))
    assert len(runs) == 2
    states = [s for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
              if s.instigator_name == SCHEDULE]
    assert len(states) == 1
    ticks = instance.get_ticks(states[0].instigator_origin_id, states[0].selector_id)
    succeeded = sorted(dt.datetime.fromtimestamp(t.timestamp, NY).strftime("%a %H:%M")
                       for t in ticks if t.status == TickStatus.SUCCESS)
    assert succeeded == ["Fri 02:00", "Mon 02:00"]
