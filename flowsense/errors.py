"""Errors that name what went wrong and where, so users can fix their input."""

from __future__ import annotations

from pathlib import Path


class FlowSenseError(Exception):
    """Base class of every error FlowSense raises on purpose."""


class ConfigError(FlowSenseError):
    """Bad or missing configuration (environment variables, CLI options)."""


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
