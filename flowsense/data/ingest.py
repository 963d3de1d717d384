"""Ingestion: detect a raw file's format, read it, validate it, write its partitions atomically.

A file is read completely (every day it holds) before anything is written, so malformed input raises an
:class:`IngestError` naming the file and line and writes nothing. Re-ingesting a file replaces what it
provided (idempotent: the same file twice gives the same tables and version). A trades-only source and a
book source of the same symbol-day are merged, not replaced (:mod:`flowsense.data.compose`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from flowsense.data import lobster
from flowsense.data.compose import compose, role_of
from flowsense.data.day import DayTables
from flowsense.data.instruments import Instrument
from flowsense.data.lake import Lake, Partition
from flowsense.data.schemas import TRADES_SCHEMA
from flowsense.data.validate import ValidationReport, validate_day
from flowsense.errors import IngestError, deferred_interrupt

FORMATS = ("lobster", "dbn", "orderlog", "bitstamp-feed", "binance", "ticks")
ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True, slots=True)
class IngestResult:
    partition: Partition
    source: str
    format: str
    report: ValidationReport
    paths: dict[str, Path]
    role: str = "book"  # the source's role in the partition: "book" or "trades"
    replaced: tuple[str, ...] = ()  # what this ingest replaced ("trades source x.parquet"), for the summary
    kept: tuple[str, ...] = ()  # other sources of the partition merged with this one
    version: str = ""  # the partition's content version after this ingest (Lake.version)
    previous_version: str | None = None
    invalidated: tuple[str, ...] = ()  # derived tables removed because the version changed
    guesses: tuple[str, ...] = ()  # what the reader assumed (symbol from the file name, ...), one line each

    def summary(self) -> str:
        """One line for the ingest summary: what was replaced, kept and invalidated."""
        parts = []
        if self.replaced:
            parts.append("replaced " + ", ".join(self.replaced))
        if self.kept:
            parts.append("merged with " + ", ".join(self.kept))
        if self.invalidated:
            parts.append("removed stale " + ", ".join(self.invalidated))
        if self.previous_version is not None and self.previous_version == self.version:
            parts.append("unchanged")
        return "; ".join(parts) or "new partition"


def detect_format(path: Path) -> str:
    """Name the reader for ``path`` (``lobster``, ``dbn`` or ``ticks``) or raise ``IngestError``."""
    if not path.exists():
        raise IngestError(path, "file not found")
    if path.is_dir():
        raise IngestError(path, "is a directory; pass files (a shell glob works)")
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4)
    except OSError as exc:
        raise IngestError(path, f"cannot read file ({exc.strerror or exc})") from exc
    if size == 0:
        raise IngestError(path, "file is empty (0 bytes)")
    if lobster.is_lobster(path):
        return "lobster"
    if path.suffix == ".zip" or head == ZIP_MAGIC:
        if not zipfile.is_zipfile(path):
            if head == ZIP_MAGIC:
                raise IngestError(path, f"zip archive is truncated: it starts like a zip but its end (the "
                                        f"central directory) is missing after {size:,} bytes")
            raise IngestError(path, "has a .zip suffix but is not a zip archive")
        with zipfile.ZipFile(path) as zf:
            if any(lobster.NAME_RE.search(n) for n in zf.namelist()):
                return "lobster"
    from flowsense.data import dbn, ticks

    if dbn.looks_like_dbn(path):
        return "dbn"
    from flowsense.data import binance, orderlog

    if orderlog.looks_like_order_log(path):
        return "orderlog"
    if orderlog.looks_like_bitstamp_feed(path):
        return "bitstamp-feed"
    if binance.looks_like_binance_capture(path):
        return "binance"
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
    tz: str | None = None,
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
    elif fmt == "orderlog":
        from flowsense.data.orderlog import read_order_log

        days = read_order_log(path, symbol=symbol, date=date)
    elif fmt == "bitstamp-feed":
        from flowsense.data.orderlog import read_bitstamp_feed

        days = read_bitstamp_feed(path, symbol=symbol, date=date)
    elif fmt == "binance":
        from flowsense.data.binance import read_binance_capture

        days = read_binance_capture(path, symbol=symbol, date=date)
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


def _previous_sources(lake: Lake, part: Partition) -> dict[str, dict[str, Any]]:
    """The sources a partition holds now, by role (reports of older versions: one source, role by book)."""
    report = lake.read_report(part)
    if not report:
        return {}
    if isinstance(report.get("sources"), dict):
        return {str(k): dict(v) for k, v in report["sources"].items()}
    role = "book" if lake.exists("book", part) else "trades"
    return {role: {k: report.get(k) for k in ("source", "source_sha256", "format")}}


def _original(lake: Lake, part: Partition, role: str, meta: Mapping[str, Any], single: bool) -> DayTables | None:
    """The tables a kept source of ``role`` provided: its ``_sources`` copy, else (single-source
    partition) the canonical tables themselves."""
    kept = lake.read_source(role, part, meta.get("source_sha256"))
    if kept is not None:
        return kept
    if not single or not lake.exists("events", part):
        return None
    book = lake.read("book", part) if lake.exists("book", part) else None
    trades = lake.read("trades", part) if lake.exists("trades", part) else pl.DataFrame(schema=TRADES_SCHEMA)
    report = lake.read_report(part) or {}
    return DayTables(part.symbol, part.date, lake.read("events", part), trades, book,
                     sources=(str(meta.get("source")),), size_scale=int(report.get("size_scale") or 1))


def _describe(meta: Mapping[str, Any]) -> str:
    return Path(str(meta.get("source", "?"))).name


@dataclass(frozen=True, slots=True)
class _Plan:
    day: DayTables  # what the partition's canonical tables become
    role: str
    sources: dict[str, dict[str, Any]]
    keep: dict[str, DayTables]  # sources to keep under _sources (multi-source partitions only)
    replaced: tuple[str, ...]
    kept: tuple[str, ...]


def _plan(lake: Lake, day: DayTables, meta: dict[str, Any]) -> _Plan:
    part = Partition(day.symbol, day.date)
    role = role_of(day)
    prev = _previous_sources(lake, part)
    replaced: list[str] = []
    if role in prev:
        same = prev[role].get("source_sha256") == meta["source_sha256"]
        replaced.append(f"{role} source {_describe(prev[role])}" + (" (same content)" if same else ""))
    others = {r: m for r, m in prev.items() if r != role}
    if not others:
        return _Plan(day, role, {role: meta}, {}, tuple(replaced), ())
    (other_role, other_meta), = others.items()
    original = _original(lake, part, other_role, other_meta, single=len(prev) == 1)
    if original is None:  # the other source's tables are gone: this source replaces the partition
        replaced.append(f"{other_role} source {_describe(other_meta)} (its tables could not be recovered)")
        return _Plan(day, role, {role: meta}, {}, tuple(replaced), ())
    book_day, trades_day = (day, original) if role == "book" else (original, day)
    if book_day.size_scale != trades_day.size_scale:
        raise IngestError(
            meta["source"], f"sizes are stored x{day.size_scale} but the partition's {other_role} source "
            f"{_describe(other_meta)} has x{original.size_scale}; ingest both with the same size scale",
        )
    composed = compose(book_day, trades_day)
    return _Plan(composed, role, {role: meta, other_role: other_meta}, {role: day, other_role: original},
                 tuple(replaced), (f"{other_role} source {_describe(other_meta)}",))


def ingest_file(
    path: str | Path,
    lake: Lake,
    *,
    symbol: str | None = None,
    date: dt.date | None = None,
    tz: str | None = None,
    fmt: str | None = None,
    on_day: Callable[[IngestResult], None] | None = None,
    only_date: dt.date | None = None,
) -> list[IngestResult]:
    """Read, validate and write every partition in ``path``; return one result per partition.

    ``date`` is the file's date (a file holding another day is an error); ``only_date`` ingests just that
    day of a file that may hold several (what a Dagster partition's run does).

    A source replaces only the source of the same role in its partition (see :mod:`flowsense.data.compose`);
    when the partition's content version changes, its derived tables are removed (they are stale).
    """
    from flowsense.data.instruments import instrument_for

    path = Path(path)
    fmt, days = read_file(path, symbol=symbol, date=date, tz=tz, fmt=fmt, lake=lake)
    if only_date is not None:
        days = [d for d in days if d.date == only_date]
    digest = sha256(path)
    now = dt.datetime.now(dt.UTC).isoformat()
    plans: list[_Plan] = []
    guesses: list[tuple[str, ...]] = []
    for day in days:
        meta = {"source": str(path.resolve()), "source_sha256": digest, "format": fmt, "ingested_at": now,
                "events": day.events.height, "trades": day.trades.height, "levels": day.levels}
        plans.append(_plan(lake, day, meta))
        guesses.append(day.guesses)  # the reader's day: a composed (merged) day does not carry them
    reports = [validate_day(p.day, instrument=instrument_for(p.day.symbol, lake)) for p in plans]
    results: list[IngestResult] = []
    for plan, report, guessed in zip(plans, reports, guesses, strict=True):
        day = plan.day
        part = Partition(day.symbol, day.date)
        before = lake.version(part)
        sidecar = {
            **report.as_dict(),
            "format": fmt,
            "source": str(path.resolve()),
            "source_sha256": digest,
            "ingested_at": now,
            "ok": report.ok,
            "size_scale": day.size_scale,
            "guesses": list(guessed),
            "sources": plan.sources,
            **{k: v for k, v in day.extra.items() if k not in report.as_dict()},
        }
        with deferred_interrupt():  # Ctrl-C waits for the partition's commit: never half a partition
            if plan.keep:
                for role, src_day in plan.keep.items():
                    sha = plan.sources[role]["source_sha256"]
                    if lake.read_source(role, part, sha) is None or role == plan.role:
                        lake.write_source(role, src_day, plan.sources[role])
            paths = lake.write_day(day, sidecar)
            if not plan.keep:
                lake.drop_sources(part)
            after = lake.version(part)
            invalidated = tuple(lake.invalidate_derived(part)) if before is not None and before != after else ()
            _remember_instruments(lake, [day])
        result = IngestResult(Partition(day.symbol, day.date), str(path), fmt, report, paths,
                              role=plan.role, replaced=plan.replaced, kept=plan.kept, version=after or "",
                              previous_version=before, invalidated=invalidated,
                              guesses=guessed)
        results.append(result)
        if on_day is not None:
            on_day(result)
    return results
