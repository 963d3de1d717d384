"""Ingestion: detect a raw file's format, read it, validate it, write its partitions atomically.

A file is read completely (every day it holds) before anything is written, so malformed input raises an
:class:`IngestError` naming the file and line and writes nothing. Re-ingesting a file replaces its
partitions.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from flowsense.data import lobster
from flowsense.data.day import DayTables
from flowsense.data.instruments import Instrument
from flowsense.data.lake import Lake, Partition
from flowsense.data.validate import ValidationReport, validate_day
from flowsense.errors import IngestError

FORMATS = ("lobster", "dbn", "ticks")


@dataclass(frozen=True, slots=True)
class IngestResult:
    partition: Partition
    source: str
    format: str
    report: ValidationReport
    paths: dict[str, Path]


def detect_format(path: Path) -> str:
    """Name the reader for ``path`` (``lobster``, ``dbn`` or ``ticks``) or raise ``IngestError``."""
    if not path.exists():
        raise IngestError(path, "file not found")
    if path.is_dir():
        raise IngestError(path, "is a directory; pass files (a shell glob works)")
    if lobster.is_lobster(path):
        return "lobster"
    if path.suffix == ".zip":
        if not zipfile.is_zipfile(path):
            raise IngestError(path, "has a .zip suffix but is not a zip archive")
        with zipfile.ZipFile(path) as zf:
            if any(lobster.NAME_RE.search(n) for n in zf.namelist()):
                return "lobster"
    from flowsense.data import dbn, ticks

    if dbn.looks_like_dbn(path):
        return "dbn"
    if ticks.looks_like_ticks(path):
        return "ticks"
    raise IngestError(
        path,
        "unknown file type: expected a LOBSTER zip or message/orderbook CSV, a Databento .dbn[.zst], "
        "or a trades/quotes CSV/Parquet with a header row",
    )


def read_file(
    path: str | Path,
    *,
    symbol: str | None = None,
    date: dt.date | None = None,
    tz: str = "UTC",
    fmt: str | None = None,
    lake: Lake | None = None,
) -> tuple[str, list[DayTables]]:
    """Read every symbol x day in ``path`` into canonical tables (nothing is written)."""
    path = Path(path)
    fmt = fmt or detect_format(path)
    days: list[DayTables]
    if fmt == "lobster":
        days = lobster.read_lobster(path, symbol=symbol, date=date)
    elif fmt == "dbn":
        from flowsense.data.dbn import read_dbn

        days = read_dbn(path, symbol=symbol)
        if date is not None:
            days = [d for d in days if d.date == date]
    elif fmt == "ticks":
        from flowsense.data.ticks import read_ticks, symbol_from_name

        days = read_ticks(path, symbol=symbol, date=date, tz=tz,
                          size_scale=_known_size_scale(symbol or symbol_from_name(path), lake))
    else:
        raise IngestError(path, f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not days:
        raise IngestError(path, "no rows to ingest")
    return fmt, [d.conformed() for d in days]


@dataclass(frozen=True, slots=True)
class InstrumentResult:
    """An ingested instrument definition (written to the lake's ``instruments`` table, no partition)."""

    instrument: Instrument
    source: str
    format: str = "dbn-definition"


def is_definition_file(path: Path, fmt: str | None = None) -> bool:
    """True for a Databento ``definition`` file (read into instruments, not partitions)."""
    from flowsense.data import dbn

    if fmt not in (None, "dbn") or not dbn.looks_like_dbn(path):
        return False
    try:
        return dbn.dbn_schema(path) == "definition"
    except IngestError:
        return False


def ingest_definitions(path: str | Path, lake: Lake, *, symbol: str | None = None) -> list[InstrumentResult]:
    """Read a DBN definition file and upsert its instruments into the lake's ``instruments`` table."""
    from flowsense.data.dbn import read_definitions
    from flowsense.data.instruments import write_instruments

    path = Path(path)
    insts = read_definitions(path, symbol=symbol)
    write_instruments(lake.root, insts)
    return [InstrumentResult(i, str(path)) for i in insts]


def _known_size_scale(symbol: str, lake: Lake | None) -> int | None:
    """The size scale ``symbol`` is stored with: the lake's instruments table, else a built-in default
    above 1 (Binance pairs: 1e8); None lets the reader choose (1 for whole numbers, else 1e8)."""
    from flowsense.data.instruments import builtin_instrument, read_table

    if lake is not None:
        known = read_table(lake.root).get(symbol)
        if known is not None:
            return known.size_scale
    base = builtin_instrument(symbol)
    return base.size_scale if base.size_scale > 1 else None


def _remember_instruments(lake: Lake, days: list[DayTables]) -> None:
    """Every ingested symbol gets a row in the lake's ``instruments`` table (with its size scale)."""
    from flowsense.data.instruments import remember_scale

    for sym, scale in sorted({(d.symbol, d.size_scale) for d in days}):
        remember_scale(lake.root, sym, scale)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ingest_file(
    path: str | Path,
    lake: Lake,
    *,
    symbol: str | None = None,
    date: dt.date | None = None,
    tz: str = "UTC",
    fmt: str | None = None,
    on_day: Callable[[IngestResult], None] | None = None,
) -> list[IngestResult]:
    """Read, validate and write every partition in ``path``; return one result per partition."""
    path = Path(path)
    fmt, days = read_file(path, symbol=symbol, date=date, tz=tz, fmt=fmt, lake=lake)
    digest = sha256(path)
    reports = [validate_day(d) for d in days]
    results: list[IngestResult] = []
    for day, report in zip(days, reports, strict=True):
        sidecar = {
            **report.as_dict(),
            "format": fmt,
            "source": str(path.resolve()),
            "source_sha256": digest,
            "ingested_at": dt.datetime.now(dt.UTC).isoformat(),
            "ok": report.ok,
            "size_scale": day.size_scale,
        }
        paths = lake.write_day(day, sidecar)
        _remember_instruments(lake, [day])
        result = IngestResult(Partition(day.symbol, day.date), str(path), fmt, report, paths)
        results.append(result)
        if on_day is not None:
            on_day(result)
    return results

