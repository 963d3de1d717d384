"""``flowsense worker run | status | resume``: the streaming worker (see :mod:`flowsense.live`).

``run`` trades one symbol from a source (``replay`` of a lake partition, a ``redis`` stream with a
consumer group, or ``ib`` market data) through a strategy, the risk manager and a broker (``paper`` or
``ib``), with its state in ``--state`` (default ``FLOWSENSE_HOME/worker``; PostgreSQL with
``FLOWSENSE_STATE_DSN``). At the end of a finite source (a replay, a stream whose last event arrived, or
one idle for ``--exit-when-idle`` seconds) it prints a summary: ``orders``, ``fills``, ``position``,
``pnl``, ``unique_client_order_ids`` (and more); ``--json`` prints it as one JSON object.
"""

from __future__ import annotations

import json
import os
import socket
import sys
from typing import Annotated, Any

import typer

from flowsense.cli.common import console, fail, reported_errors, settings

worker_app = typer.Typer(help="The streaming worker: live ticks -> features -> strategy/model -> risk -> broker.",
                         no_args_is_help=True)


def _params(strategy: str, pairs: list[str]) -> dict[str, Any]:
    from flowsense.cli.backtest import coerce
    from flowsense.trading import strategy_configs

    reg = strategy_configs()
    fields = {}
    if strategy in reg:
        import dataclasses

        fields = {f.name: f for f in dataclasses.fields(reg[strategy])}
    out: dict[str, Any] = {}
    for pair in pairs:
        k, sep, v = pair.partition("=")
        k = k.strip().replace("-", "_")
        if not sep or not k:
            raise ValueError(f"--param {pair!r} is not k=v")
        f = fields.get(k)
        default = f.default if f is not None else None
        out[k] = coerce(v, default) if f is not None else coerce(v)
    return out


