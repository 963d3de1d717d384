"""``flowsense backtest``: replay one symbol x day through the event-driven engine and write a report.

The work is :func:`flowsense.backtest.runner.run_partition` (shared with the Dagster assets); the report
lands in ``FLOWSENSE_HOME/reports/``. ``--json`` prints one JSON object (the metrics plus run information,
``position`` (final, units), ``pnl`` (net of fees, the instrument's currency) and every ``orders`` /
``fills`` row, timestamps as integer ns) and nothing else on stdout. ``--strategy-config FILE`` reads the
strategy and its parameters from a JSON/YAML file (:func:`flowsense.trading.load_strategy_config`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import inspect
import json
import math
import re
import sys
from typing import Annotated, Any

import typer

from flowsense.cli.common import console, day_partition, doing, esc, fail, progress, settings

QUEUE_MODELS = ("risk_averse", "probabilistic")
# = flowsense.backtest.runner.US_EQUITY_MINUTES_PER_YEAR (not imported: it would load polars for --help;
# tests/cli/test_cli_imports.py checks the two agree)
US_EQUITY_MINUTES_PER_YEAR = 252 * 390
# a polars duration (what the equity curve is resampled with): e.g. 1m, 30s, 1h30m, 500ms
_DURATION_RE = re.compile(r"^(\d+(ns|us|ms|s|m|h|d|w))+$")
_DURATION_ALIASES = {"min": "m", "sec": "s", "hr": "h"}


def parse_resample(value: str) -> str:
    """``--resample`` checked before the run: a positive polars duration (``1min`` is accepted as ``1m``)."""
    v = value.strip().lower()
    for alias, unit in _DURATION_ALIASES.items():
        v = re.sub(rf"(\d){alias}\b", rf"\g<1>{unit}", v)
    if not _DURATION_RE.match(v):
        raise ValueError(f"--resample {value!r} is not a duration: use a number and a unit "
                         "(ns, us, ms, s, m, h, d, w), e.g. 1m, 30s, 5m, 1h")
    if all(int(n) == 0 for n in re.findall(r"\d+", v)):
        raise ValueError(f"--resample {value!r} must be longer than zero")
    return v


# ------------------------------------------------------------------------------------------------
# strategy registry and parameters
# ------------------------------------------------------------------------------------------------


def _registry() -> dict[str, type]:
    from flowsense.backtest.strategies import STRATEGIES

    return STRATEGIES


def strategy_params(cls: type) -> dict[str, tuple[Any, str]]:
    """Public constructor parameters of a strategy class: ``name -> (default, type name)``."""
    out: dict[str, tuple[Any, str]] = {}
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if f.name.startswith("_") or not f.init:
                continue
            if f.default is not dataclasses.MISSING:
                default = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                default = inspect.Parameter.empty
            tname = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
            out[f.name] = (default, tname)
        return out
    for name, p in inspect.signature(cls).parameters.items():
        if name.startswith("_") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        ann = p.annotation
        tname = "" if ann is inspect.Parameter.empty else (ann if isinstance(ann, str) else ann.__name__)
        out[name] = (p.default, tname)
    return out


_TRUE = {"true", "yes", "y", "on", "1"}
_FALSE = {"false", "no", "n", "off", "0"}


def coerce(value: str, like: Any = inspect.Parameter.empty, type_name: str = "") -> Any:
    """Parse a ``k=v`` value: to the type of the default (or annotation) when known, else bool/int/float/str."""
    v = value.strip()
    kind = type(like).__name__ if like is not inspect.Parameter.empty and like is not None else type_name
    kind = kind.split("|")[0].strip()
    if kind == "bool":
        if v.lower() in _TRUE:
            return True
        if v.lower() in _FALSE:
            return False
        raise ValueError(f"{value!r} is not a boolean (true/false)")
    if kind == "int":
        f = float(v.replace("_", ""))
        if not f.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return int(f)
    if kind == "float":
        return float(v.replace("_", ""))
    if kind == "str":
        return v
    low = v.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def parse_params(cls: type, pairs: list[str]) -> dict[str, Any]:
    """``["k=v", ...]`` -> constructor kwargs, checked against the strategy's parameters."""
    known = strategy_params(cls)
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ValueError(f"--param {pair!r} is not k=v")
        if key not in known:
            raise ValueError(f"unknown parameter {key!r} for this strategy; parameters: {', '.join(known) or 'none'}")
        default, tname = known[key]
        try:
            out[key] = coerce(raw, default, tname)
        except ValueError as exc:
            raise ValueError(f"--param {key}: {exc}") from None
    return out


