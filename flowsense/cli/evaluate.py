"""``flowsense evaluate``: the walk-forward table, every model beside every baseline, out of sample.

The work is :func:`flowsense.models.evaluate.run_evaluation`. ``--json`` prints ONE JSON object whose
``rows`` hold one row per (model, symbol, horizon, fold): ``model``, ``symbol``, ``horizon``, ``fold``,
``test_start``/``test_end`` (ISO 8601 UTC, the test window ``[start, end)``), ``n``, ``accuracy``, ``f1``,
``log_loss`` (null for the no-fit baselines) and more; the baselines are rows with ``model`` =
``majority``, ``ofi_sign``, ``qi_sign``, ``logit_ofi``. Progress goes to stderr.
"""

from __future__ import annotations

import json
import math
import time
from typing import Annotated, Any

import typer

from flowsense.cli.common import console, fail, progress, reported_errors, settings
from flowsense.cli.window import Days, Embargo, Step, TestSize, TrainSize, Unit, ValSize, size, split_list


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    if hasattr(x, "item") and callable(x.item):  # numpy scalars
        return _clean(x.item())
    return x


def register(app: typer.Typer) -> None:
    @app.command()
    def evaluate(
        symbols: Annotated[str | None, typer.Option(help="Symbols, comma separated (default: every symbol "
                                                    "with features).")] = None,
        models: Annotated[str | None, typer.Option(help="Models, comma separated (default: every model and "
                                                   "baseline).")] = None,
        horizons: Annotated[str | None, typer.Option(help="Horizons, comma separated (default: all: next_move, "
                                                     "100ms, 500ms, 1s, 10s, 10ev, 100ev).")] = None,
        days: Days = None,
        train_size: TrainSize = "53",
        val: ValSize = "7",
        test: TestSize = "7",
        step: Step = None,
        embargo: Embargo = "0",
        unit: Unit = "auto",
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object with `rows`.")] = False,
    ) -> None:
        """Score every model and baseline walk-forward, out of sample, per symbol x horizon x fold."""
        from flowsense.data.lake import Lake
        from flowsense.models.dataset import add_cross_asset, load_symbol
        from flowsense.models.evaluate import ALL_NAMES, run_evaluation
        from flowsense.models.folds import make_folds
        from flowsense.models.targets import HORIZONS
        from flowsense.models.training import available_dates, lake_symbols

        cfg = settings()
        names = split_list(models) or list(ALL_NAMES)
        bad = [m for m in names if m not in ALL_NAMES]
        if bad:
            fail(f"--models: unknown {', '.join(bad)}; have {', '.join(ALL_NAMES)}")
        hs = split_list(horizons) or list(HORIZONS)
        badh = [h for h in hs if h not in HORIZONS]
        if badh:
            fail(f"--horizons: unknown {', '.join(badh)}; have {', '.join(HORIZONS)}")
        syms = split_list(symbols) or lake_symbols(cfg)
        if not syms:
            fail(f"{cfg.lake}: no features_tick partitions; run `flowsense features` first")
        dates = available_dates(cfg, syms)
        if days:
            dates = dates[-days:]
        if not dates:
            fail(f"{cfg.lake}: no day with features for all of {', '.join(syms)}")
        sizes = dict(train=size(train_size), val=size(val), test=size(test), step=size(step), embargo=size(embargo))
        t0 = time.perf_counter()
        with reported_errors(), progress() as bar:
            lake = Lake(cfg.lake)
            load = bar.add_task("loading", total=len(syms))
            datas = {}
            for s in syms:
                bar.update(load, description=f"loading {s}")
                try:
                    datas[s] = load_symbol(lake, s, dates)
                except FileNotFoundError as exc:
                    fail(str(exc))
                bar.advance(load)
            if "graph" in names and len(datas) > 1:
                add_cross_asset(datas)
            n_folds = sum(len(make_folds(d.ts, unit=unit, **sizes)) for d in datas.values())  # type: ignore[arg-type]
            per_fold = sum(1 for m in names if m != "ensemble") + ("ensemble" in names)
            task = bar.add_task("evaluating", total=max(1, n_folds * len(hs) * per_fold))

            def tick(msg: str) -> None:
                bar.update(task, description=msg[:70], advance=1)

            res = run_evaluation(datas, unit=unit, models=names, horizons=hs, progress=tick, **sizes)
        payload = _clean({**res.to_json(), "symbols": syms, "dates": [d.isoformat() for d in dates],
                          "seconds": round(time.perf_counter() - t0, 2)})
        if as_json:
            print(json.dumps(payload, default=str))
            return
        from rich.table import Table

        t = Table(title="out-of-sample accuracy, pooled over symbols and folds (95% block-bootstrap CI)")
        for c in ("horizon", "model", "n", "accuracy", "95% CI", "vs best no-fit baseline"):
            t.add_column(c)
        for r in payload.get("summary", []):
            acc = r.get("accuracy")
            ci = (f"[{r['accuracy_ci_low']:.3f}, {r['accuracy_ci_high']:.3f}]"
                  if r.get("accuracy_ci_low") is not None else "-")
            vs = (f"{r['vs_best_diff']:+.3f} [{r['vs_best_ci_low']:+.3f}, {r['vs_best_ci_high']:+.3f}] vs "
                  f"{r['best_no_fit_baseline']}" if r.get("vs_best_diff") is not None else "-")
            t.add_row(r["horizon"], r["model"], f"{r['n']:,}", f"{acc:.4f}" if acc is not None else "-", ci, vs)
        console.print(t)