def _print_summary(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        sys.stdout.write(json.dumps(summary, default=str) + "\n")
        sys.stdout.flush()
        return
    from rich.table import Table

    t = Table(title=f"worker {summary.get('symbol')} {summary.get('date')} {summary.get('strategy')}")
    t.add_column("field")
    t.add_column("value", justify="right")
    for k in ("ticks", "n_orders", "n_fills", "position", "pnl", "fees", "unique_client_order_ids", "refused",
              "skipped", "redelivered", "trading_state", "model_version", "restarts", "restart_to_trading_s",
              "ticks_per_s", "tick_to_decision_p50_us", "tick_to_decision_p99_us"):
        v = summary.get(k)
        t.add_row(k, f"{v:,.4f}" if isinstance(v, float) else str(v))
    console.print(t)


@worker_app.command("run")
def run(
    source: Annotated[str, typer.Option(help="replay | redis | ib")] = "replay",
    symbol: Annotated[str | None, typer.Option("--symbol", "-s", help="Symbol (replay, ib).")] = None,
    date: Annotated[str | None, typer.Option("--date", "-d", help="Trading date YYYY-MM-DD (replay).")] = None,
    stream: Annotated[str | None, typer.Option(help="Redis stream key (redis).")] = None,
    group: Annotated[str, typer.Option(help="Consumer group (redis).")] = "flowsense-worker",
    consumer: Annotated[str | None, typer.Option(help="Consumer name (redis; default: stable per state folder).")] = None,
    strategy: Annotated[str, typer.Option(help="Strategy name (see `flowsense backtest --list-strategies`).")] = "ofi_threshold",
    param: Annotated[list[str] | None, typer.Option("--param", "-p", help="Strategy parameter k=v (repeatable).")] = None,
    broker: Annotated[str, typer.Option(help="paper | ib")] = "paper",
    state: Annotated[str | None, typer.Option(help="State folder (SQLite) or postgresql:// DSN.")] = None,
    metrics_port: Annotated[int | None, typer.Option(help="Serve Prometheus metrics on 127.0.0.1:PORT (0 = any free port).")] = None,
    exit_when_idle: Annotated[float | None, typer.Option(help="Stop when the source is idle this many seconds.")] = None,
    speed: Annotated[float | None, typer.Option(help="Replay at this multiple of real time (default: as fast as possible).")] = None,
    initial_cash: Annotated[float, typer.Option(help="Starting cash of the account (paper).")] = 1_000_000.0,
    risk: Annotated[str | None, typer.Option(help="Risk config: a JSON file or inline JSON object.")] = None,
    model: Annotated[str | None, typer.Option(help="Registered model name: hot-reload its `champion` alias.")] = None,
    model_poll_s: Annotated[float, typer.Option(help="Seconds between champion alias polls.")] = 2.0,
    redis_url: Annotated[str | None, typer.Option(help="Redis URL (default FLOWSENSE_REDIS_URL).")] = None,
    ib_host: Annotated[str, typer.Option(help="IB gateway host.")] = "127.0.0.1",
    ib_port: Annotated[int, typer.Option(help="IB gateway port.")] = 4002,
    ib_client_id: Annotated[int, typer.Option(help="IB API client id.")] = 17,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Run the worker until the source ends (replay / last event / idle) or SIGTERM; print a summary.

    Example: flowsense worker run --source replay --symbol GOOG --date 2012-06-21 --strategy ofi_threshold --json
    """
    cfg = settings()
    if source not in ("replay", "redis", "ib"):
        fail(f"--source must be replay, redis or ib, got {source!r}")
    if broker not in ("paper", "ib"):
        fail(f"--broker must be paper or ib, got {broker!r}")
    if source == "replay" and not (symbol and date):
        fail("--source replay needs --symbol and --date")
    if source == "redis" and not stream:
        fail("--source redis needs --stream (and --group)")
    if source == "ib" and not symbol:
        fail("--source ib needs --symbol")
    with reported_errors():
        from flowsense.live.risk import RiskConfig
        from flowsense.live.runner import RunOptions, run_worker
        from flowsense.live.state import StateStore
        from flowsense.live.worker import WorkerConfig

        try:
            params = _params(strategy, param or [])
            risk_cfg = RiskConfig()
            if risk:
                text = risk if risk.strip().startswith("{") else open(risk).read()  # noqa: SIM115
                risk_cfg = RiskConfig.from_dict(json.loads(text))
        except (ValueError, TypeError, OSError) as exc:
            fail(exc)
        location = state or cfg.worker_state
        store = StateStore(location)
        url = redis_url or cfg.redis_url
        if source == "replay":
            from flowsense.live.runner import ReplaySource
            from flowsense.live.ticks import lake_records

            src: Any = ReplaySource(lake_records(str(cfg.lake), symbol, date), symbol, date, speed=speed)
        elif source == "redis":
            from flowsense.adapters.redis.streams import StreamSource

            name = consumer or store.get_meta("consumer") or f"{socket.gethostname()}-{os.getpid()}"
            store.set_meta("consumer", name)
            src = StreamSource(url, stream, group, name)
        else:
            from flowsense.adapters.ib.source import IBSource

            src = IBSource.connect(symbol, host=ib_host, port=ib_port, client_id=ib_client_id + 1)
        wc = WorkerConfig(symbol=src.symbol, date=src.date, strategy=strategy, params=params, source=source,
                          broker=broker, initial_cash=initial_cash, risk=risk_cfg, lake_root=str(cfg.lake))
        metrics = None
        if metrics_port is not None:
            from flowsense.adapters.prometheus.metrics import WorkerMetrics

            metrics = WorkerMetrics(symbol=wc.symbol)
            port = metrics.serve(metrics_port)
            store.set_meta("metrics_port", str(port))
            print(f"metrics on http://127.0.0.1:{port}/metrics", file=sys.stderr, flush=True)
        handle = None
        if model:
            from flowsense.live.models import ChampionHandle

            handle = ChampionHandle(model, poll_s=model_poll_s)
            handle.start()
        brk = None
        if broker == "ib":
            from flowsense.adapters.ib.broker import IBBroker

            brk = IBBroker.connect(host=ib_host, port=ib_port, client_id=ib_client_id, symbol=wc.symbol,
                                   initial_cash=initial_cash)
        try:
            summary = run_worker(wc, src, store, options=RunOptions(exit_when_idle=exit_when_idle),
                                 broker=brk, model=handle, metrics=metrics)
        finally:
            if handle is not None:
                handle.stop()
            if metrics is not None:
                metrics.close()
    _print_summary(summary, as_json)


@worker_app.command("status")
def status(
    state: Annotated[str | None, typer.Option(help="State folder or postgresql:// DSN.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """The worker's trading state, positions, orders, fills, PnL and stream position."""
    cfg = settings()
    with reported_errors():
        from flowsense.live.state import StateStore

        st = StateStore(state or cfg.worker_state, readonly=True).status()
    if as_json:
        sys.stdout.write(json.dumps(st, default=str) + "\n")
        return
    for k, v in st.items():
        console.print(f"{k:>24}: {v}")


@worker_app.command("resume")
def resume(
    state: Annotated[str | None, typer.Option(help="State folder or postgresql:// DSN.")] = None,
    reduce: Annotated[bool, typer.Option("--reducing", help="Resume in REDUCING (only position-reducing orders).")] = False,
) -> None:
    """Clear a halt: the worker trades again (ACTIVE, or REDUCING with --reducing) from its next decision."""
    cfg = settings()
    with reported_errors():
        from flowsense.live.state import StateStore

        store = StateStore(state or cfg.worker_state)
        before = store.trading_state()
        target = "REDUCING" if reduce else "ACTIVE"
        store.set_trading_state(target, "operator")
    console.print(f"trading state {before['state']} -> {target}")


def register(app: typer.Typer) -> None:
    app.add_typer(worker_app, name="worker")