# ------------------------------------------------------------------------------------------------
# engine configuration
# ------------------------------------------------------------------------------------------------


def build_config(
    latency_ms: float | None, queue: str | None, fee_taker: float | None, fee_maker: float | None,
    slippage_bps: float | None,
) -> Any:
    """A ``BacktestConfig`` with the options given on the command line (engine defaults otherwise).

    ``--latency-ms X`` sets the feed, order-entry and response latencies to X ms each.
    """
    from flowsense.backtest import models
    from flowsense.backtest.engine import BacktestConfig

    kw: dict[str, Any] = {}
    if latency_ms is not None:
        if latency_ms < 0:
            raise ValueError("--latency-ms must be >= 0")
        ns = round(latency_ms * 1e6)
        kw["latency"] = models.ConstantLatency(feed_ns=ns, order_ns=ns, response_ns=ns)
    if queue is not None:
        if queue not in QUEUE_MODELS:
            raise ValueError(f"--queue must be one of {', '.join(QUEUE_MODELS)}, got {queue!r}")
        kw["queue"] = models.RiskAverseQueue() if queue == "risk_averse" else models.ProbabilisticQueue()
    if fee_taker is not None or fee_maker is not None:
        base = models.MakerTakerFees()
        kw["fees"] = models.MakerTakerFees(
            maker_rate=base.maker_rate if fee_maker is None else fee_maker,
            taker_rate=base.taker_rate if fee_taker is None else fee_taker,
        )
    if slippage_bps is not None:
        if slippage_bps < 0:
            raise ValueError("--slippage-bps must be >= 0")
        kw["slippage"] = models.FixedBpsSlippage(bps=slippage_bps)
    return BacktestConfig(**kw)


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------


def _list_strategies(as_json: bool) -> None:
    reg = _registry()
    if as_json:
        print(json.dumps({name: {k: {"default": None if d is inspect.Parameter.empty else d, "type": t}
                                 for k, (d, t) in strategy_params(cls).items()}
                          for name, cls in reg.items()}, default=str))
        return
    from rich.table import Table

    table = Table(title="Built-in strategies")
    table.add_column("strategy")
    table.add_column("parameters (default)")
    table.add_column("description")
    for name, cls in reg.items():
        params = ", ".join(f"{k}={'' if d is inspect.Parameter.empty else d!r}"
                           for k, (d, _t) in strategy_params(cls).items())
        doc = (inspect.getdoc(cls) or "").splitlines()[0] if inspect.getdoc(cls) else ""
        table.add_row(esc(name), esc(params), esc(doc))
    console.print(table)


