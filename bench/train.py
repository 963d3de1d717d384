"""Nightly-retrain benchmark: the full retrain on a simulated lake, per-event inference latency of every
registered model as the live worker calls it, and the ``model_signal`` backtest beside the rule strategies.

    .venv/bin/python bench/train.py --symbols 5 --days 10 --scale 0.2 [--home DIR] [--json]

1. Simulates ``--symbols`` x ``--days`` (``flowsense.sim``, ``--scale`` of the calibrated activity), ingests
   them and computes the feature tables (skipped when ``--home`` already holds that lake).
2. Runs :func:`flowsense.models.training.train` on :func:`~flowsense.models.training.auto_window` (the
   60-day history + 7-day test when 67 days exist; fewer days: ``n-2/1/1`` day folds) for every
   registrable model: DVC snapshot, walk-forward, MLflow version, promotion. Wall time per model.
3. Latency: each champion loaded with :func:`flowsense.models.registry.load_model` (native: xgboost
   ``inplace_predict`` on one thread, onnxruntime), ``predict_proba`` on ONE event at a time, p50/p99 over
   ``--latency-events`` events; baseline in the same run: MLflow pyfunc ``predict`` of the same XGBoost
   version (what the native path avoids), printed as a ratio.
4. ``model_signal`` (xgboost champion) vs ``buy_and_hold`` and ``ofi_threshold`` on every symbol of the
   last day (out of sample for the model), net of the default costs (maker/taker fees, 1 bp slippage,
   latency), via :func:`flowsense.backtest.runner.run_partition`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def build(home: Path, symbols: list[str], days: int, scale: float) -> float:
    from tests.models.simlake import build_lake

    t0 = time.perf_counter()
    build_lake(home, symbols, days, scale=scale)
    return time.perf_counter() - t0


def percentiles(samples: list[float]) -> dict[str, float]:
    a = np.asarray(samples) * 1e6
    return {"p50_us": float(np.percentile(a, 50)), "p99_us": float(np.percentile(a, 99)), "n": int(a.size)}


def latency(settings, name: str, n_events: int) -> dict[str, float] | None:
    from flowsense.data.lake import Lake
    from flowsense.models import registry
    from flowsense.models.dataset import add_cross_asset, load_symbol
    from flowsense.models.training import available_dates

    if registry.champion_version(name, settings) is None:
        return None
    predictor, info = registry.load_model(f"{name}@champion", settings)
    day = available_dates(settings, info.symbols)[-1]
    lake = Lake(settings.lake)
    datas = {s: load_symbol(lake, s, [day]) for s in info.symbols}
    if any(c.startswith("g0_") for c in predictor.feature_names):
        add_cross_asset(datas)
    X = datas[info.symbols[0]].X(predictor.feature_names)[:n_events]
    seq = info.tags.get("seq_len")
    times = []
    for i in range(X.shape[0]):
        x = X[max(0, i - int(seq) + 1): i + 1] if seq else X[i]
        if seq and x.shape[0] < int(seq):
            x = np.vstack([np.zeros((int(seq) - x.shape[0], X.shape[1])), x])
        t = time.perf_counter()
        predictor.predict_proba(x)
        times.append(time.perf_counter() - t)
    out = percentiles(times[10:]) | {"predictor": type(predictor).__name__}
    if name == "xgboost" and getattr(predictor, "booster", None) is not None:
        # the previous design in the same run: the booster's own inplace_predict, one row at a time
        from flowsense.models.registry import BoosterPredictor

        native = BoosterPredictor(predictor.booster, predictor.feature_names, predictor.classes)
        nt = []
        for i in range(X.shape[0]):
            t = time.perf_counter()
            native.predict_proba(X[i])
            nt.append(time.perf_counter() - t)
        nb = percentiles(nt[10:])
        out |= {"inplace_p50_us": nb["p50_us"], "inplace_p99_us": nb["p99_us"],
                "inplace_over_onnx_p99": nb["p99_us"] / out["p99_us"]}
    if name == "xgboost":  # the baseline: the same version through MLflow pyfunc
        import mlflow.pyfunc

        py = mlflow.pyfunc.load_model(f"models:/flowsense-xgboost/{info.version}")
        import pandas as pd

        cols = predictor.feature_names
        pt = []
        for i in range(min(300, X.shape[0])):
            df = pd.DataFrame(X[i:i + 1], columns=cols)
            t = time.perf_counter()
            py.predict(df)
            pt.append(time.perf_counter() - t)
        base = percentiles(pt[10:])
        out |= {"pyfunc_p50_us": base["p50_us"], "pyfunc_p99_us": base["p99_us"],
                "pyfunc_over_native_p50": base["p50_us"] / out["p50_us"]}
    return out


def backtests(settings, day) -> list[dict]:
    from flowsense.backtest.engine import BacktestConfig
    from flowsense.backtest.runner import run_partition
    from flowsense.data.lake import Lake

    lake = Lake(settings.lake)
    rows = []
    for sym in sorted({p.symbol for p in lake.partitions("events") if p.date == day}):
        for strat, params in (("model_signal", {"model": "flowsense-xgboost@champion"}), ("buy_and_hold", {}),
                              ("ofi_threshold", {})):
            t0 = time.perf_counter()
            p = run_partition(lake, settings.reports, sym, day, strat, params, BacktestConfig()).payload
            rows.append({"symbol": sym, "date": day.isoformat(), "strategy": strat, "pnl_net": p["pnl"],
                         "fees": p.get("fees_paid"), "n_trades": p.get("n_trades"), "total_return": p.get("total_return"),
                         "seconds": round(time.perf_counter() - t0, 1)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--symbols", type=int, default=5)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--scale", type=float, default=0.2)
    ap.add_argument("--home", default=None, help="FLOWSENSE_HOME to use (default: a fresh folder under /tmp)")
    ap.add_argument("--models", default=None, help="comma separated (default: every registrable model)")
    ap.add_argument("--latency-events", type=int, default=3000)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    home = Path(args.home or f"/tmp/flowsense-bench-train-{args.symbols}x{args.days}-{args.scale}").resolve()
    os.environ["FLOWSENSE_HOME"] = str(home)
    from flowsense.config import Settings
    from flowsense.models.training import REGISTRABLE, auto_window, train
    from flowsense_dagster.assets.models import registrable_models

    symbols = [f"S{i:02d}" for i in range(args.symbols)]
    sim_s = 0.0
    if not (home / "lake" / "features_tick").is_dir():
        sim_s = build(home, symbols, args.days, args.scale)
    settings = Settings.from_env()
    from flowsense.models.training import lake_symbols

    symbols = lake_symbols(settings)[: args.symbols]  # a --home built elsewhere keeps its own symbol names
    models = [m for m in (args.models.split(",") if args.models else registrable_models()) if m in REGISTRABLE]
    window = auto_window(settings, symbols)
    import resource

    t0 = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    results = train(settings, window, models=models)
    train_s = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    train_cpu_s = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    lat = {m: latency(settings, m, args.latency_events) for m in models}
    from flowsense.models.registry import resolve

    last_day = resolve("xgboost@champion", settings)
    from flowsense.models.training import available_dates

    day = available_dates(settings, symbols)[-1]
    bt = backtests(settings, day) if "xgboost" in models and last_day.train_end and day > last_day.train_end else []
    out = {
        "cores": os.cpu_count(), "symbols": len(symbols), "days": args.days, "scale": args.scale,
        "simulate_ingest_features_s": round(sim_s, 1), "window": window.describe(), "train_total_s": round(train_s, 1),
        "train_cpu_s": round(train_cpu_s, 1), "load_average": os.getloadavg()[0],
        "models": {r.model: {"seconds": round(r.seconds, 1), "version": r.version.version,
                             "accuracy": r.metrics.get("accuracy"), "n": r.metrics.get("n"),
                             "promoted": r.decision.promoted if r.decision else None} for r in results},
        "latency": lat, "backtests": bt,
        "events_per_s_train": sum(r.metrics.get("n", 0) for r in results) / train_s if train_s else None,
    }
    if args.json:
        print(json.dumps(out, default=str))
    else:
        print(f"retrain of {', '.join(models)} on {len(symbols)} symbols x {args.days} days (scale {args.scale}): "
              f"{train_s:.0f} s wall, {train_cpu_s:.0f} s CPU on {os.cpu_count()} cores, load average "
              f"{os.getloadavg()[0]:.1f} (goal <= 600 s)")
        for m, r in out["models"].items():
            print(f"  {m:12s} {r['seconds']:7.1f} s  accuracy {r['accuracy']:.4f} on {int(r['n']):,} OOS events  "
                  f"v{r['version']} promoted={r['promoted']}")
        for m, lt in lat.items():
            if lt:
                extra = (f"  pyfunc p50 {lt['pyfunc_p50_us']:.0f} us = {lt['pyfunc_over_native_p50']:.0f}x native"
                         if "pyfunc_p50_us" in lt else "")
                if "inplace_p99_us" in lt:
                    extra += (f"  ({lt['predictor']}; inplace_predict p50 {lt['inplace_p50_us']:.0f} / p99 "
                              f"{lt['inplace_p99_us']:.0f} us = {lt['inplace_over_onnx_p99']:.1f}x at p99)")
                print(f"  latency {m:12s} p50 {lt['p50_us']:7.1f} us  p99 {lt['p99_us']:7.1f} us{extra}")
        for b in bt:
            print(f"  backtest {b['symbol']} {b['date']} {b['strategy']:14s} net pnl {b['pnl_net']:12.2f}  "
                  f"fees {b['fees'] or 0:10.2f}  trades {b['n_trades']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
