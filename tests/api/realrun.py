"""A small real run through the library, for the API tests and the API benchmark: simulate two symbol-days
(LOBSTER format), ingest them, compute features, fill the Feast online store (SQLite), run event-driven
backtests of two strategies and an intraday walk-forward next to its baselines. Everything lands under
``home`` exactly where the CLI and the Dagster assets put it.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

SYMBOLS = ("AAA", "BBB")


def build(home: Path, *, symbols: tuple[str, ...] = SYMBOLS, scale: float = 0.05, feast: bool = True,
          seed: int = 11, backtest_symbols: int = 1,
          models_too: bool = True) -> dict[str, Any]:
    """``backtest_symbols``: how many of the symbols get features, Feast rows, the two event-driven backtests
    (each writes an HTML + PDF report, the slow part) and the walk-forward; the others are only ingested."""
    import numpy as np
    import polars as pl

    from flowsense.backtest.engine import BacktestConfig
    from flowsense.backtest.predictors import OfiLinearPredictor
    from flowsense.backtest.runner import run_partition
    from flowsense.backtest.walkforward import walk_forward
    from flowsense.config import Settings
    from flowsense.data.ingest import ingest_file
    from flowsense.data.lake import Lake
    from flowsense.features import compute_partition
    from flowsense.sim import simulate

    t0 = time.perf_counter()
    settings = Settings(home=home.resolve())
    lake = Lake(settings.lake)
    zips = simulate(list(symbols), 1, settings.inbox, scale=scale, seed=seed)
    parts = []
    for k, z in enumerate(zips):
        for res in ingest_file(z, lake):
            parts.append(res.partition)
            if k < backtest_symbols:  # the other symbols are ingested only (instruments, partitions, books)
                compute_partition(lake, res.partition, clocks=("1s",))
    runs = []
    for part in parts[:backtest_symbols]:
        for strategy, params in (("ofi_threshold", {}), ("buy_and_hold", {})):
            run = run_partition(lake, settings.reports, part.symbol, part.date, strategy, params, BacktestConfig())
            runs.append(run.payload)
        bars = lake.read("features_1s", part).sort("ts").filter(pl.col("mid_close").is_not_null())
        folds, summary = [], []
        for costs, fee, slip in (("gross", 0.0, 0.0), ("net", 0.0008, 1.0)):
            band = fee + slip * 1e-4

            def to_position(pred: np.ndarray, band: float = band) -> np.ndarray:
                return np.where(np.abs(pred) > band, np.sign(pred), 0.0)

            res = walk_forward(bars, OfiLinearPredictor(), train="2h", test="30m", price_col="mid_close",
                               strategy_name="ofi_ridge", fee_rate=fee, slippage_bps=slip,
                               periods_per_year=252 * 23_400, to_position=to_position)
            keys = [pl.lit(costs).alias("costs"), pl.lit(part.symbol).alias("symbol"), pl.lit(part.date).alias("date")]
            folds.append(res.fold_metrics.with_columns(keys))
            summary.append(res.summary.with_columns(keys))
        lake.write_derived("walkforward_folds", part, pl.concat(folds, how="diagonal_relaxed"))
        lake.write_derived("walkforward_summary", part, pl.concat(summary, how="diagonal_relaxed"))
    if feast:
        from flowsense.serving import apply, feature_store, latest_ts, materialize, sync_sources

        sync_sources(settings, lake)
        store = feature_store(settings)
        apply(settings, store=store)
        start = dt.datetime.combine(min(p.date for p in parts), dt.time(), tzinfo=dt.UTC)
        materialize(settings, start, latest_ts(settings) or start + dt.timedelta(days=1), store=store)
    models = register_models(settings, lake, parts[0]) if models_too else []
    worker = run_worker(settings, parts[0])
    return {"settings": settings, "partitions": parts, "backtests": runs, "models": models, "worker": worker,
            "seconds": time.perf_counter() - t0}


FEATURES = ["ofi_l1", "ofi_int", "depth_imb_1_mean"]


def register_models(settings: Any, lake: Any, part: Any) -> list[Any]:
    """Two versions of a real (small) model in the MLflow registry: a logistic regression on OFI features
    of the 1 s bars predicting the sign of the next bar's mid move, fitted on the first 70 % of the day and
    scored on the rest beside no-fit baselines; the scores are logged as the version's ``evaluation.json``.
    Version 1 becomes champion through the registry's own promotion (the first version always does)."""
    import numpy as np
    import polars as pl

    from flowsense.models import registry
    from flowsense.models.baselines import LogitOfi

    bars = lake.read("features_1s", part).sort("ts").filter(pl.col("mid_close").is_not_null())
    move = (bars["mid_close"].shift(-1) - bars["mid_close"]).to_numpy()
    y = np.where(move > 0, 1.0, np.where(move < 0, -1.0, np.nan))
    X = bars.select([pl.col(c).cast(pl.Float64) for c in FEATURES]).to_numpy()
    cut = int(0.7 * len(y))
    test_ok = np.isfinite(y[cut:])
    yt = y[cut:][test_ok]
    ts = bars["ts"]
    out = []
    for C in (1.0, 0.01):
        model = LogitOfi(FEATURES, C=C).fit(X[:cut], y[:cut])
        p = model.p_up(X[cut:])[test_ok]
        acc = float(np.mean(np.where(p > 0.5, 1.0, -1.0) == yt))
        ll = float(-np.mean(np.log(np.clip(np.where(yt > 0, p, 1 - p), 1e-12, 1))))
        share_up = float(np.mean(y[:cut][np.isfinite(y[:cut])] > 0))
        majority = 1.0 if share_up >= 0.5 else -1.0
        ofi = X[cut:, 0][test_ok]
        rows = [
            {"name": f"logit_ofi C={C:g}", "kind": "model", "n": len(yt), "accuracy": acc, "log_loss": ll},
            {"name": "majority", "kind": "baseline", "n": len(yt), "accuracy": float(np.mean(yt == majority)),
             "log_loss": None},
            {"name": "ofi_sign", "kind": "baseline", "n": int(np.sum(ofi != 0)),
             "accuracy": float(np.mean(np.sign(ofi[ofi != 0]) == yt[ofi != 0])) if np.any(ofi != 0) else None,
             "log_loss": None},
        ]
        info = registry.log_version(
            model, model_type="logit_ofi", feature_names=FEATURES, horizon="1s", data_version=None,
            train_start=ts[0], train_end=ts[cut - 1], symbols=[part.symbol], params={"C": C},
            metrics={"accuracy": acc, "log_loss": ll}, settings=settings)
        registry.client(settings).log_dict(info.run_id, {"rows": rows}, "evaluation.json")
        out.append(info)
    registry.promote(out[0].name, out[0].version, settings=settings)
    return out