def register(app: typer.Typer) -> None:
    @app.command()
    def backtest(
        symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Symbol of the lake partition.")] = None,
        date: Annotated[str | None, typer.Option("--date", "-d", help="Trading date YYYY-MM-DD.")] = None,
        strategy: Annotated[str | None, typer.Option(help="Built-in strategy (see --list-strategies).")] = None,
        strategy_config: Annotated[str | None, typer.Option("--strategy-config", help="JSON/YAML file with {strategy, config} (instead of --strategy/--param).")] = None,
        param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Strategy parameter k=v (repeatable).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object of metrics, nothing else.")] = False,
        latency_ms: Annotated[float | None, typer.Option(help="Feed, order and response latency in ms each.")] = None,
        queue: Annotated[str | None, typer.Option(help="Queue model: risk_averse or probabilistic.")] = None,
        fee_taker: Annotated[float | None, typer.Option(help="Taker fee rate (fraction of notional).")] = None,
        fee_maker: Annotated[float | None, typer.Option(help="Maker fee rate (negative = rebate).")] = None,
        slippage_bps: Annotated[float | None, typer.Option(help="Taker slippage in basis points.")] = None,
        periods_per_year: Annotated[float, typer.Option(help="Periods per year of the resampled equity (default: 1-minute bars, 252 x 390).")] = US_EQUITY_MINUTES_PER_YEAR,
        resample: Annotated[str, typer.Option(help="Bar length the equity curve is sampled at for return metrics.")] = "1m",
        list_strategies: Annotated[bool, typer.Option("--list-strategies", help="List built-in strategies and parameters.")] = False,
        allow_invalid: Annotated[bool, typer.Option("--allow-invalid", help="Run even if the partition's ERROR validation checks failed.")] = False,
    ) -> None:
        """Backtest a built-in strategy on one ingested symbol x day; write HTML/PDF report and metrics.

        Example: flowsense backtest --symbol AAPL --date 2012-06-21 --strategy ofi_threshold --param threshold=500
        """
        try:
            reg = _registry()
        except ImportError as exc:  # pragma: no cover - engine not installed
            fail(f"the backtest engine is not available: {exc}")
        if list_strategies:
            _list_strategies(as_json)
            return
        from flowsense.errors import FlowSenseError

        file_params: dict[str, Any] = {}
        if strategy_config is not None:
            from flowsense.trading import load_strategy_config

            try:
                loaded = load_strategy_config(strategy_config)
            except FlowSenseError as exc:
                fail(exc)
            if strategy is not None and strategy != loaded.name:
                fail(f"--strategy {strategy} contradicts {strategy_config} (strategy {loaded.name!r})")
            strategy, file_params = loaded.name, loaded.params()
        if not (symbol and date and strategy):
            fail("--symbol, --date and --strategy are required (or --list-strategies)")
        if strategy not in reg:
            fail(f"unknown strategy {strategy!r}; built-in strategies: {', '.join(reg)}")
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            fail(f"--date {date!r} is not YYYY-MM-DD")
        try:
            resample = parse_resample(resample)
        except ValueError as exc:
            fail(exc)
        if not (periods_per_year > 0 and math.isfinite(periods_per_year)):
            fail(f"--periods-per-year must be a positive number, got {periods_per_year}")
        try:
            params = {**file_params, **parse_params(reg[strategy], param or [])}
            config = build_config(latency_ms, queue, fee_taker, fee_maker, slippage_bps)
            _ = reg[strategy](**params)  # validate values early: ConfigError names the parameter
        except (ValueError, TypeError, FlowSenseError) as exc:
            fail(exc)
        cfg = settings()
        from flowsense.backtest.runner import run_partition

        lake, part = day_partition(cfg, symbol, day, allow_invalid=allow_invalid, what="backtest")
        doing(f"backtesting {part.key} with {strategy}; the lake is unchanged (a report is written only at the "
              "end)")
        with progress() as bar:
            task = bar.add_task(f"backtest {esc(symbol)} {day} {esc(strategy)}", total=100)
            show = not as_json or sys.stderr.isatty()
            outcome = run_partition(
                lake, cfg.reports, symbol, day, strategy, params, config,
                periods_per_year=periods_per_year, resample=resample,
                progress=(lambda frac: bar.update(task, completed=100.0 * float(frac))) if show else None,
                # what the user set on purpose; the rest follows the instrument's asset class (futures)
                explicit={name for name, given in (("slippage", slippage_bps is not None),
                                                   ("fees", fee_taker is not None or fee_maker is not None))
                          if given},
            )
            bar.update(task, completed=100)
        payload, rows = outcome.payload, outcome.summary_rows
        if as_json:
            sys.stdout.write(json.dumps({**payload, **outcome.records()}, default=str) + "\n")
            sys.stdout.flush()
            return
        from rich.table import Table

        table = Table(title=f"Backtest {esc(symbol)} {day} {esc(strategy)}")
        table.add_column("metric")
        table.add_column("value", justify="right")
        for label, value in rows:
            table.add_row(label, value)
        eng = payload["engine"]
        for key in ("n_events", "n_orders", "n_fills", "n_rejected"):
            if key in eng:
                table.add_row(key.replace("_", " "), f"{int(eng[key]):,}")
        if isinstance(eng.get("events_per_s"), float) and math.isfinite(eng["events_per_s"]):
            table.add_row("engine events/s", f"{eng['events_per_s']:,.0f}")
        console.print(table)
        console.print(f"report: {esc(payload['report_html'])}", soft_wrap=True)
        console.print(f"        {esc(payload['report_pdf'])}", soft_wrap=True)
