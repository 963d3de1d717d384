"""End to end on a tiny simulated lake: train -> MLflow version (DVC data version) -> model_signal backtest,
refusal of an in-sample day, and the train / models / evaluate commands' JSON."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from flowsense.config import Settings
from tests.models.simlake import build_lake

DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Settings, list]]:
    from flowsense.models.training import Window, train

    home = build_lake(tmp_path_factory.mktemp("ms") / "home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWSENSE_HOME", str(home))
        mp.setenv("FLOWSENSE_PROFILE", "local")
        settings = Settings.from_env()
        results = train(settings, Window(train=1, val=1, test=1), models=("xgboost",),
                        params={"xgboost": {"n_estimators": 30, "max_train_rows": 5000}})
        yield settings, results


def test_training_registers_an_out_of_sample_version(trained: tuple[Settings, list]) -> None:
    from flowsense.models import dataversion, registry

    settings, (res,) = trained
    v = res.version
    assert v.name == "flowsense-xgboost" and v.kind == "xgboost" and "champion" in v.aliases
    assert v.data_version == dataversion.snapshot(settings).id  # the raw data it was trained on
    assert v.train_start == DAYS[0] and v.train_end == DAYS[1]  # train day 1, validation day 2
    assert v.folds and v.folds[0]["test_start"].startswith("2024-01-04") and v.symbols == ["AAA", "BBB"]
    assert "ofi_l1" in v.feature_names and not any(c.startswith("reg_") for c in v.feature_names)
    assert len(v.code_revision or "") >= 7
    assert {r["symbol"] for r in res.rows} == {"AAA", "BBB"} and all(r["n"] > 100 for r in res.rows)
    oos = registry.oos_predictions(v, settings)
    assert oos is not None and oos.height == int(res.metrics["n"])
    assert oos["date"].unique().to_list() == [DAYS[2]]  # only the test day is scored
    assert res.decision.promoted and "first version" in res.decision.reason


def test_training_logs_the_evaluation_table_the_api_shows(trained: tuple[Settings, list]) -> None:
    """A real train logs ``evaluation.json``: the walk-forward rows beside the no-fit baselines, same folds."""
    from flowsense.models import registry
    from flowsense_api.models import ModelRegistry

    settings, (res,) = trained
    rows = registry.evaluation_rows(res.version, settings)
    assert rows is not None
    keys = {"model", "symbol", "horizon", "fold", "test_start", "test_end", "n", "accuracy", "f1", "log_loss", "kind"}
    assert all(keys <= set(r) for r in rows)
    models = [r for r in rows if r["kind"] == "model"]
    assert [(r["symbol"], r["fold"], r["n"], r["accuracy"]) for r in models] == [
        (r["symbol"], r["fold"], r["n"], r["accuracy"]) for r in res.rows]  # the walk-forward's own scores
    assert {r["model"] for r in rows} == {"xgboost", "majority", "ofi_sign", "qi_sign"}
    windows = {(r["symbol"], r["fold"]): (r["test_start"], r["test_end"]) for r in models}
    for name in ("majority", "ofi_sign", "qi_sign"):
        base = [r for r in rows if r["model"] == name]
        assert {(r["symbol"], r["fold"]): (r["test_start"], r["test_end"]) for r in base} == windows
        assert all(r["kind"] == "baseline" and r["log_loss"] is None and r["n"] > 0 for r in base)
    assert all(isinstance(r["log_loss"], float) for r in models)
    # what the API's models page reads for this version
    table = ModelRegistry(settings).evaluation("flowsense-xgboost", "1")["table"]
    assert [(r["model"], r["symbol"], r["fold"]) for r in table] == [(r["model"], r["symbol"], r["fold"]) for r in rows]




def test_model_signal_trades_out_of_sample_and_refuses_training_days(trained: tuple[Settings, list]) -> None:
    from flowsense.backtest.engine import BacktestConfig
    from flowsense.backtest.runner import run_partition
    from flowsense.data.lake import Lake, Partition
    from flowsense.trading.strategies.model_signal import ModelSignal, ModelWindowError

    settings, _ = trained
    lake = Lake(settings.lake)
    params = {"model": "flowsense-xgboost@champion", "threshold": 0.6, "min_hold_events": 20}
    run = run_partition(lake, settings.reports, "AAA", DAYS[2], "model_signal", params, BacktestConfig())
    p = run.payload
    assert p["strategy"] == "model_signal" and p["position"] == 0  # flat at the end of the day
    assert p["engine"]["n_orders"] > 0 and np.isfinite(p["pnl"])
    for day in DAYS[:2]:  # training and validation days are in sample for this version
        with pytest.raises(ModelWindowError, match=f"overlaps the backtest day {day}"):
            run_partition(lake, settings.reports, "AAA", day, "model_signal", params, BacktestConfig())
    # the strategy acts on P(up) of the last delivered event only
    events = lake.read("events", Partition("AAA", DAYS[2]))
    strat = ModelSignal(**params).prepare(lake=lake, symbol="AAA", date=DAYS[2], events=events, book=None)
    assert strat.p_up.size > 1000 and np.isfinite(strat.p_up).mean() > 0.99


def test_cli_train_models_evaluate_json(trained: tuple[Settings, list], monkeypatch: pytest.MonkeyPatch) -> None:
    from flowsense.cli import app

    settings, _ = trained
    monkeypatch.setenv("FLOWSENSE_HOME", str(settings.home))
    runner = CliRunner()
    r = runner.invoke(app, ["train", "--models", "logit_ofi", "--train", "1", "--val", "1", "--test", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["models"][0]["version"]["name"] == "flowsense-logit_ofi" and out["models"][0]["promotion"]["promoted"]

    r = runner.invoke(app, ["models", "--json"])
    assert r.exit_code == 0, r.output
    names = {m["name"]: m for m in json.loads(r.stdout)["models"]}
    assert names["flowsense-xgboost"]["champion"] == "1" and "accuracy" in names["flowsense-xgboost"]["champion_metrics"]

    r = runner.invoke(app, ["evaluate", "--models", "majority,ofi_sign,qi_sign,logit_ofi", "--horizons",
                            "next_move,100ms", "--train", "1", "--val", "1", "--test", "1", "--json"])
    assert r.exit_code == 0, r.output
    payload = json.loads(r.stdout)  # ONE JSON object
    rows = payload["rows"]
    assert {r_["model"] for r_ in rows} == {"majority", "ofi_sign", "qi_sign", "logit_ofi"}
    assert {r_["horizon"] for r_ in rows} == {"next_move", "100ms"} and {r_["symbol"] for r_ in rows} == {"AAA", "BBB"}
    for r_ in rows:
        assert {"model", "symbol", "horizon", "fold", "test_start", "test_end", "n", "accuracy", "f1",
                "log_loss"} <= set(r_)
        assert dt.datetime.fromisoformat(r_["test_start"]).utcoffset() == dt.timedelta(0)
        assert (r_["log_loss"] is None) == (r_["model"] != "logit_ofi")

    r = runner.invoke(app, ["models", "nope"])
    assert r.exit_code == 2 and "flowsense-nope is not registered" in r.output
    r = runner.invoke(app, ["backtest", "--symbol", "AAA", "--date", "2024-01-03", "--strategy", "model_signal",
                            "--param", "model=flowsense-xgboost@champion"])
    assert r.exit_code == 2 and "overlaps the backtest day 2024-01-03" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_model_signal_live_in_the_worker_with_the_champion(trained: tuple[Settings, list], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The same strategy live: the worker hot-loads the champion and feeds streaming features."""
    from flowsense.cli import app

    settings, _ = trained
    monkeypatch.setenv("FLOWSENSE_HOME", str(settings.home))
    r = CliRunner().invoke(app, ["worker", "run", "--source", "replay", "--symbol", "BBB", "--date", "2024-01-04",
                                 "--strategy", "model_signal", "--param", "threshold=0.55", "--model",
                                 "flowsense-xgboost", "--state", str(tmp_path / "state"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["n_orders"] > 0, out
    assert all(str(o.get("model_version", "1")) == "1" for o in out.get("orders", []))
