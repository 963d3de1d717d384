"""Model assets: regimes, one trained + registered model per model type, the walk-forward evaluation table,
the promotion step, the nightly retrain schedule and the champion-accuracy check.

Thin: the work is :mod:`flowsense.models.training` (pooled walk-forward, MLflow version, DVC data version),
:mod:`flowsense.models.registry` (promotion, champion monitoring), :mod:`flowsense.models.evaluate` (the
model x horizon x fold table with the baselines) and :mod:`flowsense.models.hmm` (regimes).

* ``regimes``: an HMM on the 1 s bars of the window (fitted on the first 60 % of the bars, held-out
  likelihood vs a 1-state model), causally filtered state probabilities written to the lake table
  ``regimes`` for every partition of the window;
* ``model_<name>`` (``logit_ofi``, ``xgboost``, and ``transformer``/``graph`` when those modules exist):
  walk-forward on the latest window, a new registered version ``flowsense-<name>`` (not yet promoted);
* ``model_evaluation``: every model beside every baseline, per symbol x horizon x fold (table metadata);
* ``model_promotion``: each new version becomes challenger, champion only if it beats the champion on the
  same out-of-sample events (exact one-sided McNemar, alpha 0.05); then every champion is scored on the
  newest days that are out of sample for it and the score is appended to its history (registered-model tag
  ``champion_evaluations``);
* check ``champion_accuracy_drop`` (WARN): a champion whose accuracy fell more than 5 points against its
  previous evaluation;
* job ``nightly_retrain`` (these assets) on the schedule ``nightly_retrain_schedule``: 02:00
  America/New_York, Monday to Friday. A failed model asset skips the promotion (promote on success only).

The window: :func:`flowsense.models.training.auto_window` (60-day history + 7-day test when the lake has
67 days; fewer days: day folds, then intraday folds). Model sizes come from :class:`ModelTrainingConfig`
(small defaults so ``make demo`` stays quick).
"""


import importlib.util
import json
from typing import Any

import dagster as dg
from pydantic import Field

from flowsense_dagster.resources import LakeResource

GROUP = "models"
FEATURE_DEPS = [dg.AssetKey("features_tick"), dg.AssetKey("features_1s")]
CORE_MODELS = ("logit_ofi", "xgboost")
OPTIONAL_MODELS = ("transformer", "graph")
DROP_POINTS = 0.05
HISTORY_TAG = "champion_evaluations"


def registrable_models() -> tuple[str, ...]:
    """The registrable models whose module exists in this checkout."""
    extra = tuple(m for m in OPTIONAL_MODELS if importlib.util.find_spec(f"flowsense.models.{m}") is not None)
    return CORE_MODELS + extra


class ModelTrainingConfig(dg.Config):
    """Run config of the model assets (defaults sized for the demo and a 2-core nightly run)."""

    horizon: str = "next_move"
    days: int = 67
    xgb_estimators: int = 120
    max_train_rows: int = 40_000
    transformer_epochs: int = 2
    alpha: float = 0.05
    hmm_restarts: int = 3
    hmm_max_fit_bars: int = 20_000
    evaluation_models: list[str] = Field(default_factory=list)  # empty: the baselines + every registrable model


def _params(name: str, cfg: ModelTrainingConfig) -> dict[str, Any]:
    if name == "xgboost":
        return {"n_estimators": cfg.xgb_estimators, "max_train_rows": cfg.max_train_rows}
    if name == "transformer":
        return {"epochs": cfg.transformer_epochs, "max_train_seq": min(12_000, cfg.max_train_rows)}
    if name == "graph":
        return {"epochs": cfg.transformer_epochs, "max_train_rows": min(20_000, cfg.max_train_rows)}
    return {}


