"""``flowsense train``: the nightly retrain by hand - walk-forward, MLflow run, registered version, promotion.

The work is :func:`flowsense.models.training.train` (shared with the Dagster ``nightly_retrain`` job and
``bench/train.py``): the raw lake is snapshotted with DVC, every model is scored out of sample on the
window's walk-forward folds, the last fold's model is registered as a new version of ``flowsense-<model>``
(tagged with the data version, features, folds and code revision) and becomes ``champion`` only if it beats
the champion on the same events (exact one-sided McNemar test). ``--json`` prints one JSON object.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer

from flowsense.cli.common import console, fail, progress, reported_errors, settings
from flowsense.cli.window import Days, Embargo, Step, TestSize, TrainSize, Unit, ValSize, size, split_list


def parse_model_params(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--param xgboost.n_estimators=100`` -> ``{"xgboost": {"n_estimators": 100}}`` (JSON values)."""
    out: dict[str, dict[str, Any]] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        model, dot, name = key.partition(".")
        if not sep or not dot or not model or not name:
            fail(f"--param {item!r}: expected MODEL.NAME=VALUE, e.g. xgboost.n_estimators=100")
        try:
            val: Any = json.loads(raw)
        except json.JSONDecodeError:
            val = raw
        out.setdefault(model, {})[name] = val
    return out


def register(app: typer.Typer) -> None:
    @app.command()
    def train(
        models: Annotated[str, typer.Option(help="Models to train, comma separated: logit_ofi, xgboost, "
                                            "transformer, graph.")] = "logit_ofi,xgboost",
        symbols: Annotated[str | None, typer.Option(help="Symbols (comma separated; default: every symbol "
                                                    "with features).")] = None,
        days: Days = None,
        train_size: TrainSize = "53",
        val: ValSize = "7",
        test: TestSize = "7",
        step: Step = None,
        embargo: Embargo = "0",
        unit: Unit = "auto",
        horizon: Annotated[str, typer.Option(help="Target: next_move, 100ms, 500ms, 1s, 10s, 10ev, 100ev.")]
        = "next_move",
        param: Annotated[list[str] | None, typer.Option("--param", help="MODEL.NAME=VALUE, repeatable.")] = None,
        promote: Annotated[bool, typer.Option(help="Promote a better challenger to champion.")] = True,
        alpha: Annotated[float, typer.Option(help="Significance level of the promotion test.")] = 0.05,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Train, score out of sample, register and promote models on the latest window of the lake."""
        from flowsense.models.training import Window
        from flowsense.models.training import train as run_train

        cfg = settings()
        window = Window(tuple(split_list(symbols)), days, size(train_size), size(val), size(test), size(step),
                        size(embargo), unit)
        names = split_list(models)
        params = parse_model_params(param)
        t0 = time.perf_counter()
        with reported_errors(), progress() as bar:
            task = bar.add_task("training", total=None)

            def tick(msg: str) -> None:
                bar.update(task, description=msg)

            results = run_train(cfg, window, models=names, horizon=horizon, params=params, promote=promote,
                                alpha=alpha, progress=tick)
        elapsed = time.perf_counter() - t0
        if as_json:
            print(json.dumps({"seconds": round(elapsed, 2), "mlflow_uri": cfg.mlflow_uri,
                              "models": [r.to_dict() for r in results]}, default=str))
            return
        from rich.table import Table

        table = Table(title=f"flowsense train ({horizon}, {elapsed:.0f} s)")
        for col in ("model", "version", "n", "accuracy", "log_loss", "champion", "decision"):
            table.add_column(col, justify="right" if col in ("n", "accuracy", "log_loss") else "left")
        for r in results:
            m = r.metrics
            d = r.decision
            table.add_row(r.version.name, r.version.version, f"{int(m.get('n', 0)):,}",
                          f"{m.get('accuracy', float('nan')):.4f}", f"{m.get('log_loss', float('nan')):.4f}",
                          str(d.champion_after if d else "-"),
                          ("promoted: " if d and d.promoted else "kept: ") + (d.reason if d else "no promotion"))
        console.print(table)
        console.print(f"MLflow: {cfg.mlflow_uri}   data version: {results[0].data_version if results else '-'}")
