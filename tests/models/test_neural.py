from __future__ import annotations

from pathlib import Path

import numpy as np

from flowsense.models.base import load_model_dir
from flowsense.models.ensemble import EnsembleModel
from flowsense.models.graph import GraphModel
from flowsense.models.transformer import TransformerModel, windows

TINY = {"seq_len": 8, "d_model": 8, "n_heads": 2, "ff": 16, "epochs": 1, "max_train_seq": 400, "threads": 1}


def _data(n: int = 600, f: int = 4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    X[5, 1] = np.nan
    y = (X[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(float)
    y[::7] = np.nan
    return X, y


def test_transformer_onnx_matches_torch_and_reloads(tmp_path: Path) -> None:
    X, y = _data()
    m = TransformerModel([f"f{i}" for i in range(4)], **TINY).fit(X, y, X[:200], y[:200])
    W = windows(X[:64], m.seq_len)
    import onnxruntime as ort

    sess = ort.InferenceSession(m.to_onnx(), providers=["CPUExecutionProvider"])
    onnx_p = sess.run(None, {"x": np.ascontiguousarray(W)})[0]
    np.testing.assert_allclose(onnx_p, m.predict_windows(W), atol=1e-5, rtol=0)
    back = load_model_dir(m.save(tmp_path / "tr"))
    assert back.net is None and back.session is not None  # native onnxruntime inference
    np.testing.assert_allclose(back.p_up(X[:64]), m.p_up(X[:64]), atol=1e-5)
    assert m.predict_proba(X[:3]).shape == (3, 2)


def test_graph_model_learns_from_own_features_and_exports(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    n, K = 800, 3
    nodes = rng.normal(size=(n, 2 * K))
    corr = rng.uniform(-0.2, 0.6, size=(n, K * (K - 1) // 2))
    own = rng.normal(size=(n, 3))
    X = np.column_stack([nodes, corr, own])
    y = (own[:, 0] + nodes[:, 2] > 0).astype(float)  # own OFI and the next symbol's lagged OFI
    names = [f"g{k}_{f}" for k in range(K) for f in ("ofi", "ret")] + ["gc_0_1", "gc_0_2", "gc_1_2"] + \
        ["ofi_sum_10", "qi_l1", "micro_rel"]
    m = GraphModel(names, epochs=10, batch=64, threads=1).fit(X, y)
    acc = np.mean((m.p_up(X) > 0.5) == (y > 0.5))
    assert acc > 0.75
    back = load_model_dir(m.save(tmp_path / "g"))
    np.testing.assert_allclose(back.p_up(X), m.p_up(X), atol=1e-5)


def test_ensemble_weights_follow_the_regime() -> None:
    rng = np.random.default_rng(2)
    n = 2000
    y = (rng.random(n) < 0.5).astype(float)
    reg = (np.arange(n) // 500) % 2
    good = np.where(y == 1, 0.8, 0.2)
    noise = rng.random(n)
    pa = np.where(reg == 0, good, noise)  # A is right in regime 0
    pb = np.where(reg == 1, good, noise)  # B is right in regime 1
    m = EnsembleModel(["p_a", "p_b", "reg_state"], min_events=200).fit(np.column_stack([pa, pb, reg]), y)
    w = m.info["weights_by_regime"]
    assert w["0"][0] > 0.9 and w["1"][1] > 0.9
    p = m.p_up(np.column_stack([pa, pb, reg]))
    assert np.mean((p > 0.5) == (y > 0.5)) > 0.95


def test_cross_asset_correlations_stay_finite_where_a_mid_does_not_move() -> None:
    """A stretch of 1 s bars with a constant mid makes polars' rolling correlation NaN or -inf; the edge
    weights must stay finite in [-1, 1] (an -inf edge turned every graph prediction into NaN)."""
    import datetime as dt

    import polars as pl

    from flowsense.models.dataset import SymbolData, add_cross_asset

    n = 900
    t0 = dt.datetime(2024, 1, 2, 14, 30, tzinfo=dt.UTC)
    ts = pl.Series("ts", [t0 + dt.timedelta(seconds=i) for i in range(n)], dtype=pl.Datetime("ns", "UTC"))
    rng = np.random.default_rng(0)
    datas = {}
    for s, still in (("AAA", slice(200, 600)), ("BBB", slice(0, 0))):
        ret = rng.normal(0, 1e-4, n)
        ret[still] = 0.0  # the mid does not move: the window's variance is 0 up to rolling-sum dust
        bars = pl.DataFrame({"date": [dt.date(2024, 1, 2)] * n, "ts": ts, "ret_1": ret,
                             "ofi_l1": rng.normal(0, 10, n)})
        frame = pl.DataFrame({"ts": ts})
        datas[s] = SymbolData(s, frame, {}, {}, bars, [dt.date(2024, 1, 2)])
    add_cross_asset(datas, corr_window=120)
    for d in datas.values():
        c = d.frame["gc_0_1"].to_numpy()
        assert np.isfinite(c).all() and (np.abs(c) <= 1.0).all()
        assert (c[650:] != 0).any()  # real correlations once both mids move again
