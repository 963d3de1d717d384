from __future__ import annotations

from pathlib import Path

import numpy as np

from flowsense.models.base import load_model_dir
from flowsense.models.baselines import OfiSign
from flowsense.models.evaluate import block_bootstrap_ci, compare, evaluate_symbol, make_model, score
from flowsense.models.folds import make_folds

ROW_KEYS = {"model", "symbol", "horizon", "fold", "test_start", "test_end", "n", "n_excluded", "accuracy",
            "accuracy_ci_low", "accuracy_ci_high", "f1", "log_loss"}


def test_score_excludes_abstentions_and_nulls_log_loss_for_no_fit() -> None:
    y = np.array([1, 0, 1, np.nan, 1, 0.0])
    p = np.array([1, 0, 0.5, 1, 0, 0.5])
    s = score(y, p, probabilistic=False, abstains=True)
    assert s["n"] == 3 and s["n_excluded"] == 2 and s["log_loss"] is None
    assert s["accuracy"] == 2 / 3
    s2 = score(y, np.array([0.9, 0.2, 0.6, 0.5, 0.4, 0.3]))
    assert s2["n"] == 5 and s2["n_excluded"] == 0 and s2["log_loss"] > 0


def test_block_bootstrap_is_wider_than_binomial_for_autocorrelated_hits() -> None:
    hits = np.repeat(np.random.default_rng(1).random(50) < 0.6, 200).astype(float)  # runs of 200
    lo, hi = block_bootstrap_ci(hits, block=200)
    se_binom = np.sqrt(hits.mean() * (1 - hits.mean()) / hits.size)
    assert lo <= hits.mean() <= hi
    assert (hi - lo) > 5 * 2 * 1.96 * se_binom
    c = compare(np.ones(1000), np.ones(1000), np.zeros(1000))
    assert c["diff"] == 1.0 and c["ci_low"] == 1.0


def test_walk_forward_rows_baselines_beside_models(syn, tmp_path: Path) -> None:
    folds = make_folds(syn.ts, "8m", "2m", "2m", embargo="5s")[:2]
    res = evaluate_symbol(syn, folds, models=["majority", "ofi_sign", "qi_sign", "logit_ofi", "xgboost"],
                          horizons=["next_move", "1s"], regimes=True,
                          params={"xgboost": {"n_estimators": 20, "nthread": 1}})
    rows = res.rows
    assert len(rows) == len(folds) * 2 * 5
    assert all(set(r) >= ROW_KEYS for r in rows)
    by = {(r["model"], r["horizon"], r["fold"]): r for r in rows}
    r = by[("ofi_sign", "next_move", 0)]
    assert r["log_loss"] is None and r["n"] + r["n_excluded"] == by[("logit_ofi", "next_move", 0)]["n"]
    assert by[("xgboost", "next_move", 0)]["log_loss"] is not None
    assert r["test_start"].endswith("+00:00") and r["test_start"] < r["test_end"]
    # the synthetic mid follows OFI 70 % of the time: the OFI models must find it, majority must not
    assert by[("logit_ofi", "next_move", 0)]["accuracy"] > by[("majority", "next_move", 0)]["accuracy"] + 0.03
    assert "reg_p0" in syn.frame.columns  # the fold's HMM regimes were joined for XGBoost
    summ = res.to_json()["summary"]
    assert {s["best_no_fit_baseline"] for s in summ} <= {"majority", "ofi_sign", "qi_sign"}


def test_save_load_round_trip_and_predict_proba_shape(syn, tmp_path: Path) -> None:
    folds = make_folds(syn.ts, "8m", "2m", "2m", embargo="5s")
    from flowsense.models.evaluate import fit_model

    for name in ("majority", "ofi_sign", "logit_ofi", "xgboost"):
        m = fit_model(make_model(name, syn, **({"n_estimators": 10} if name == "xgboost" else {})), syn, folds[0],
                      "next_move")
        X = syn.X(m.feature_names, folds[0].test)
        back = load_model_dir(m.save(tmp_path / name))
        assert type(back) is type(m) and back.feature_names == m.feature_names
        assert back.train_window == m.train_window
        np.testing.assert_allclose(back.predict_proba(X), m.predict_proba(X), atol=1e-6)
        assert m.predict_proba(X).shape == (X.shape[0], 2)
        assert m.predict_proba(X[0]).shape == (1, 2)
    assert OfiSign().p_up(np.array([[3.0], [0.0], [-1.0]])).tolist() == [1.0, 0.5, 0.0]
