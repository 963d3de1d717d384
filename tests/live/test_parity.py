"""Parity: the real GOOG level-10 day replayed through the worker (a real process, paper broker) gives
the same orders, fills, final position and PnL as ``flowsense backtest`` on that day with the same
strategy."""

from __future__ import annotations

import subprocess

import pytest

from flowsense.live.state import StateStore
from tests.live.conftest import FLOWSENSE_BIN, GOOG, cli_env, last_json


def test_replay_day_matches_backtest(goog_home, tmp_path):
    symbol, date = GOOG
    common = ["--symbol", symbol, "--date", date, "--strategy", "ofi_threshold", "--param", "threshold=400"]
    env = cli_env(goog_home)
    # both at once (two cores): the worker replays tick by tick, the backtest runs compiled
    wk = subprocess.Popen([str(FLOWSENSE_BIN), "worker", "run", "--source", "replay", *common, "--broker", "paper",
                           "--state", str(tmp_path / "state"), "--json"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    bt = subprocess.run([str(FLOWSENSE_BIN), "backtest", *common, "--json"], env=env, capture_output=True, text=True,
                        timeout=600)
    out, err = wk.communicate(timeout=600)
    assert bt.returncode == 0, bt.stderr[-2000:]
    assert wk.returncode == 0, err[-2000:]
    live, back = last_json(out), last_json(bt.stdout)
    assert live["ticks"] == back["engine"]["n_events"] == 147_916
    assert live["skipped"] == {}
    assert live["n_orders"] == len(back["orders"]) == back["engine"]["n_orders"] > 1000
    assert live["n_fills"] == len(back["fills"]) == back["engine"]["n_fills"]
    assert live["position"] == back["position"]
    assert live["pnl"] == pytest.approx(back["pnl"], rel=1e-12, abs=1e-6)
    assert live["unique_client_order_ids"] == live["n_orders"]
    # order by order and fill by fill
    keys = ("order_id", "ts_submit", "side", "type", "size", "status", "filled")
    assert [tuple(o[k] for k in keys) for o in live["orders"]] == [tuple(o[k] for k in keys) for o in back["orders"]]
    for a, b in zip(live["orders"], back["orders"], strict=True):
        assert a["avg_price"] == pytest.approx(b["avg_price"], rel=1e-12)
        assert a["fees"] == pytest.approx(b["fees"], rel=1e-12)
    fkeys = ("ts", "order_id", "side", "size", "liquidity")
    bfills = back["fills"]  # in execution order, as the worker's fill numbers
    assert [tuple(f[k] for k in fkeys) for f in live["fills"]] == [tuple(f[k] for k in fkeys) for f in bfills]
    assert [f["price"] for f in live["fills"]] == pytest.approx([f["price"] for f in bfills], rel=1e-12)
    # and what the worker wrote to its store is what it reported
    st = StateStore(tmp_path / "state", readonly=True).status()
    assert st["orders"] == live["n_orders"] and st["fills"] == live["n_fills"] and st["position"] == live["position"]


def test_dagster_compares_live_fills_with_the_backtest(goog_home, tmp_path):
    """The worker wrote live_orders/live_fills for the day (above); the Dagster asset compares them with
    the backtest of the same day and strategy: for the paper broker the gaps are zero."""
    import datetime as dt
    import warnings

    import dagster as dg

    from flowsense.data.lake import Lake, Partition
    from flowsense_dagster.assets.ingestion import raw_ingest
    from flowsense_dagster.assets.live import live_vs_backtest
    from flowsense_dagster.partitions import register_partitions, to_partition_key
    from flowsense_dagster.resources import resources_for_profile

    part = Partition(GOOG[0], dt.date.fromisoformat(GOOG[1]))
    if not Lake(goog_home / "lake").exists("live_fills", part):
        pytest.skip("needs the worker's live_fills from test_replay_day_matches_backtest")
    instance = dg.DagsterInstance.ephemeral()
    register_partitions(instance, [part])
    with pytest.MonkeyPatch.context() as mp, warnings.catch_warnings():
        mp.setenv("FLOWSENSE_HOME", str(goog_home))
        warnings.simplefilter("ignore")
        res = dg.materialize([raw_ingest, live_vs_backtest], instance=instance,
                             resources=resources_for_profile("local", home=goog_home),
                             partition_key=to_partition_key(part), selection=[live_vs_backtest])
    assert res.success
    (mat,) = res.asset_materializations_for_node("live_vs_backtest")
    meta = {k: v.value for k, v in mat.metadata.items()}
    assert meta["pnl_gap"] == pytest.approx(0.0, abs=1e-6)
    assert meta["fill_rate_gap"] == 0.0 and meta["avg_price_gap_per_share"] == pytest.approx(0.0, abs=1e-9)
    assert meta["matched_orders"] > 1000
    row = Lake(goog_home / "lake").read("live_vs_backtest", part).row(0, named=True)
    assert row["live_fills"] == row["backtest_fills"] and row["live_slippage_bp"] == pytest.approx(row["backtest_slippage_bp"])


def test_live_vs_backtest_skips_a_day_the_worker_did_not_trade(tmp_path):
    """No live_fills for the day: the step succeeds and materializes nothing (the demo and every
    all_assets_job run include this asset; most days have no worker session)."""
    import datetime as dt
    import warnings

    import dagster as dg

    from flowsense.data.lake import Lake, Partition
    from flowsense_dagster.assets.ingestion import raw_ingest
    from flowsense_dagster.assets.live import live_vs_backtest
    from flowsense_dagster.partitions import register_partitions, to_partition_key
    from flowsense_dagster.resources import resources_for_profile

    part = Partition("NOLIVE", dt.date(2024, 1, 2))
    instance = dg.DagsterInstance.ephemeral()
    register_partitions(instance, [part])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = dg.materialize([raw_ingest, live_vs_backtest], instance=instance,
                             resources=resources_for_profile("local", home=tmp_path),
                             partition_key=to_partition_key(part), selection=[live_vs_backtest])
    assert res.success
    assert res.asset_materializations_for_node("live_vs_backtest") == []
    assert not Lake(tmp_path / "lake").exists("live_vs_backtest", part)
