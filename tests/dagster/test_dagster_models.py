"""Dagster model assets on a tiny simulated lake: regimes, per-model registered versions, the evaluation table,
promotion + champion monitoring, the accuracy-drop check, and the nightly schedule."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from flowsense.config import Settings
from flowsense_dagster.assets import models as M
from flowsense_dagster.resources import LakeResource
from tests.models.simlake import build_lake

warnings.filterwarnings("ignore", category=dg.BetaWarning)


def _config(**kw: object) -> dict:
    cfg = {"xgb_estimators": 20, "max_train_rows": 4000, "hmm_restarts": 1, "hmm_max_fit_bars": 3000,
           "evaluation_models": ["majority", "ofi_sign", "qi_sign", "logit_ofi"], **kw}
    names = ["regimes", *(a.key.path[-1] for a in M.model_assets), "model_evaluation", "model_promotion"]
    return {"ops": {n: {"config": cfg} for n in names}}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_lake(tmp_path_factory.mktemp("dgm") / "home")


def test_model_assets_train_register_evaluate_promote(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from flowsense.models import registry

    monkeypatch.setenv("FLOWSENSE_HOME", str(home))
    lake = LakeResource(home=str(home))
    assets = [M.regimes, *M.model_assets, M.model_evaluation, M.model_promotion, M.champion_accuracy_drop]
    res = dg.materialize(assets, resources={"lake": lake}, run_config=_config(), instance=dg.DagsterInstance.ephemeral(),
                         raise_on_error=False)
    failures = [e.step_failure_data.error.message[:300] for e in res.get_step_failure_events()]
    assert res.success, failures
    meta = {e.step_materialization_data.materialization.asset_key.to_user_string():
            e.step_materialization_data.materialization.metadata for e in res.get_asset_materialization_events()}
    assert meta["regimes"]["partitions_written"].value == 6  # 2 symbols x 3 days
    assert meta["model_xgboost"]["version"].value == "1" and meta["model_xgboost"]["n"].value > 100
    rows = meta["model_evaluation"]["rows"].value.records
    assert {r.data["model"] for r in rows} == {"majority", "ofi_sign", "qi_sign", "logit_ofi"}
    assert meta["model_promotion"]["promoted"].value == len(M.model_assets)  # first versions become champions
    settings = Settings.from_env()
    assert registry.champion_version("xgboost", settings) == "1"
    hist = M.champion_history("xgboost", settings)
    assert len(hist) == 1 and 0.3 < hist[0]["accuracy"] < 1.0
    (check,) = res.get_asset_check_evaluations()
    assert check.passed and check.severity == dg.AssetCheckSeverity.WARN

    # a champion that lost more than 5 points against its previous evaluation: the check warns
    c = registry.client(settings)
    worse = {**hist[0], "accuracy": hist[0]["accuracy"] - 0.08}
    c.set_registered_model_tag("flowsense-xgboost", M.HISTORY_TAG, json.dumps([hist[0], worse]))
    res2 = dg.materialize([M.model_promotion, M.champion_accuracy_drop], resources={"lake": lake},
                          selection=dg.AssetSelection.checks(M.champion_accuracy_drop),
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    (check2,) = res2.get_asset_check_evaluations()
    assert not check2.passed and "xgboost" in check2.metadata["dropped"].value
    assert "-8.0 points" in check2.metadata["champions"].value


def test_accuracy_drop_rule() -> None:
    h = [{"version": "1", "accuracy": 0.60, "n": 100}, {"version": "1", "accuracy": 0.56, "n": 100}]
    assert M.accuracy_drop(h) == (False, M.accuracy_drop(h)[1])  # 4 points: no warning
    assert M.accuracy_drop([h[0], {**h[1], "accuracy": 0.549}])[0]
    assert not M.accuracy_drop(h[:1])[0]


def test_nightly_schedule_02_new_york_weekdays() -> None:
    from flowsense_dagster.definitions import defs

    sched = defs.get_schedule_def("nightly_retrain_schedule")
    assert sched.cron_schedule == "0 2 * * 1-5" and sched.execution_timezone == "America/New_York"
    assert sched.job_name == "nightly_retrain"
    job = defs.resolve_job_def("nightly_retrain")
    names = {k.to_user_string() for k in job.asset_layer.selected_asset_keys}
    assert {"regimes", "model_xgboost", "model_evaluation", "model_promotion"} <= names
    tick = dt.datetime(2026, 12, 1, 2, 0, tzinfo=ZoneInfo("America/New_York"))  # a Tuesday
    with dg.build_schedule_context(scheduled_execution_time=tick) as ctx:
        data = sched.evaluate_tick(ctx)
    assert data.run_requests and data.run_requests[0].job_name in (None, "nightly_retrain")
    from dagster._utils.schedules import cron_string_iterator

    it = cron_string_iterator(dt.datetime(2026, 3, 6, 12, tzinfo=ZoneInfo("America/New_York")).timestamp(),
                              sched.cron_schedule, sched.execution_timezone)
    ticks = [next(it) for _ in range(3)]  # Fri 6 Mar -> Mon 9 Mar (after the DST change on 8 Mar), Tue, Wed
    assert [t.strftime("%a %H:%M %Z") for t in ticks] == ["Mon 02:00 EDT", "Tue 02:00 EDT", "Wed 02:00 EDT"]
