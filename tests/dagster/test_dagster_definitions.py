"""The code location as written out: merged module defs, jobs, the sensor's job object, resources per
profile and run config with the domain's defaults (fast: nothing is materialized)."""

from __future__ import annotations

import warnings

import pytest

dg = pytest.importorskip("dagster")

from flowsense.backtest.engine import BacktestConfig  # noqa: E402
from flowsense.errors import ConfigError  # noqa: E402
from flowsense_dagster import definitions  # noqa: E402
from flowsense_dagster.assets.backtests import BacktestDayConfig, WalkForwardConfig, _engine_config  # noqa: E402
from flowsense_dagster.jobs import all_assets_job  # noqa: E402
from flowsense_dagster.resources import (  # noqa: E402
    LAKE_IO_MANAGER,
    FeastResource,
    LakeIOManager,
    RedisResource,
    resources_for_profile,
)
from flowsense_dagster.sensors.inbox import inbox_sensor  # noqa: E402


def _job_assets(name: str) -> set[str]:
    job = definitions.defs.resolve_job_def(name)
    return {k.to_user_string() for k in job.asset_layer.selected_asset_keys}


def test_module_defs_are_merged() -> None:
    defs = definitions.defs
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    from_modules = {k.to_user_string() for d in definitions.MODULE_DEFS for a in (d.assets or []) for k in a.keys}
    assert keys == from_modules
    # every lake table is an asset (no table found by scanning the lake)
    assert {"backtest_days", "walkforward_folds", "walkforward_summary", "features_1s", "labels"} <= keys


def test_jobs_and_sensor() -> None:
    everything = _job_assets("all_assets_job")
    assert {"raw_events", "features_1s", "feast_online_store", "backtest_days", "walkforward_summary",
            "backtest_report"} <= everything  # the report is refreshed by the runs that make its inputs
    assert _job_assets("ingest_job") == {"raw_events", "raw_book", "raw_trades"}
    assert inbox_sensor.job_name == all_assets_job.name == "all_assets_job"


def test_resources_differ_per_profile(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWSENSE_REDIS_URL", "redis://cache.internal:6380/3")
    local = resources_for_profile("local", home=tmp_path)
    prod = resources_for_profile("production", home=tmp_path)
    assert isinstance(local[LAKE_IO_MANAGER], LakeIOManager) and isinstance(prod[LAKE_IO_MANAGER], LakeIOManager)
    assert isinstance(local["feast"], FeastResource) and local["feast"].online_store == "sqlite"
    assert prod["feast"].online_store == "redis" and prod["feast"].redis_url == "redis://cache.internal:6380/3"
    assert "redis" not in local
    assert isinstance(prod["redis"], RedisResource) and prod["redis"].url == "redis://cache.internal:6380/3"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert local["feast"].store().config.online_store.type == "sqlite"
        store = prod["feast"].store()
    assert store.config.online_store.type == "redis"
    assert store.config.online_store.connection_string == "cache.internal:6380,db=3"
    monkeypatch.delenv("FLOWSENSE_HOME", raising=False)
    with pytest.raises(ConfigError, match="FLOWSENSE_HOME must be set"):
        resources_for_profile("production")
    with pytest.raises(ConfigError, match="unknown profile"):
        resources_for_profile("staging", home=tmp_path)


def test_run_config_defaults_are_the_domains() -> None:
    base = BacktestConfig()
    day = BacktestDayConfig()
    assert day.taker_fee_rate is None and day.slippage_bps is None  # the instrument's defaults
    assert _engine_config(day) == (base, frozenset())
    custom, explicit = _engine_config(BacktestDayConfig(taker_fee_rate=0.001, slippage_bps=2.0))
    assert custom.fees.taker_rate == 0.001 and custom.slippage.bps == 2.0 and custom.queue == base.queue
    assert explicit == {"fees", "slippage"}
    wf = WalkForwardConfig()
    assert (wf.clock, wf.train, wf.test, wf.fee_rate, wf.slippage_bps) == ("1s", "2h", "30m", 0.0008, 1.0)
