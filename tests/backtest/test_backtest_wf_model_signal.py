"""The bar walk-forward of a registered model (``flowsense walkforward --strategy model_signal``) on a tiny
simulated lake, the refusal of an in-sample fold, and HMM regimes in the reports (table, earlier days,
per fold; causal) with rolling-vol terciles only as the fallback."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from flowsense.config import Settings
from tests.models.simlake import build_lake

DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]
MODEL = "model=flowsense-xgboost@champion"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One symbol x 3 days; xgboost trained on day 1, validated on day 2, tested on day 3 (registered)."""
    from flowsense.models.training import Window, train

    home = build_lake(tmp_path_factory.mktemp("wfms") / "home", symbols=("AAA",), days=3)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FLOWSENSE_HOME", str(home))
        mp.setenv("FLOWSENSE_PROFILE", "local")
        settings = Settings.from_env()
        train(settings, Window(train=1, val=1, test=1), models=("xgboost",),
              params={"xgboost": {"n_estimators": 10, "max_train_rows": 3000}})
        yield settings


def _cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    from flowsense.cli import app

    monkeypatch.setenv("FLOWSENSE_HOME", str(settings.home))
    r = CliRunner().invoke(app, ["walkforward", "--symbol", "AAA", *args])
    return r.exit_code, r.stdout, r.output