MODEL = "logit_ofi"  # the registered model the worker trades on (its champion), see register_models
LIVE_PARAMS = {"threshold": 0.6, "size": 100, "max_position": 100, "min_hold_events": 50}


def champion(settings: Any, name: str = MODEL) -> Any | None:
    """A started :class:`~flowsense.live.models.ChampionHandle` of the registered champion, None without one."""
    from flowsense.live.models import ChampionHandle
    from flowsense.models import registry

    try:
        if registry.champion_version(registry.model_name(name), settings) is None:
            return None
    except Exception:  # no registry / no such model
        return None
    handle = ChampionHandle(name, poll_s=5.0, settings=settings)
    handle.start()
    return handle


def run_worker(settings: Any, part: Any, *, speed: float | None = None, model: bool = True) -> dict[str, Any] | None:
    """Replay the partition through the real streaming worker (paper broker) into the state store at
    ``Settings.worker_state``; without the worker package, only the (empty) state store is created.

    With a registered champion (``model``) the worker runs ``model_signal`` on it (hot-reload handle, as
    ``flowsense worker run --strategy model_signal --model logit_ofi``), so its decision events carry the
    model's P(up); without one, the rule strategy ``ofi_threshold`` (prediction null)."""
    from flowsense.live.state import StateStore

    store = StateStore(settings.worker_state)
    try:
        from flowsense.live.runner import ReplaySource, RunOptions, run_worker
        from flowsense.live.ticks import lake_records
        from flowsense.live.worker import WorkerConfig
    except ImportError:
        return None
    src = ReplaySource(lake_records(str(settings.lake), part.symbol, part.date.isoformat()), part.symbol,
                       part.date.isoformat(), speed=speed)
    handle = champion(settings) if model else None
    strategy, params = ("model_signal", {"model": f"{handle.name}@champion", **LIVE_PARAMS}) if handle else \
        ("ofi_threshold", {})
    wc = WorkerConfig(symbol=src.symbol, date=src.date, strategy=strategy, params=params, source="replay",
                      broker="paper", initial_cash=1_000_000.0)
    try:
        return run_worker(wc, src, store, options=RunOptions(), signals=False, model=handle)
    finally:
        if handle is not None:
            handle.stop()