def _md_table(rows: list[dict[str, Any]], cols: list[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return "" if v is None else str(v)

    head = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols) + "\n"
    return head + "\n".join("| " + " | ".join(fmt(r.get(c)) for c in cols) + " |" for r in rows)


# ---- regimes ---------------------------------------------------------------------------------------
@dg.asset(group_name=GROUP, deps=[dg.AssetKey("features_1s")], kinds={"hmmlearn", "parquet"},
          description="HMM regimes (0 = calm) on the window's 1 s bars: fitted on the first 60 % of the bars with "
          "several EM restarts (best held-out likelihood), compared with a 1-state model out of sample; causally "
          "filtered probabilities written to the lake table `regimes`.")
def regimes(context: dg.AssetExecutionContext, lake: LakeResource, config: ModelTrainingConfig
            ) -> dg.MaterializeResult:
    import numpy as np
    import polars as pl

    from flowsense.models.hmm import fit_bars, write_regimes
    from flowsense.models.training import available_dates, lake_symbols

    settings = lake.settings()
    lk = lake.lake()
    syms = lake_symbols(settings)
    dates = available_dates(settings, syms)[-config.days:]
    rows, written = [], 0
    for s in syms:
        parts = [p for p in lk.partitions("features_1s") if p.symbol == s and p.date in set(dates)]
        if not parts:
            continue
        by_part = {p: lk.read("features_1s", p).filter(~pl.col("partial")).sort("ts") for p in parts}
        bars = pl.concat(list(by_part.values()), how="diagonal_relaxed")
        ts = bars["ts"].dt.epoch("ns").to_numpy()
        cut = int(np.quantile(ts, 0.6)) if ts.size else 0
        try:
            hmm = fit_bars(bars, cut, int(ts.max()) + 1, n_restarts=config.hmm_restarts,
                           max_fit_bars=config.hmm_max_fit_bars)
        except Exception as exc:  # too few bars for this symbol: say so, keep the others
            context.log.warning(f"regimes {s}: {exc}")
            continue
        written += len(write_regimes(lk, by_part, hmm))
        info = hmm.info
        rows.append({"symbol": s, "bars_fit": info.get("n_fit_bars"), "heldout_ll": info.get("heldout_loglik_per_bar"),
                     "heldout_ll_1state": info.get("heldout_loglik_per_bar_1state"),
                     "durations_bars": json.dumps([round(x, 1) for x in info.get("expected_duration_bars", [])])})
    return dg.MaterializeResult(metadata={
        "partitions_written": written,
        "summary": dg.MetadataValue.md(_md_table(rows, ["symbol", "bars_fit", "heldout_ll", "heldout_ll_1state",
                                                         "durations_bars"])),
    })


# ---- one asset per model ---------------------------------------------------------------------------
def _model_asset(name: str) -> dg.AssetsDefinition:
    @dg.asset(name=f"model_{name}", group_name=GROUP, deps=FEATURE_DEPS, kinds={"mlflow"},
              description=f"Walk-forward on the latest window (all symbols pooled), then a new version of "
              f"`flowsense-{name}` in the MLflow registry (the last fold's model), tagged with the DVC data version, "
              "features, folds and code revision; promotion is the `model_promotion` step.")
    def _asset(context: dg.AssetExecutionContext, lake: LakeResource, config: ModelTrainingConfig
               ) -> dg.MaterializeResult:
        from flowsense.models import dataversion
        from flowsense.models.training import auto_window, load_window, train_model

        settings = lake.settings()
        window = auto_window(settings, days=config.days)
        wd = load_window(settings, window, graph=name == "graph")
        dv = dataversion.snapshot(settings).id
        res = train_model(name, wd, settings, horizon=config.horizon, params=_params(name, config), data_version=dv,
                          promote=False, window=window, progress=context.log.info)
        m = res.metrics
        return dg.MaterializeResult(metadata={
            "registered_model": res.version.name, "version": res.version.version, "run_id": res.version.run_id,
            "data_version": dv, "window": dg.MetadataValue.json(window.describe()),
            "n": int(m.get("n", 0)), "accuracy": float(m.get("accuracy", float("nan"))),
            "log_loss": float(m.get("log_loss", float("nan"))), "seconds": round(res.seconds, 1),
            "per_symbol_fold": dg.MetadataValue.md(_md_table(res.rows, ["symbol", "fold", "test_start", "test_end",
                                                                          "n", "accuracy", "f1", "log_loss"])),
        })

    return _asset


model_assets = [_model_asset(n) for n in registrable_models()]


# ---- evaluation table --------------------------------------------------------------------------------
@dg.asset(group_name=GROUP, deps=FEATURE_DEPS, kinds={"polars"},
          description="Walk-forward evaluation on the latest window: every model beside the baselines (majority, "
          "ofi_sign, qi_sign, logit_ofi), one row per model x symbol x horizon x fold, out of sample; written to "
          "FLOWSENSE_HOME/reports/model_evaluation.json.")
def model_evaluation(context: dg.AssetExecutionContext, lake: LakeResource, config: ModelTrainingConfig
                     ) -> dg.MaterializeResult:
    from flowsense.models.evaluate import BASELINE_NAMES, EvaluationResult, evaluate_symbol
    from flowsense.models.folds import make_folds
    from flowsense.models.training import auto_window, load_window

    settings = lake.settings()
    window = auto_window(settings, days=config.days)
    models = tuple(config.evaluation_models) or (*BASELINE_NAMES, *(m for m in registrable_models()
                                                                     if m not in BASELINE_NAMES))
    wd = load_window(settings, window, graph="graph" in models)
    params = {m: _params(m, config) for m in models}
    res = EvaluationResult()
    no_regimes = []
    for sym, data in wd.datas.items():
        folds = make_folds(data.ts, window.train, window.val, window.test, window.step, embargo=window.embargo,
                           unit=window.unit)  # type: ignore[arg-type]
        if not folds:
            context.log.warning(f"model_evaluation {sym}: no fold fits the window")
            continue
        n_rows = len(res.rows)
        try:
            evaluate_symbol(data, folds, models=models, horizons=(config.horizon,), params=params, result=res,
                            progress=context.log.debug)
        except ValueError as exc:  # hmmlearn's forward pass can underflow on a day: score without regimes
            context.log.warning(f"model_evaluation {sym}: regime HMM failed ({exc}); evaluated without regimes")
            del res.rows[n_rows:]
            no_regimes.append(sym)
            evaluate_symbol(data, folds, models=models, horizons=(config.horizon,), params=params, result=res,
                            regimes=False, progress=context.log.debug)
    payload = res.to_json()
    payload["evaluated_without_regimes"] = no_regimes
    out = settings.reports / "model_evaluation.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(payload, default=str))
    cols = [dg.TableColumn(c, t) for c, t in (("model", "string"), ("symbol", "string"), ("horizon", "string"),
                                                ("fold", "int"), ("test_start", "string"), ("n", "int"),
                                                ("accuracy", "float"), ("f1", "float"), ("log_loss", "float"))]
    records = [dg.TableRecord({c.name: (r.get(c.name) if r.get(c.name) is not None else None) for c in cols})
               for r in res.rows]
    return dg.MaterializeResult(metadata={
        "rows": dg.MetadataValue.table(records, schema=dg.TableSchema(columns=cols)),
        "summary": dg.MetadataValue.md(_md_table(payload.get("summary", []), [
            "horizon", "model", "n", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "best_no_fit_baseline",
            "vs_best_diff"])),
        "path": dg.MetadataValue.path(str(out)), "n_rows": len(res.rows),
        "evaluated_without_regimes": ", ".join(no_regimes) or "none",
    })


# ---- promotion + champion monitoring -----------------------------------------------------------------
def champion_history(name: str, settings: Any) -> list[dict[str, Any]]:
    from flowsense.models import registry

    rm = registry.client(settings).get_registered_model(registry.model_name(name))
    raw = (rm.tags or {}).get(HISTORY_TAG)
    return json.loads(raw) if raw else []


def record_champion_evaluation(name: str, settings: Any, wd: Any, horizon: str) -> dict[str, Any] | None:
    """Score the current champion on the window's events after its training window (out of sample for
    it) and append ``{at, version, accuracy, n, first_ts, last_ts}`` to its history tag (last 30)."""
    import datetime as dt

    import numpy as np

    from flowsense.models import registry

    v = registry.champion_version(name, settings)
    if v is None:
        return None
    predictor, info = registry.load_model(f"{registry.model_name(name)}/{v}", settings)
    raw = info.tags.get("train_window_ns", "")
    end = int(raw.split(",")[1]) if "," in raw else 0
    correct, n, first, last = 0, 0, None, None
    for d in wd.datas.values():
        rows = np.flatnonzero(d.ts > end)
        y = d.y[horizon][rows]
        ok = np.isfinite(y)
        if not ok.any() or any(c not in d.frame.columns for c in predictor.feature_names):
            continue
        rows = rows[ok]
        seq = info.tags.get("seq_len")
        if seq:  # a sequence network: the window of the last seq_len rows of the day's stream for each row
            T = int(seq)
            Xall = np.nan_to_num(d.X(predictor.feature_names))
            pad = np.vstack([np.zeros((T - 1, Xall.shape[1])), Xall])
            W = np.lib.stride_tricks.sliding_window_view(pad, (T, Xall.shape[1]))[:, 0]
            p = np.concatenate([predictor.predict_proba(W[rows[i:i + 4096]])[:, -1]
                                for i in range(0, rows.size, 4096)])
        else:
            p = predictor.predict_proba(d.X(predictor.feature_names, rows))[:, -1]
        correct += int(((p > 0.5) == (d.y[horizon][rows] > 0.5)).sum())
        n += rows.size
        first = int(d.ts[rows[0]]) if first is None else min(first, int(d.ts[rows[0]]))
        last = int(d.ts[rows[-1]]) if last is None else max(last, int(d.ts[rows[-1]]))
    if n == 0:
        return None
    entry = {"at": dt.datetime.now(dt.UTC).isoformat(), "version": v, "accuracy": correct / n, "n": n,
             "first_ts": first, "last_ts": last}
    hist = [*champion_history(name, settings), entry][-30:]
    registry.client(settings).set_registered_model_tag(registry.model_name(name), HISTORY_TAG, json.dumps(hist))
    return entry


@dg.asset(group_name=GROUP, deps=[a.key for a in model_assets], kinds={"mlflow"},
          description="Promotion step: each new version becomes challenger, and champion only if it beats the "
          "champion on the same out-of-sample events (exact one-sided McNemar test, alpha 0.05); decisions recorded "
          "as runs of the `flowsense-promotions` experiment. Then each champion is scored on the newest days that are "
          "out of sample for it (history in the registered model's tag `champion_evaluations`).")
def model_promotion(context: dg.AssetExecutionContext, lake: LakeResource, config: ModelTrainingConfig
                    ) -> dg.MaterializeResult:
    from flowsense.models import registry
    from flowsense.models.training import auto_window, load_window

    settings = lake.settings()
    rows = []
    for name in registrable_models():
        vs = registry.versions(name, settings)
        if not vs:
            continue
        latest = vs[0]
        d = registry.promote(name, latest.version, alpha=config.alpha, settings=settings)
        rows.append({"model": d.name, "version": d.challenger, "champion": d.champion_after,
                     "promoted": d.promoted, "reason": d.reason})
    window = auto_window(settings, days=config.days)
    wd = load_window(settings, window)
    evals = []
    for name in registrable_models():
        try:
            e = record_champion_evaluation(name, settings, wd, config.horizon)
        except Exception as exc:  # monitoring one champion must not undo the promotions above
            context.log.warning(f"champion evaluation of {name} failed: {type(exc).__name__}: {exc}")
            continue
        if e:
            evals.append({"model": registry.model_name(name), **e})
    return dg.MaterializeResult(metadata={
        "decisions": dg.MetadataValue.md(_md_table(rows, ["model", "version", "champion", "promoted", "reason"])),
        "champion_evaluations": dg.MetadataValue.md(_md_table(evals, ["model", "version", "accuracy", "n", "at"])),
        "promoted": sum(1 for r in rows if r["promoted"]),
    })


def accuracy_drop(history: list[dict[str, Any]], points: float = DROP_POINTS) -> tuple[bool, str]:
    """(dropped, description): the last evaluation against the previous one."""
    if len(history) < 2:
        return False, f"{len(history)} evaluation(s): nothing to compare yet"
    prev, last = history[-2], history[-1]
    diff = float(last["accuracy"]) - float(prev["accuracy"])
    text = (f"v{last['version']} accuracy {last['accuracy']:.4f} (n={last['n']}) vs previous "
            f"{prev['accuracy']:.4f} (v{prev['version']}, n={prev['n']}): {diff * 100:+.1f} points")
    return diff < -points, text


@dg.asset_check(asset=model_promotion, name="champion_accuracy_drop", blocking=False,
                description=f"Warns when a champion's out-of-sample accuracy drops more than {DROP_POINTS * 100:.0f} "
                "points against its previous evaluation.")
def champion_accuracy_drop(context: dg.AssetCheckExecutionContext, lake: LakeResource) -> dg.AssetCheckResult:
    settings = lake.settings()
    lines, dropped = [], []
    for name in registrable_models():
        try:
            hist = champion_history(name, settings)
        except Exception:  # not registered yet
            continue
        bad, text = accuracy_drop(hist)
        lines.append(f"flowsense-{name}: {text}")
        if bad:
            dropped.append(name)
    return dg.AssetCheckResult(passed=not dropped, severity=dg.AssetCheckSeverity.WARN,
                               metadata={"champions": dg.MetadataValue.md("\n\n".join(lines) or "no champions"),
                                         "dropped": ", ".join(dropped) or "none"})


# ---- job and schedule --------------------------------------------------------------------------------
nightly_retrain = dg.define_asset_job(
    "nightly_retrain",
    selection=dg.AssetSelection.assets(regimes, *model_assets, model_evaluation, model_promotion),
    description="Retrain every registrable model on the latest window, evaluate, and promote on success.",
)

nightly_retrain_schedule = dg.ScheduleDefinition(
    name="nightly_retrain_schedule", job=nightly_retrain, cron_schedule="0 2 * * 1-5",
    execution_timezone="America/New_York", default_status=dg.DefaultScheduleStatus.RUNNING,
    description="02:00 New York time, Monday to Friday.",
)

defs = dg.Definitions(
    assets=[regimes, *model_assets, model_evaluation, model_promotion],
    asset_checks=[champion_accuracy_drop],
    jobs=[nightly_retrain],
    schedules=[nightly_retrain_schedule],
)
