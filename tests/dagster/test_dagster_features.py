"""Dagster feature assets, their checks and the Feast online-store asset, end to end for one partition.

The partition's raw file sits in a tmp inbox, as in ``test_dagster_ingestion.py``: the real LOBSTER GOOG
sample when ``../shared/data`` is present, else a simulated LOBSTER-format zip (``flowsense.sim``).
"""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest

dg = pytest.importorskip("dagster")
pytest.importorskip("feast")

from flowsense.config import Settings  # noqa: E402
from flowsense.data.lake import Lake, Partition  # noqa: E402
from flowsense.serving import VIEWS, source_file  # noqa: E402
from flowsense.serving.quality import (  # noqa: E402
    finite_gate,
    labels_disjoint_gate,
    monotonic_ts_gate,
    partition_gates,
    row_count_gate,
)
from flowsense_dagster.assets.features import (  # noqa: E402
    FEATURE_ASSETS,
    feature_tables,
    feature_validation,
    gate_result,
    plot_path,
)
from flowsense_dagster.assets.ingestion import raw_ingest, raw_validation  # noqa: E402
from flowsense_dagster.assets.serving import feast_online_store  # noqa: E402
from flowsense_dagster.partitions import register_partitions, to_partition_key  # noqa: E402
from flowsense_dagster.resources import resources_for_profile  # noqa: E402
from tests.conftest import stage_partition  # noqa: E402

N_CHECKS = 9  # features_finite x3, ts_monotonic x4, rows_match_events, labels_disjoint


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Partition, Any]:
    home = tmp_path_factory.mktemp("fs_home")
    part = stage_partition(home / "inbox", sim_scale=0.2)
    instance = dg.DagsterInstance.ephemeral()
    register_partitions(instance, [part])
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setenv("FLOWSENSE_HOME", str(home))
        mp.setenv("FLOWSENSE_PROFILE", "local")
        mp.delenv("FLOWSENSE_FEAST_PROJECT", raising=False)
        warnings.simplefilter("ignore")
        result = dg.materialize(
            [raw_ingest, raw_validation, feature_tables, feature_validation, feast_online_store],
            instance=instance,
            resources=resources_for_profile("local", home=home),
            partition_key=to_partition_key(part),
            raise_on_error=False,
        )
    return home, part, result


def _meta(result: Any, node: str, asset: str) -> dict[str, Any]:
    (mat,) = [m for m in result.asset_materializations_for_node(node) if m.asset_key.path == [asset]]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def test_run_succeeds_and_writes_tables(run: tuple[Path, Partition, Any]) -> None:
    home, part, result = run
    assert result.success
    lake = Lake(home / "lake")
    for table in FEATURE_ASSETS:
        assert lake.exists(table, part), table
    for spec in VIEWS:
        assert source_file(Settings(home=home), spec.name, part).exists()
    events = pl.scan_parquet(lake.path("events", part)).select(pl.len()).collect().item()
    assert lake.read("features_tick", part, columns=["seq"]).height == events


def test_feature_checks_pass(run: tuple[Path, Partition, Any]) -> None:
    _, part, result = run
    evals = result.get_asset_check_evaluations()
    feature_evals = [e for e in evals if e.asset_key.path[0] in FEATURE_ASSETS]
    assert len(feature_evals) == N_CHECKS
    assert {e.check_name for e in feature_evals} == {
        "features_finite", "ts_monotonic", "rows_match_events", "labels_disjoint",
    }  # fmt: skip
    assert all(e.passed for e in evals), [(e.asset_key, e.check_name, e.description) for e in evals if not e.passed]
    assert {e.partition for e in feature_evals} == {to_partition_key(part)}


