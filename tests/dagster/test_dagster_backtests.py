"""Backtest assets end to end for one partition: raw -> features -> backtest_day and walkforward_day, then
the aggregate backtest_report; metadata and files a user would look at."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest

dg = pytest.importorskip("dagster")

from flowsense.data.lake import Lake, Partition  # noqa: E402
from flowsense_dagster.assets.backtests import backtest_day, backtest_report, walkforward_day  # noqa: E402
from flowsense_dagster.assets.features import feature_tables  # noqa: E402
from flowsense_dagster.assets.ingestion import raw_ingest  # noqa: E402
from flowsense_dagster.partitions import register_partitions, to_partition_key  # noqa: E402
from flowsense_dagster.resources import resources_for_profile  # noqa: E402
from tests.conftest import stage_partition  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Partition, Any, Any]:
    home = tmp_path_factory.mktemp("fs_home")
    part = stage_partition(home / "inbox", sim_scale=0.3)
    resources = resources_for_profile("local", home=home)
    instance = dg.DagsterInstance.ephemeral()
    register_partitions(instance, [part])
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setenv("FLOWSENSE_HOME", str(home))
        warnings.simplefilter("ignore")
        per_day = dg.materialize(
            [raw_ingest, feature_tables, backtest_day, walkforward_day], instance=instance, resources=resources,
            partition_key=to_partition_key(part), raise_on_error=False,
        )
        aggregate = dg.materialize(  # the upstream assets are given for their definitions, not run
            [raw_ingest, feature_tables, backtest_day, walkforward_day, backtest_report], instance=instance,
            resources=resources, raise_on_error=False, selection=[backtest_report],
        )
    return home, part, per_day, aggregate


def _meta(result: Any, node: str, asset: str | None = None) -> dict[str, Any]:
    mats = result.asset_materializations_for_node(node)
    (mat,) = [m for m in mats if asset is None or m.asset_key.path == [asset]]
    return {k: v.value for k, v in mat.metadata.items()}


def test_runs_succeed(run) -> None:
    _, _, per_day, aggregate = run
    assert per_day.success and aggregate.success


def test_backtest_day_writes_report_and_metrics(run) -> None:
    home, part, per_day, _ = run
    meta = _meta(per_day, "backtest_day")
    assert Path(meta["report_html"]).stat().st_size > 10_000
    assert Path(meta["report_pdf"]).stat().st_size > 10_000
    assert "data:image/png;base64," in meta["equity_curve"]
    payload = json.loads((Path(meta["report_html"]).parent / "metrics.json").read_text())
    assert payload["symbol"] == part.symbol and payload["engine"]["n_fills"] == meta["n_fills"] > 0
    # fees are charged: an OFI taker strategy pays 0.08% of its turnover
    assert payload["fees_paid"] > 0
    row = Lake(home / "lake").read("backtest_days", part)
    assert row["total_return"][0] == pytest.approx(payload["total_return"])


def test_walkforward_is_out_of_sample_with_baselines(run) -> None:
    home, part, per_day, _ = run
    folds = Lake(home / "lake").read("walkforward_folds", part)
    summary = Lake(home / "lake").read("walkforward_summary", part)
    assert set(summary["strategy"]) == {"ofi_ridge", "flat", "buy_and_hold", "last_return_sign"}
    assert set(summary["costs"]) == {"gross", "net"}
    # every fold tests strictly after it trains, and there are several folds in a 6.5-hour day
    f = folds.filter((pl.col("strategy") == "ofi_ridge") & (pl.col("costs") == "gross"))
    assert f.height >= 5
    assert (f["train_end"] <= f["test_start"]).all()
    flat = summary.filter(pl.col("strategy") == "flat")
    assert (flat["total_return"] == 0).all()
    meta = _meta(per_day, "walkforward_day", "walkforward_summary")
    assert meta["folds"] == f.height and "ofi_ridge" in meta["out_of_sample_summary"]
    assert meta["regime_source"] == "hmm_fold_train"  # no regimes table here: an HMM per fold's training bars


def test_aggregate_report(run) -> None:
    _, part, _, aggregate = run
    meta = _meta(aggregate, "backtest_report")
    html = Path(meta["report_html"]).read_text()
    assert part.symbol in html and "ofi_ridge" in html and "<img" in html
    assert meta["partitions"] == 1
