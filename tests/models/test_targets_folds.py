from __future__ import annotations

import numpy as np
import pytest

from flowsense.models.baselines import Majority
from flowsense.models.evaluate import fit_model
from flowsense.models.folds import LeakageError, assert_not_peeking, check_fold, make_folds, purge
from flowsense.models.targets import next_move, targets

S = 1_000_000_000


def test_next_move_hand_computed() -> None:
    ts = np.arange(8, dtype=np.int64) * S
    mid = np.array([10.0, 10.0, 10.5, 10.5, np.nan, 10.5, 10.0, 10.0])
    y, end = next_move(ts, mid)
    # 0,1 -> first change at 2 (up); 2,3,5 -> change at 6 (down; the NaN at 4 is carried over); 4 not scored
    assert y[:4].tolist() == [1.0, 1.0, 0.0, 0.0]
    assert np.isnan(y[4]) and y[5] == 0.0
    assert np.isnan(y[6]) and np.isnan(y[7])  # no later change
    assert end[0] == 2 * S and end[2] == 6 * S


def test_fixed_horizons_conditional_on_a_move() -> None:
    ts = np.array([0, 50, 200, 300, 1200], dtype=np.int64) * 1_000_000  # ms
    mid = np.array([1.0, 1.0, 1.1, 1.1, 1.0])
    out = targets(ts, mid, ("100ms", "1s", "10ev"))
    y = out["100ms"][0]
    # t=0: mid at 100 ms is 1.0 (no move: not scored); t=50: mid at 150 ms = 1.0 -> not scored;
    # t=200: at 300 ms 1.1 -> unchanged -> not scored; t=300: 400ms -> 1.1 unchanged; t=1200: beyond the day
    assert np.isnan(y).all()
    y1, e1 = out["1s"]
    # t=0, 50 ms: mid at 1.0x s is 1.1 (up); t=200: at 1.2 s 1.0 vs 1.1 (down); t=300: 1.3 s is unknown
    assert y1[0] == 1.0 and y1[1] == 1.0 and y1[2] == 0.0 and np.isnan(y1[3]) and np.isnan(y1[4])
    assert e1[0] == ts[0] + S
    assert np.isnan(out["10ev"][0]).all()


def test_folds_purged_ordered_and_embargoed() -> None:
    ts = np.sort(np.random.default_rng(0).integers(0, 6 * 3600 * S, 20_000)).astype(np.int64)
    folds = make_folds(ts, "2h", "30m", "1h", embargo="10s")
    assert len(folds) == 3  # starts 0h, 1h, 2h; the next test window would end after 6h
    for f in folds:
        check_fold(f, ts)
        assert ts[f.train].max() < f.train_end <= ts[f.val].min() - 10 * S + 1
        assert ts[f.val].max() < f.val_end <= ts[f.test].min() - 10 * S + 1
    # a label ending in the next window is purged
    y = np.ones(5)
    end = np.array([1, 2, 3, 10, 11])
    assert np.isnan(purge(y, end, 10)).tolist() == [False, False, False, True, True]


def test_day_and_event_folds() -> None:
    day = 86_400 * S
    ts = np.concatenate([d * day + np.arange(100) * S for d in range(13)]).astype(np.int64)
    folds = make_folds(ts, 5, 2, 2, embargo=1)
    assert [f.describe()["n_train"] for f in folds] == [500, 500]
    assert (folds[0].val_start - folds[0].train_end) == day  # one embargo day
    ev = make_folds(ts, 300, 100, 100, unit="events", embargo=10)
    assert ev[0].train.size == 300 and ev[0].val[0] == 310 and ev[0].test[0] == 420


def test_model_peeking_at_its_test_window_is_caught(syn) -> None:
    folds = make_folds(syn.ts, "8m", "2m", "2m", embargo="5s")
    assert len(folds) >= 2
    honest = fit_model(Majority(), syn, folds[0], "next_move")
    assert_not_peeking(honest, folds[0])
    # a model fitted on the next fold has learned from fold 0's test window: refused
    peeking = fit_model(Majority(), syn, folds[1], "next_move")
    with pytest.raises(LeakageError, match="reaches into fold 0's test window"):
        assert_not_peeking(peeking, folds[0])
    # ... and so is one with no recorded training window
    with pytest.raises(LeakageError):
        assert_not_peeking(Majority().fit(np.zeros((3, 1)), np.array([1.0, 0.0, 1.0])), folds[0])
