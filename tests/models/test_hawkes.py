from __future__ import annotations

from pathlib import Path

import numpy as np

from flowsense.models.base import load_model_dir
from flowsense.models.hawkes import HawkesModel, collapse_bursts, fit_arrays


def _simulate(T: float = 1000.0, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    from tick.hawkes import SimuHawkesSumExpKernels

    D = 6
    adj = np.zeros((D, D, 2))
    for i in range(D):
        adj[i, i] = [0.25, 0.15]
    adj[0, 1, 0] = adj[1, 0, 0] = 0.1
    sim = SimuHawkesSumExpKernels(adjacency=adj, decays=np.array([2.0, 20.0]), baseline=np.full(D, 0.5),
                                  end_time=T, seed=seed, verbose=False)
    sim.simulate()
    t = np.concatenate(sim.timestamps)
    dim = np.concatenate([np.full(x.size, i) for i, x in enumerate(sim.timestamps)])
    o = np.argsort(t, kind="stable")
    return t[o], dim[o]


def test_recovers_a_known_process_and_passes_the_residual_test(tmp_path: Path) -> None:
    t, dim = _simulate()
    day = np.zeros(t.size, dtype=np.int64)
    proc = fit_arrays(t, dim, day, np.ones(t.size), decays=(2.0, 20.0), n_windows=6, n_boot=5)
    s = proc.summary()
    true_radius = 0.5  # 0.4 self + 0.1 cross between the first two types
    assert abs(s["spectral_radius"] - true_radius) < 0.08
    lo, hi = s["spectral_radius_ci"]
    assert 0.2 < lo < hi < 0.8 and s["n_boot"] == 5  # a finite bootstrap interval over sub-windows
    g = s["gof"]
    assert g["ks_p_hawkes"] > 1e-3 > g["ks_p_poisson"]  # Hawkes residuals ~ Exp(1); Poisson rejected
    assert g["ks_hawkes"] < g["ks_poisson"]
    # the direction model: OFI forecast + calibration; save/load keeps predictions
    X = np.column_stack([t, dim, np.full(t.size, 100.0), day])
    y = (np.random.default_rng(0).random(t.size) < 0.5).astype(float)
    m = HawkesModel().use_process(proc).fit(X, y)
    p = m.p_up(X)
    assert p.shape == (t.size,) and np.all((p > 0) & (p < 1))
    back = load_model_dir(m.save(tmp_path / "hk"))
    np.testing.assert_allclose(back.p_up(X), p, atol=1e-12)


def test_collapse_bursts_one_point_per_order() -> None:
    t = np.array([1.0, 1.0, 1.0, 2.0, 2.0])
    d = np.array([0, 0, 1, 0, 2])
    assert collapse_bursts(t, d).tolist() == [0, -1, 1, 0, 2]
