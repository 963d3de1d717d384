"""Hot reload: promoting a new champion in the MLflow registry mid-stream switches the worker's model
between two ticks - no restart, no missed tick - every order records the version in effect, and a
restart replays the logged swap at the same tick."""

from __future__ import annotations

import datetime as dt
import types

import numpy as np
import pytest

from flowsense.live.risk import Signal
from flowsense.live.runner import ReplaySource, Runner, RunOptions
from flowsense.live.state import StateStore
from flowsense.live.ticks import lake_records
from flowsense.live.worker import Worker, WorkerConfig
from tests.live.conftest import GOOG

FEATURES = ["spread", "depth_imb_1", "ofi_l1"]
N = 3000


class ModelProbe:
    """A minimal model strategy: the champion's P(up) on this tick's streaming features -> a Signal
    (sized by the risk manager's Kelly rule) every 250 ticks; remembers the version used per tick."""

    def __init__(self) -> None:
        self.predictor = None
        self.version = None
        self.used: list[tuple[int, str | None]] = []

    def set_model(self, predictor, version) -> None:
        self.predictor, self.version = predictor, version

    def on_book(self, view):
        self.used.append((int(view.book["seq"][view.seq]), self.version))
        if self.predictor is None or view.seq % 250:
            return []
        idx = [view.feature_names.index(f) for f in self.predictor.feature_names]
        p_up = float(self.predictor.predict_proba(view.features[idx])[0, 1])
        return [Signal(prob_up=p_up, payoff=1.0)]


def _register(settings, label: float):
    import xgboost as xgb

    from flowsense.models import registry

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, len(FEATURES)))
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 2}, xgb.DMatrix(X, label=np.full(200, label),
                                                                                        feature_names=FEATURES), 5)
    return registry.log_version(types.SimpleNamespace(booster=booster), model_type="hotreloadtest",
                                feature_names=FEATURES, horizon="100ev", data_version=None,
                                train_start=dt.date(2012, 6, 1), train_end=dt.date(2012, 6, 20), settings=settings)


@pytest.fixture
def registry_home(tmp_path, monkeypatch):
    from flowsense.config import Settings

    monkeypatch.setenv("FLOWSENSE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLOWSENSE_MLFLOW_URI", raising=False)
    monkeypatch.delenv("FLOWSENSE_MLFLOW_ARTIFACTS", raising=False)
    return Settings.from_env()


def test_promotion_mid_stream_swaps_between_two_ticks(goog_home, registry_home, tmp_path):
    pytest.importorskip("mlflow")
    from flowsense.live.models import ChampionHandle
    from flowsense.models import registry

    settings = registry_home
    v1 = _register(settings, 1.0)  # says "up"
    v2 = _register(settings, 0.0)  # says "down"
    c = registry.client(settings)
    c.set_registered_model_alias(v1.name, "champion", v1.version)

    rec = lake_records(str(goog_home / "lake"), *GOOG)[:N].copy()
    rec["n"] = N
    state = tmp_path / "st"
    handle = ChampionHandle("hotreloadtest", poll_s=0.05, settings=settings)
    handle.start()
    probe = ModelProbe()
    cfg = WorkerConfig(*GOOG, "model_probe", broker="paper")
    from flowsense.live.paper import PaperBroker

    w = Worker(cfg, StateStore(state), PaperBroker(levels=10), probe, 10, model=handle)
    cut = 1200
    for a in range(0, cut, 200):
        w.process(rec[a:a + 200])
        w.commit(str(a + 199))
    # promote v2 while the worker is mid-stream; the background poller loads it, the worker swaps
    c.set_registered_model_alias(v1.name, "champion", v2.version)
    assert handle.wait_ready(30), handle.last_error
    for a in range(cut, 2000, 200):
        w.process(rec[a:a + 200])
        w.commit(str(a + 199))
    handle.stop()
    versions = [v for _, v in probe.used]
    seqs = [s for s, _ in probe.used]
    assert seqs == list(range(len(seqs)))  # every tick decided once, in order: none missed
    k = versions.index(v2.version)
    assert set(versions[:k]) == {v1.version} and set(versions[k:]) == {v2.version}  # one switch
    assert cut - 1 <= k <= cut + 1  # at the first decision after the promotion was loaded
    orders = StateStore(state, readonly=True).all_orders()
    assert {o["model_version"] for o in orders} == {v1.version, v2.version}
    first_v2 = min(o["seq"] for o in orders if o["model_version"] == v2.version)
    assert all(o["model_version"] == v1.version for o in orders if o["seq"] < first_v2)
    assert any(o["side"] == 1 for o in orders if o["model_version"] == v1.version)
    assert any(o["side"] == -1 for o in orders if o["model_version"] == v2.version)

    # restart: the champion is v2 now, but the replay must decide the first part with v1 again
    handle2 = ChampionHandle("hotreloadtest", poll_s=0.05, settings=settings)
    handle2.start()
    w2 = Worker(cfg, StateStore(state), PaperBroker(levels=10), ModelProbe(), 10, model=handle2)
    out = Runner(w2, ReplaySource(rec, *GOOG), RunOptions()).run()
    handle2.stop()
    assert out["restarts"] == 1 and out["session_done"]
    assert [s[1] for s in w2.swaps_applied[:2]] == [v1.version, v2.version]
    assert out["unique_client_order_ids"] == out["n_orders"] >= len(orders)
