"""Render bench/models_eval.py JSON files as the Markdown tables of bench/RESULTS.md.

    PYTHONPATH=. .venv/bin/python bench/models_table.py real.json [sim.json ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from statistics import median

from flowsense.models.evaluate import ALL_NAMES
from flowsense.models.targets import HORIZONS


def table(path: str) -> str:
    d = json.loads(Path(path).read_text())
    summ = d["summary"]
    hs = [h for h in HORIZONS if any(r["horizon"] == h for r in summ)]
    by = {(r["model"], r["horizon"]): r for r in summ}
    syms = list(d["folds"])
    out = [f"**{path.rsplit('/', 1)[-1]}**: symbols {', '.join(syms)}; events "
           f"{sum(d['n_events'][s] for s in syms):,}; days per symbol {len(next(iter(d['days'].values())))}; "
           f"folds {sum(len(v) for v in d['folds'].values())} in all; wall {d['total_s']:.0f} s",
           "", "Pooled out-of-sample accuracy (95% block-bootstrap CI), events scored:", "",
           "| model | " + " | ".join(hs) + " |", "|---|" + "---|" * len(hs)]
    for m in ALL_NAMES:
        cells = []
        for h in hs:
            r = by.get((m, h))
            cells.append("" if r is None or r["accuracy"] is None else
                         f"{r['accuracy']:.3f} [{r['accuracy_ci_low']:.3f}, {r['accuracy_ci_high']:.3f}] n={r['n']:,}")
        if any(cells):
            out.append(f"| {m} | " + " | ".join(cells) + " |")
    out += ["", "Paired difference against the best no-fit baseline of the horizon (same events, block-bootstrap "
            "95% CI):", "", "| model | " + " | ".join(hs) + " |", "|---|" + "---|" * len(hs)]
    out.append("| best no-fit | " + " | ".join(by[(m, h)]["best_no_fit_baseline"] or "" for h in hs
                                              for m in [next(mm for mm in ALL_NAMES if (mm, h) in by)]) + " |")
    for m in ALL_NAMES:
        cells = []
        for h in hs:
            r = by.get((m, h))
            cells.append("" if r is None or r.get("vs_best_diff") is None else
                         f"{100 * r['vs_best_diff']:+.1f} pt [{100 * r['vs_best_ci_low']:+.1f}, "
                         f"{100 * r['vs_best_ci_high']:+.1f}]")
        if any(cells):
            out.append(f"| {m} | " + " | ".join(cells) + " |")
    excl = {}
    for r in d["rows"]:
        if r["model"] in ("ofi_sign", "qi_sign"):
            e = excl.setdefault(r["model"], [0, 0])
            e[0] += r["n_excluded"]
            e[1] += r["n"] + r["n_excluded"]
    out += ["", "Events left out because the predictor was 0: " + "; ".join(
        f"{m} {a:,} of {b:,} ({100 * a / max(b, 1):.1f}%)" for m, (a, b) in excl.items())]
    hk = d.get("info", {}).get("hawkes", {})
    if hk:
        out += ["", "Hawkes (6 types, per symbol and fold: spectral radius [bootstrap CI], KS vs Exp(1) of the "
                "time-rescaled residuals, Hawkes vs Poisson):", ""]
        for sym, fits in hk.items():
            for i, s in enumerate(fits):
                g = s.get("gof", {})
                ci = s.get("spectral_radius_ci", [None, None])
                cis = f"[{ci[0]:.2f}, {ci[1]:.2f}]" if ci[0] is not None and ci[0] == ci[0] else "(no CI)"
                out.append(f"- {sym} fold {i}: rho = {s['spectral_radius']:.2f} {cis}, KS {g.get('ks_hawkes', 0):.3f} "
                           f"(p {g.get('ks_p_hawkes', 0):.1e}) vs Poisson {g.get('ks_poisson', 0):.3f} "
                           f"(p {g.get('ks_p_poisson', 0):.1e}); {s['n_events']:,} events")
    t = d.get("timings_s", {})
    out += ["", "Seconds spent per model (whole run): " + ", ".join(f"{k} {v:.0f}" for k, v in t.items())]
    ew = d.get("info", {}).get("ensemble_weights", [])
    if ew:
        n_reg = median(len(e["weights_by_regime"]) for e in ew)
        out.append(f"Ensemble: {len(ew)} fits, median {n_reg:g} regimes with their own weights.")
    return "\n".join(out)


if __name__ == "__main__":
    print("\n\n".join(table(p) for p in sys.argv[1:]))