def test_walkforward_trades_the_registered_model_out_of_sample(trained: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    common = ["--date", "2024-01-04", "--strategy", "model_signal", "--strategy", "ofi_threshold", "--param", MODEL,
              "--param", "model_signal.threshold=0.55", "--train", "1h", "--test", "1h", "--json"]
    code, out, text = _cli(trained, monkeypatch, *common)
    assert code == 0, text
    p = json.loads(out)  # ONE JSON object
    by = {r["strategy"]: r for r in p["summary"]}
    assert set(by) == {"model_signal", "ofi_threshold", "flat", "buy_and_hold", "last_return_sign"}
    assert p["model"]["name"] == "flowsense-xgboost" and p["model"]["version"] == "1"
    assert p["strategies"]["model_signal"]["threshold"] == 0.55
    assert p["strategies"]["ofi_threshold"]["threshold"] == 400.0  # model_signal.threshold is scoped
    trained_until = dt.datetime.fromisoformat(p["model"]["train_window"][1])
    assert len(p["folds"]) >= 4
    assert all(dt.datetime.fromisoformat(f["test_start"]) > trained_until for f in p["folds"])  # out of sample
    assert by["model_signal"]["exposure"] > 0.05 and by["model_signal"]["n_bars"] == by["flat"]["n_bars"] > 10_000
    assert by["flat"]["total_return"] == 0.0 and by["buy_and_hold"]["exposure"] > 0.99
    assert p["regime_source"] == "hmm_fold_train"  # no regimes table: an HMM per fold's training bars
    assert {r["regime"] for r in p["regimes"]} <= {"regime_0", "regime_1", "regime_2", "unlabelled"}
    assert {r["strategy"] for r in p["regimes"]} == set(by)
    # net of costs is worse than gross for a strategy that trades
    code, out, text = _cli(trained, monkeypatch, *common, "--fee-rate", "0", "--slippage-bps", "0")
    assert code == 0, text
    gross = {r["strategy"]: r for r in json.loads(out)["summary"]}
    assert gross["model_signal"]["total_return"] > by["model_signal"]["total_return"]
    assert gross["buy_and_hold"]["total_return"] > by["buy_and_hold"]["total_return"]


def test_walkforward_refuses_a_fold_inside_the_training_window(trained: Settings,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from flowsense.backtest.wfrun import run_walkforward
    from flowsense.data.lake import Lake
    from flowsense.trading.strategies.model_signal import ModelWindowError

    code, _, text = _cli(trained, monkeypatch, "--date", "2024-01-03", "--strategy", "model_signal",
                         "--param", MODEL, "--train", "1h", "--test", "1h")
    assert code == 2, text
    assert len(text.strip().splitlines()) == 1
    assert "overlaps walk-forward fold 0's test window 2024-01-03T15:30" in text
    with pytest.raises(ModelWindowError, match="overlaps walk-forward fold 0"):
        run_walkforward(Lake(trained.lake), "AAA", DAYS[0], {"model_signal": {"model": "flowsense-xgboost/1"}},
                        train="1h", test="1h", settings=trained)
    code, _, text = _cli(trained, monkeypatch, "--date", "2024-01-04", "--strategy", "model_signal",
                         "--param", "nope=1")
    assert code == 2 and "no chosen strategy has it" in text


def test_report_regimes_hmm_table_then_earlier_days_then_fallback(trained: Settings) -> None:
    from flowsense.backtest.engine import BacktestConfig
    from flowsense.backtest.runner import run_partition
    from flowsense.backtest.wfrun import run_walkforward
    from flowsense.data.lake import Lake, Partition
    from flowsense.models.hmm import REGIMES_TABLE, fit_bars, prior_day_regimes, write_regimes

    lake = Lake(trained.lake)
    run = lambda day: run_partition(lake, trained.reports, "AAA", day, "ofi_threshold", {}, BacktestConfig()).payload  # noqa: E731
    p = run(DAYS[2])
    assert p["regime_source"] == "hmm_prior_days"  # an HMM fitted on days 1-2, filtered over day 3
    assert {r["regime"] for r in p["regimes"]} <= {"regime_0", "regime_1", "regime_2", "warmup"}
    assert sum(r["n_bars"] for r in p["regimes"]) > 200  # 1-minute bars of the day
    assert run(DAYS[0])["regime_source"] == "rolling_vol_terciles"  # nothing before the first day: fallback
    # causal: the labels of the day's first bars do not depend on its later bars
    bars = lake.read("features_1s", Partition("AAA", DAYS[2])).sort("ts")
    full = prior_day_regimes(lake, "AAA", DAYS[2], bars)
    k = bars.height // 2
    cut = prior_day_regimes(lake, "AAA", DAYS[2], bars[:k])
    changed = bars.with_columns(pl.when(pl.int_range(pl.len()) >= k).then(pl.col("rv_20") * 50)
                                .otherwise(pl.col("rv_20")).alias("rv_20"))
    moved = prior_day_regimes(lake, "AAA", DAYS[2], changed)
    assert full is not None and cut is not None and moved is not None
    n = cut.height
    assert cut["regime"].to_list() == full["regime"][:n].to_list() == moved["regime"][:n].to_list()
    assert moved["regime"][n:].to_list() != full["regime"][n:].to_list()  # the perturbation was seen later
    # with a regimes table for the day, reports use it
    d12 = [Partition("AAA", d) for d in DAYS[:2]]
    past = pl.concat([lake.read("features_1s", q) for q in d12], how="diagonal_relaxed").filter(~pl.col("partial"))
    hmm = fit_bars(past, int(past["ts"].dt.epoch("ns").max()) + 1, n_restarts=1)
    part = Partition("AAA", DAYS[2])
    write_regimes(lake, {part: bars.filter(~pl.col("partial"))}, hmm)
    try:
        p = run(DAYS[2])
        assert p["regime_source"] == "hmm_table"
        table = lake.read(REGIMES_TABLE, part)
        assert {r["regime"] for r in p["regimes"]} - {"warmup"} <= {f"regime_{k}" for k in table["regime"].unique()}
        wf = run_walkforward(lake, "AAA", DAYS[2], {"ofi_threshold": {}}, train="1h", test="1h").payload
        assert wf["regime_source"] == "hmm_table"
    finally:
        lake.path(REGIMES_TABLE, part).unlink()


def test_fold_regimes_fit_on_training_bars_and_filter_causally() -> None:
    from flowsense.backtest.walkforward import make_folds, walk_forward
    from flowsense.models.hmm import fold_regimes
    from tests.models.conftest import synthetic_symbol

    bars = synthetic_symbol(n=30_000).bars.sort("ts")  # 1 s bars with calm and 3x volatile stretches
    folds = make_folds(bars["ts"], "40m", "20m")
    assert len(folds) >= 2
    labels = fold_regimes(bars, folds)
    assert labels is not None
    test_rows = np.concatenate([f.test for f in folds])
    assert all(lab is not None for lab in labels[test_rows]) and len(set(labels[test_rows])) >= 2
    assert all(lab is None for lab in labels[: folds[0].test[0]])  # training-only rows get no label
    # the 3x volatile stretches land in a more volatile state than the calm ones
    vol = ((np.arange(bars.height) // 300) % 2 == 1)[test_rows]
    state = np.array([int(s[-1]) for s in labels[test_rows]])
    assert state[vol].mean() > state[~vol].mean() + 0.5
    # causal: perturbing the last fold's later test bars changes no earlier label
    last = folds[-1]
    k = int(last.test[last.test.size // 2])
    changed = bars.with_columns(pl.when(pl.int_range(pl.len()) >= k).then(pl.col("rv_20") * 30)
                                .otherwise(pl.col("rv_20")).alias("rv_20"))
    moved = fold_regimes(changed, folds)
    assert moved is not None
    assert moved[:k].tolist() == labels[:k].tolist()
    assert moved[k:].tolist() != labels[k:].tolist()
    frame = bars.with_columns(close=100 * np.exp(np.cumsum(bars["ret_1"].to_numpy())))
    res = walk_forward(frame, {"hold": lambda tr: (lambda fr: np.ones(fr.height))}, folds=folds, regime=labels,
                       regime_source="hmm_fold_train")
    assert res.regime_source == "hmm_fold_train" and res.regimes is not None
    assert "unlabelled" not in set(res.regimes["regime"].to_list())
