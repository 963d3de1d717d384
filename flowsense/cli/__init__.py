"""The ``flowsense`` command-line program.

Each command group lives in its own module with a ``register(app)`` function, so the program stays small
and each part of the pipeline owns its own command. **A command module's top level imports only typer,
the standard library and ``flowsense.cli.common``**; polars, numba, duckdb, mlflow, torch... are imported
inside the command function, so ``flowsense --help`` answers in well under 0.5 s
(``tests/cli/test_cli_imports.py`` checks it).

Errors are handled in ONE place, :class:`GuardedGroup` (the root group of every command, nested groups
included):

* :class:`~flowsense.errors.FlowSenseError` -> its one-line message on stderr, exit 2;
* ``OSError`` (read-only or full ``FLOWSENSE_HOME``, unreadable file) -> ``file: reason``, exit 2;
* Ctrl-C -> one line saying what was interrupted and what the lake holds, exit 130 (128 + SIGINT, the
  shell convention);
* anything else is a bug and keeps its traceback. ``FLOWSENSE_DEBUG=1`` shows tracebacks for all of them.
"""

from __future__ import annotations

import errno
import importlib
import os
from typing import Any

import typer
from typer.core import TyperGroup

from flowsense.cli.common import current_activity, print_error
from flowsense.errors import FlowSenseError, describe_os_error


def _home() -> str | None:
    try:
        from flowsense.config import Settings

        return str(Settings.from_env().home)
    except FlowSenseError:
        return None


class GuardedGroup(TyperGroup):
    """The root command group: turns the errors a user can act on into one line and an exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except KeyboardInterrupt:
            if os.environ.get("FLOWSENSE_DEBUG"):
                raise
            what = current_activity()
            command = ctx.invoked_subcommand or "command"
            print_error(f"flowsense {command} stopped by Ctrl-C"
                        + (f" while {what}" if what else "; the lake is unchanged"),
                        prefix="interrupted")
            raise typer.Exit(130) from None
        except FlowSenseError as exc:
            if os.environ.get("FLOWSENSE_DEBUG"):
                raise
            print_error(exc)
            raise typer.Exit(2) from None
        except OSError as exc:
            if os.environ.get("FLOWSENSE_DEBUG") or exc.errno == errno.EPIPE:
                raise  # a closed pipe (``| head``): typer exits quietly
            print_error(describe_os_error(exc, _home()))
            raise typer.Exit(2) from None


app = typer.Typer(
    name="flowsense",
    cls=GuardedGroup,
    help="FlowSense: order-book data -> features -> models -> backtests. State lives in FLOWSENSE_HOME.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain click help: typer's rich help imports rich.markdown/traceback/pretty (~1 s on this machine)
    rich_markup_mode=None,
)

COMMAND_MODULES = ("ingest", "simulate", "catalog", "partitions", "demo", "features", "backtest", "api", "worker",
                   "publish", "train", "models", "evaluate", "walkforward")

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
