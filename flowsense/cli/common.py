"""Helpers shared by CLI commands: settings, error reporting, progress bars."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from flowsense.config import Settings
from flowsense.errors import FlowSenseError

console = Console(stderr=False)
err_console = Console(stderr=True)


def settings() -> Settings:
    try:
        return Settings.from_env()
    except FlowSenseError as exc:
        fail(exc)
        raise  # unreachable


def fail(exc: BaseException | str, code: int = 2) -> None:
    """Print a clear error and exit non-zero."""
    err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn FlowSense errors into a one-line message and exit code 2 (no traceback)."""
    try:
        yield
    except FlowSenseError as exc:
        fail(exc)


def progress() -> Progress:
    """A rich progress bar (quiet when stdout is not a terminal is handled by rich itself)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=not sys.stderr.isatty(),
    )
