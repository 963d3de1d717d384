"""Walk-forward evaluation of every model beside every baseline on a lake (real LOBSTER or simulated days).

    PYTHONPATH=. .venv/bin/python bench/models_eval.py --home /tmp/fs --symbols AAPL,AMZN,GOOG \
        --train 2h --val 30m --test 1h --embargo 10s --out results.json
    PYTHONPATH=. .venv/bin/python bench/models_eval.py --home /tmp/sim --symbols SIMA,... --train 12 --val 2 \
        --test 3 --out sim.json

Writes the JSON of :meth:`flowsense.models.evaluate.EvaluationResult.to_json` (rows, folds, summary, timings,
Hawkes/HMM diagnostics) and prints the pooled summary per horizon: accuracy with its block-bootstrap CI and
the paired difference against the best no-fit baseline.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from flowsense.data.lake import Lake
from flowsense.models.dataset import add_cross_asset, load_symbol
from flowsense.models.evaluate import ALL_NAMES, EvaluationResult, run_evaluation
from flowsense.models.targets import HORIZONS

FAST = {"xgboost": {"max_train_rows": 10_000, "n_estimators": 100},
        "transformer": {"max_train_seq": 3000, "epochs": 2, "seq_len": 16, "threads": 1},
        "graph": {"max_train_rows": 10_000, "epochs": 3, "threads": 1}}


def _size(x: str) -> int | str:
    return int(x) if x.isdigit() else x


def _merge(a: EvaluationResult, b: EvaluationResult) -> EvaluationResult:
    a.rows += b.rows
    a.predictions |= b.predictions
    a.labels |= b.labels
    a.folds |= b.folds
    for k, v in b.info.items():
        if isinstance(v, dict):
            a.info.setdefault(k, {}).update(v)
        else:
            a.info.setdefault(k, []).extend(v)
    for k, v in b.timings.items():
        a.timings[k] = a.timings.get(k, 0.0) + v
    return a


def _dump(res: EvaluationResult, datas: dict, a: argparse.Namespace, t0: float, t_load: float) -> dict:
    out = res.to_json() | {"info": res.info, "load_s": t_load, "total_s": time.perf_counter() - t0,
                           "n_events": {s: d.frame.height for s, d in datas.items()},
                           "days": {s: [str(x) for x in d.dates] for s, d in datas.items()}, "args": vars(a)}
    Path(a.out).write_text(json.dumps(out, indent=1, default=str))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--home", required=True)
    ap.add_argument("--symbols", required=True)
    ap.add_argument("--train", default="2h")
    ap.add_argument("--val", default="30m")
    ap.add_argument("--test", default="1h")
    ap.add_argument("--embargo", default="10s")
    ap.add_argument("--models", default=",".join(ALL_NAMES))
    ap.add_argument("--horizons", default=",".join(HORIZONS))
    ap.add_argument("--days", type=int, default=0, help="use only the first N days of each symbol (0 = all)")
    ap.add_argument("--hawkes-boot", type=int, default=10, help="bootstrap refits for the spectral-radius CI")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    t0 = time.perf_counter()
    lake = Lake(Path(a.home) / "lake")
    syms = a.symbols.split(",")
    dates = sorted({p.date for p in lake.partitions("features_tick") if p.symbol in syms})
    if a.days:
        dates = dates[: a.days]
    datas = {s: load_symbol(lake, s, dates) for s in syms}
    add_cross_asset(datas)
    t_load = time.perf_counter() - t0
    params = {**FAST, "hawkes_process": {"n_boot": a.hawkes_boot}}
    emb = _size(a.embargo) if a.embargo != "0" else 0
    res = None
    for sym in syms:  # one symbol at a time, the JSON rewritten after each (partial results survive)
        r = run_evaluation({sym: datas[sym]}, train=_size(a.train), val=_size(a.val), test=_size(a.test),
                           embargo=emb, allow_partial=not a.train.isdigit(), models=a.models.split(","),
                           horizons=a.horizons.split(","), params=params,
                           progress=lambda m: print(f"{time.perf_counter() - t0:7.0f}s {m}", file=sys.stderr,
                                                    flush=True))
        res = r if res is None else _merge(res, r)
        _dump(res, datas, a, t0, t_load)
    out = _dump(res, datas, a, t0, t_load)
    for r in out["summary"]:
        print(f"{r['horizon']:>9} {r['model']:>11} n={r['n']:>7} acc={r['accuracy']:.4f} "
              f"[{r['accuracy_ci_low']:.4f}, {r['accuracy_ci_high']:.4f}]"
              + (f" vs {r['best_no_fit_baseline']}: {r['vs_best_diff']:+.4f} [{r['vs_best_ci_low']:+.4f}, "
                 f"{r['vs_best_ci_high']:+.4f}]" if r.get("vs_best_diff") is not None else ""))
    print(f"total {out['total_s']:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
