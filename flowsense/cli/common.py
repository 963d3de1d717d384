"""Helpers shared by CLI commands: settings, error reporting, progress bars, terminal output.

Import cost matters here: ``flowsense --help`` imports every command module, and every command module
imports this one. Top level: standard library, typer and the two light flowsense modules only. ``rich``
(consoles, tables, progress) is imported on first use.

Output conventions:

* errors go to stderr as ONE plain line ``error: <file>[:<line>]: <reason>`` (no rich markup, no emoji,
  no wrapping), printed by :func:`print_error` — the central handler in ``flowsense.cli`` calls it for
  every :class:`~flowsense.errors.FlowSenseError`, so commands just raise;
* ``console`` (stdout) and ``err_console`` (stderr) are rich consoles with emoji and highlighting off, so
  ``file.csv:100:`` stays text. Markup stays on for our own styling: escape user text with :func:`esc`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import typer

from flowsense.config import Settings
from flowsense.errors import FlowSenseError, check_writable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

    from flowsense.data.lake import Lake


def _env_width(default: int) -> int:
    """``COLUMNS`` when it is a positive number, else ``default``."""
    try:
        return max(int(os.environ.get("COLUMNS", "")), 20)
    except ValueError:
        return default


class _LazyConsole:
    """A rich ``Console`` created on first use (``rich`` costs ~60 ms to import)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None
        self._width: int | None = None

    def get(self) -> Console:
        from rich.console import Console

        stream = sys.stderr if self._stderr else sys.stdout
        # to a pipe rich would use 80 columns and fold wide tables; use COLUMNS or 160 there. The width is
        # looked up on every use (a cached console would keep the width of whoever printed first)
        width = None if stream.isatty() else _env_width(160)
        if self._console is None or self._width != width:
            self._console = Console(stderr=self._stderr, emoji=False, highlight=False, width=width)
            self._width = width
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console: Any = _LazyConsole(stderr=False)
err_console: Any = _LazyConsole(stderr=True)


def esc(text: object) -> str:
    """``text`` with rich markup escaped (file names, messages: anything that did not come from us)."""
    from rich.markup import escape

    return escape(str(text))


def _color(stream: Any) -> bool:
    return bool(getattr(stream, "isatty", lambda: False)()) and "NO_COLOR" not in os.environ


def print_error(message: object, *, prefix: str = "error") -> None:
    """Print ``prefix: message`` as one plain line on stderr (newlines in ``message`` become spaces)."""
    text = " ".join(str(message).split())
    head = f"\x1b[1;31m{prefix}:\x1b[0m" if _color(sys.stderr) else f"{prefix}:"
    sys.stderr.write(f"{head} {text}\n")
    sys.stderr.flush()


def print_note(message: object) -> None:
    """One informational line on stderr (guesses, skipped partitions)."""
    print_error(message, prefix="note")


def settings() -> Settings:
    try:
        return Settings.from_env()
    except FlowSenseError as exc:
        fail(exc)


def fail(exc: BaseException | str, code: int = 2) -> NoReturn:
    """Print a clear one-line error and exit ``code`` (2: the user can act on it)."""
    print_error(exc)
    raise typer.Exit(code)


def lake(cfg: Settings | None = None) -> Lake:
    from flowsense.data.lake import Lake

    return Lake((cfg or settings()).lake)


def require_writable(cfg: Settings) -> None:
    """Fail at once (before reading any input) when ``FLOWSENSE_HOME`` cannot be written."""
    check_writable(cfg.home, cfg.home)


# ---- what is being done, for the Ctrl-C line -------------------------------------------------------
_doing: list[str] = []


def doing(text: str) -> None:
    """Say what the command is doing now; a Ctrl-C prints it with the lake's state (see ``flowsense.cli``).

    Example: ``doing("reading a.zip; nothing of it is written yet; 2 earlier files were ingested")``.
    """
    _doing[:] = [text]


def current_activity() -> str | None:
    return _doing[0] if _doing else None


@contextmanager
def reported_errors() -> Iterator[None]:
    """Kept for older call sites: the central handler in ``flowsense.cli`` now does this for every command."""
    try:
        yield
    except FlowSenseError as exc:
        fail(exc)


class _NoProgress:
    """What :func:`progress` returns off a terminal: the same calls, no output, no rich import."""

    def __enter__(self) -> _NoProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, *args: Any, **kwargs: Any) -> int:
        return 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        return None

    def advance(self, *args: Any, **kwargs: Any) -> None:
        return None


def progress() -> Progress:
    """A rich progress bar on stderr; when stderr is not a terminal, a silent stand-in."""
    if not sys.stderr.isatty():
        return _NoProgress()  # type: ignore[return-value]
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True, emoji=False, highlight=False),
    )


# ---- validation gating -------------------------------------------------------------------------------
def validation_problem(the_lake: Lake, part: Any) -> str | None:
    """Why ``part`` may not be used (its ERROR-severity checks failed), or None when it passed.

    Reads the partition's validation record (:func:`flowsense.data.validate.report_status`). A partition
    without one (written by code that does not validate, e.g. a test fixture) is allowed, with a note.
    """
    from flowsense.data.validate import report_status

    ok, reason = report_status(the_lake.read_report(part))
    if ok is None:
        print_note(f"{part.key}: {reason}; not checked")
        return None
    return None if ok else reason


def day_partition(cfg: Settings, symbol: str, day: Any, *, allow_invalid: bool, what: str) -> tuple[Lake, Any]:
    """The lake and ``symbol``'s ``day`` partition for a command that reads one day: one line and exit 2
    when it was never ingested, or failed validation (unless ``allow_invalid``; see :func:`gate`)."""
    from flowsense.data.lake import Lake, Partition

    the_lake = Lake(cfg.lake)
    part = Partition(symbol, day)
    if not the_lake.exists("events", part):
        fail(f"no events partition {part.key} in {cfg.lake}: ingest it first with flowsense ingest "
             "(flowsense partitions list shows what is there)")
    gate(the_lake, [part], allow_invalid=allow_invalid, what=what)
    return the_lake, part


def gate(the_lake: Lake, parts: list[Any], *, allow_invalid: bool, what: str, skip_invalid: bool = False
         ) -> list[Any]:
    """Refuse partitions that failed validation (one line each, exit 2) unless ``allow_invalid`` (use them)
    or ``skip_invalid`` (leave them out, with a note each)."""
    from flowsense.errors import InvalidPartitionError

    bad = [(p, r) for p in parts if (r := validation_problem(the_lake, p)) is not None]
    if not bad:
        return parts
    if allow_invalid:
        for p, r in bad:
            print_note(f"{p.key}: {r}; used anyway (--allow-invalid)")
        return parts
    if skip_invalid:
        for p, r in bad:
            print_note(f"{p.key}: {r}; skipped (--skip-invalid)")
        skipped = {p for p, _ in bad}
        return [p for p in parts if p not in skipped]
    if len(bad) == 1:
        p, r = bad[0]
        raise InvalidPartitionError(p.key, f"{r}; {what} refuses it: fix the source file and ingest it again, "
                                           "or pass --allow-invalid")
    for p, r in bad[:-1]:
        print_error(f"{p.key}: {r}")
    p, r = bad[-1]
    raise InvalidPartitionError(p.key, f"{r}; {what} refuses {len(bad)} partitions (listed above): fix their "
                                       "sources, or pass --allow-invalid")