def test_feature_metadata_and_plot(run: tuple[Path, Partition, Any]) -> None:
    home, part, result = run
    bars = _meta(result, "feature_tables", "features_1s")
    assert bars["rows"] == bars["dagster/partition_row_count"] > 0
    assert bars["n_feature_columns"] >= 40
    assert bars["preview"].startswith("| symbol |")
    assert bars["plot"].startswith("![") and "data:image/png;base64," in bars["plot"]
    png = Path(bars["plot_path"])
    assert png == plot_path(Settings(home=home), part) and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert bars["feast_source"].endswith(f"{part.symbol}__{part.date}.parquet")
    assert "dagster/column_schema" in bars
    tick = _meta(result, "feature_tables", "features_tick")
    assert tick["n_feature_columns"] > 20
    labels = _meta(result, "feature_tables", "labels")
    assert labels["n_label_columns"] > 0 and "n_feature_columns" not in labels


def test_online_store_asset(run: tuple[Path, Partition, Any]) -> None:
    home, part, result = run
    meta = _meta(result, "feast_online_store", "feast_online_store")
    assert meta["online_store"] == "sqlite"
    assert set(meta["views"]) == {"features_1s", "features_1min"}
    assert meta["feature_count"] == sum(len(v.features) for v in VIEWS)
    assert meta["rows_materialized"] == 2  # one symbol x two views
    example = meta["example_online_lookup"]
    last = Lake(home / "lake").read("features_1s", part).sort("ts").tail(1)
    assert example["symbol"] == part.symbol
    assert example["features_1s__mid_close"] == pytest.approx(last["mid_close"][0])
    assert (home / "feast" / "registry.db").exists() and (home / "feast" / "online.db").exists()


# ---- the gates behind the checks, on broken data ---------------------------------------------------


def _bars(n: int = 5) -> pl.DataFrame:
    ts = pl.datetime_range(dt.datetime(2024, 1, 2, 14), dt.datetime(2024, 1, 2, 14, 0, n - 1), "1s",
                           time_zone="UTC", eager=True)
    return pl.DataFrame({"symbol": ["X"] * n, "ts": ts, "mid_close": [10.0] * n, "vwap": [float("nan")] * n,
                         "volume": [1.0] * n})


def test_gates_catch_broken_tables(tmp_path: Path) -> None:
    ok = _bars()
    assert finite_gate(ok, "features_1s").passed  # NaN in a warm-up column (vwap) is fine
    nan_strict = ok.with_columns(pl.Series("volume", [1.0, 1.0, float("nan"), 1.0, 1.0]))
    bad = finite_gate(nan_strict, "features_1s")
    assert not bad.passed and bad.metadata["bad_strict"] == {"volume": 1}
    warm = ok.with_columns(pl.Series("mid_close", [float("nan"), 10.0, 10.0, 10.0, 10.0]),
                           pl.Series("volume", [float("nan"), 1.0, 1.0, 1.0, 1.0]))
    assert finite_gate(warm, "features_1s").passed  # NaN before the book is two-sided: warm-up
    inf = ok.with_columns(pl.Series("vwap", [float("inf")] + [float("nan")] * 4))
    assert not finite_gate(inf, "features_1s").passed
    assert not monotonic_ts_gate(ok.reverse(), "features_1s", strict=True).passed
    dup = pl.concat([ok.head(2), ok.head(2)]).sort("ts")
    assert not monotonic_ts_gate(dup, "features_1s", strict=True).passed
    assert monotonic_ts_gate(dup, "features_tick", strict=False).passed
    assert not row_count_gate(10, 11).passed
    assert not labels_disjoint_gate(["symbol", "ts", "fwd_ret_1s"], {"features_1s": ["ts", "fwd_ret_1s"]}).passed
    assert labels_disjoint_gate(["symbol", "ts", "fwd_ret_1s"], {"features_1s": ["ts", "mid_close"]}).passed
    res = gate_result(bad)
    assert res.check_name == "features_finite" and not res.passed
    assert res.severity == dg.AssetCheckSeverity.ERROR
    missing = partition_gates(Lake(tmp_path / "lake"), Partition("X", dt.date(2024, 1, 2)), ["features_1s"])
    assert missing and not any(g.passed for g in missing)
