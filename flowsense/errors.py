"""Errors that name what went wrong and where, so users can fix their input.

Every error FlowSense raises on purpose is a :class:`FlowSenseError` whose message is one line naming the
file (and line, where there is one) and the reason. The command line prints that line and exits 2, with
no traceback (``flowsense.cli``'s central handler); library callers get the exception.

This module is imported by the command line before anything else: keep it standard library only.
"""

from __future__ import annotations

import errno
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class FlowSenseError(Exception):
    """Base class of every error FlowSense raises on purpose."""


class ConfigError(FlowSenseError):
    """Bad or missing configuration (environment variables, CLI options)."""


class UsageError(ConfigError):
    """A command-line option or argument that cannot work (checked before any work starts)."""


class IngestError(FlowSenseError):
    """Malformed input: names the file and, where known, the 1-based line number."""

    def __init__(self, path: str | Path, reason: str, line: int | None = None) -> None:
        self.path = str(path)
        self.reason = reason
        self.line = line
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class StaleInputsError(FlowSenseError):
    """A derived table was computed from inputs that have since been replaced (re-ingested)."""


class PartitionNotOkError(FlowSenseError):
    """A partition failed ERROR-severity validation checks; downstream steps refuse it."""


class StorageError(FlowSenseError):
    """The lake, catalog or reports folder cannot be read or written (permissions, read-only, disk full)."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class InvalidPartitionError(PartitionNotOkError):
    """A lake partition whose ERROR-severity validation checks failed, used where valid data is required."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"{key}: {reason}")


_WRITE_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EDQUOT}


def _hint(exc: OSError, home: str | Path | None) -> str:
    if exc.errno not in _WRITE_ERRNOS or home is None:
        return ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return f" (FLOWSENSE_HOME={home} is full: free space or point FLOWSENSE_HOME elsewhere)"
    return (f" (FLOWSENSE_HOME={home} is not writable: queries work read-only, commands that write need a "
            "writable FLOWSENSE_HOME)")


def describe_os_error(exc: OSError, home: str | Path | None = None) -> str:
    """One line for an ``OSError``: the file, the reason, and what to do about it where that is clear."""
    reason = (exc.strerror or str(exc)) + _hint(exc, home)
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


def check_writable(folder: str | Path, home: str | Path | None = None) -> None:
    """Raise :class:`StorageError` unless files can be created in ``folder`` (created if missing).

    Writing commands call this before reading their input, so a read-only ``FLOWSENSE_HOME`` is reported
    at once, not after a long read, and nothing is left behind.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe-{os.getpid()}-{threading.get_ident()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(folder, f"cannot write here: {exc.strerror or exc}{_hint(exc, home)}") from exc


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Hold Ctrl-C (SIGINT) until the block ends, so a commit (a few renames) is never cut in half.

    Outside the main thread, or where signals cannot be handled, this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[object] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda sig, frame: pending.append(sig))
    except (ValueError, OSError):  # pragma: no cover - not in the main interpreter
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if pending:
            raise KeyboardInterrupt
