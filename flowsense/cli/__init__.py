"""The ``flowsense`` command-line program.

Each command group lives in its own module with a ``register(app)`` function, so the program stays small
and each part of the pipeline owns its own command. Modules are imported lazily where they are heavy.
"""

from __future__ import annotations

import importlib

import typer

app = typer.Typer(
    name="flowsense",
    help="FlowSense: order-book data -> features -> models -> backtests. State lives in FLOWSENSE_HOME.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = ("ingest", "simulate", "catalog", "demo", "features", "backtest", "api", "worker", "publish")

for _name in COMMAND_MODULES:
    try:
        _mod = importlib.import_module(f"flowsense.cli.{_name}")
    except ModuleNotFoundError as exc:  # a part of the pipeline not built yet
        if exc.name != f"flowsense.cli.{_name}":
            raise
        continue
    _mod.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
