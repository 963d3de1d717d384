"""``flowsense walkforward``: the bar-level walk-forward of one symbol x day, strategies beside baselines.

The work is :func:`flowsense.backtest.wfrun.run_walkforward`. Strategies (``--strategy``, repeatable):
``ofi_ridge`` (default), ``ofi_threshold``, ``model_signal`` (``--param model=flowsense-xgboost@champion``:
a registered model's out-of-sample predictions; a fold whose test window overlaps the model's training
window is refused with one line, exit 2). ``--param k=v`` sets ``k`` on every chosen strategy that has it,
``--param model_signal.threshold=0.55`` on one. Costs default to 0.08 % + 1 bp per unit of turnover
(``--fee-rate 0 --slippage-bps 0`` for gross). ``--json`` prints one JSON object (summary per strategy,
per fold, per regime, ``regime_source``) and nothing else on stdout; the summary and the out-of-sample
bars are written under ``FLOWSENSE_HOME/reports/walkforward_...``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sys
from typing import Annotated, Any

import typer

from flowsense.cli.common import console, day_partition, doing, esc, fail, reported_errors, settings


def split_params(strategies: list[str], pairs: list[str]) -> dict[str, dict[str, Any]]:
    """``["k=v", "name.k=v"]`` -> parameters per strategy, typed like the config's defaults."""
    from flowsense.backtest.wfrun import _strategy_classes
    from flowsense.cli.backtest import coerce

    classes = _strategy_classes()
    unknown = [s for s in strategies if s not in classes]
    if unknown:
        raise ValueError(f"unknown walk-forward strategy {', '.join(unknown)}; have {', '.join(classes)}")
    fields = {s: {f.name: f for f in dataclasses.fields(classes[s])} for s in strategies}
    out: dict[str, dict[str, Any]] = {s: {} for s in strategies}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--param {pair!r} is not k=v")
        scope, dot, name = key.rpartition(".")
        targets = [scope] if dot else [s for s in strategies if name in fields[s]]
        if dot and scope not in fields:
            raise ValueError(f"--param {pair!r}: {scope!r} is not one of the chosen strategies ({', '.join(strategies)})")
        if not targets or any(name not in fields[t] for t in targets):
            known = sorted({n for s in strategies for n in fields[s] if not n.startswith("_")})
            raise ValueError(f"--param {name!r}: no chosen strategy has it; parameters: {', '.join(known)}")
        for t in targets:
            f = fields[t][name]
            tname = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", "")
            try:
                out[t][name] = coerce(raw, f.default, tname)
            except ValueError as exc:
                raise ValueError(f"--param {key}: {exc}") from None
    return out


def register(app: typer.Typer) -> None:
    @app.command()
    def walkforward(
        symbol: Annotated[str, typer.Option("--symbol", "-s", help="Symbol of the lake partition.")],
        date: Annotated[str, typer.Option("--date", "-d", help="Trading date YYYY-MM-DD.")],
        strategy: Annotated[list[str] | None, typer.Option(help="ofi_ridge, ofi_threshold or model_signal "
                                                           "(repeatable; default ofi_ridge).")] = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="k=v for every strategy that has "
                                                        "k, or strategy.k=v (repeatable).")] = None,
        clock: Annotated[str, typer.Option(help="Bar clock: 1s or 1min (features_<clock>).")] = "1s",
        train: Annotated[str, typer.Option(help="Training window of each fold (a duration).")] = "2h",
        test: Annotated[str, typer.Option(help="Test window of each fold, also the roll step.")] = "30m",
        fee_rate: Annotated[float, typer.Option(help="Fee, fraction of traded notional.")] = 0.0008,
        slippage_bps: Annotated[float, typer.Option(help="Slippage, basis points of traded notional.")] = 1.0,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object, nothing else.")] = False,
        allow_invalid: Annotated[bool, typer.Option("--allow-invalid", help="Run even if the partition's ERROR "
                                                    "validation checks failed.")] = False,
    ) -> None:
        """Walk forward strategies on one day's bars, out of sample, beside flat / buy-and-hold / last-return.

        Example: flowsense walkforward -s AAPL -d 2012-06-21 --strategy model_signal --strategy ofi_threshold
        --param model=flowsense-xgboost@champion
        """
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            fail(f"--date {date!r} is not YYYY-MM-DD")
        if fee_rate < 0 or slippage_bps < 0:
            fail("--fee-rate and --slippage-bps must be >= 0")
        names = list(dict.fromkeys(strategy or ["ofi_ridge"]))
        from flowsense.errors import FlowSenseError

        try:
            params = split_params(names, param or [])
            from flowsense.backtest.wfrun import strategy_config

            for n in names:
                strategy_config(n, params[n])
        except (ValueError, TypeError, FlowSenseError) as exc:
            fail(exc)
        cfg = settings()
        from flowsense.backtest.wfrun import run_walkforward

        lake, part = day_partition(cfg, symbol, day, allow_invalid=allow_invalid, what="walkforward")
        doing(f"walking forward {part.key} with {', '.join(names)}; the lake is unchanged")
        with reported_errors():
            run = run_walkforward(lake, symbol, day, params, clock=clock, train=train, test=test,
                                  fee_rate=fee_rate, slippage_bps=slippage_bps, reports=cfg.reports, settings=cfg)
        if as_json:
            sys.stdout.write(json.dumps(run.payload, default=str) + "\n")
            sys.stdout.flush()
            return
        from rich.table import Table

        p = run.payload
        t = Table(title=f"Walk-forward {esc(symbol)} {day} ({clock} bars, train {train} / test {test}, "
                        f"{len(p['folds'])} folds, costs {fee_rate:g} + {slippage_bps:g} bp)")
        for c in ("strategy", "total return", "sharpe", "max drawdown", "exposure", "bars"):
            t.add_column(c, justify="left" if c == "strategy" else "right")
        for r in p["summary"]:
            t.add_row(esc(r["strategy"]), f"{r['total_return']:+.4%}", f"{r['sharpe']:.2f}" if r["sharpe"] is not None
                      else "-", f"{r['max_drawdown']:.4%}", f"{r['exposure']:.2f}", f"{r['n_bars']:,}")
        console.print(t)
        if p.get("model"):
            m = p["model"]
            console.print(f"model: {esc(m['name'])} v{m['version']} trained {m['train_window'][0]}.."
                          f"{m['train_window'][1]}", soft_wrap=True)
        console.print(f"regimes: {p['regime_source']}", soft_wrap=True)
        if p.get("report_dir"):
            console.print(f"written: {esc(p['report_dir'])}", soft_wrap=True)
