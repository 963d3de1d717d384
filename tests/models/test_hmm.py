from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl

from flowsense.data.lake import Lake, Partition
from flowsense.models.hmm import REGIMES_TABLE, RegimeHMM, hmm_regimes, regimes_frame, write_regimes


def _switching(n: int = 3000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = (np.arange(n) // 250) % 2  # calm / volatile blocks
    lv = np.where(state == 1, -8.2, -9.0) + rng.normal(0, 0.4, n)
    r = rng.normal(0, 1, n) * np.exp(lv + 9)
    return np.column_stack([r, lv]), state


def test_filter_is_causal_ordered_by_volatility_and_beats_one_state() -> None:
    X, state = _switching()
    hmm = RegimeHMM(n_states=2, n_restarts=2, n_iter=20).fit(X[:2000], np.zeros(2000), X[2000:], np.zeros(1000))
    p = hmm.filter(X)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    # causality by truncation: the filtered probabilities up to t do not change when the future is removed
    for k in (10, 777, 2500):
        np.testing.assert_allclose(hmm.filter(X[:k]), p[:k], atol=1e-12)
    # hmmlearn's predict_proba smooths (forward-backward): it does change, i.e. it looks ahead
    # (cut 2 bars after a regime switch at 750: the smoothed posterior there already knows the future)
    sm = hmm.model.predict_proba((X - hmm.mu) / hmm.sd)
    sm_cut = hmm.model.predict_proba((X[:752] - hmm.mu) / hmm.sd)
    assert np.abs(sm[:752] - sm_cut).max() > 1e-3
    # state 0 is the calm one, and the filter recovers the blocks
    assert hmm.model.means_[0, 1] < hmm.model.means_[1, 1]
    assert np.mean(p.argmax(axis=1) == state) > 0.75
    assert hmm.info["heldout_loglik_per_bar"] > hmm.info["heldout_loglik_per_bar_1state"]
    assert len(hmm.info["restart_heldout_loglik"]) == 2


def test_regimes_table_in_the_lake_and_walk_forward_labels(tmp_path: Path) -> None:
    X, _ = _switching(1200, seed=1)
    ts = (np.arange(1200) + 1) * 1_000_000_000 + 1_700_000_000_000_000_000
    bars = pl.DataFrame({"symbol": "AAA", "date": dt.date(2023, 11, 14),
                         "ts": pl.Series(ts).cast(pl.Datetime("ns", "UTC")),
                         "ret_20": X[:, 0] * 1e-4, "rv_20": np.exp(X[:, 1])})
    hmm = RegimeHMM(n_states=2, n_restarts=1, n_iter=15).fit(X[:800], np.zeros(800))
    lake = Lake(tmp_path / "lake")
    part = Partition("AAA", dt.date(2023, 11, 14))
    write_regimes(lake, {part: bars}, hmm)
    back = lake.read(REGIMES_TABLE, part)
    assert back.columns == ["symbol", "date", "ts", "regime", "p_regime_0", "p_regime_1"]
    assert back.height == 1200 and set(back["regime"].unique().to_list()) == {0, 1}
    assert regimes_frame(bars, hmm).equals(back)
    close = pl.Series(100 * np.exp(np.cumsum(X[:, 0] * 1e-4)))
    lab = hmm_regimes(close, n_states=2)
    assert lab.len() == 1200 and lab[0] == "warmup" and {"regime_0", "regime_1"} <= set(lab.to_list())
