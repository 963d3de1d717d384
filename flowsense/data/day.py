"""``DayTables``: what every reader returns, one value per symbol x day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from flowsense.data.schemas import (
    BOOK_EXTRAS,
    EVENTS_SCHEMA,
    TRADES_SCHEMA,
    book_levels,
    book_schema,
    conform,
)


@dataclass(frozen=True)
class DayTables:
    """The canonical tables of one symbol on one day, as read from one source.

    ``book`` is None for sources without depth (a trades-only CSV, DBN trades). ``levels`` is the book
    depth (0 without a book). ``sources`` names the files the tables came from, for lineage.
    """

    symbol: str
    date: dt.date
    events: pl.DataFrame
    trades: pl.DataFrame
    book: pl.DataFrame | None = None
    sources: tuple[str, ...] = field(default_factory=tuple)
    size_scale: int = 1  # stored size = real quantity x size_scale (10**8 for fractional crypto sizes)
    # per book row: True where the book is at a consistent state (DBN: record flagged F_LAST, the end of an
    # event); None = every row. Used by validation only, not stored.
    book_check: pl.Series | None = None
    # reader facts for the partition's report (e.g. {"book_complete_rows": ..., "depth_gaps": 0})
    extra: dict[str, Any] = field(default_factory=dict)
    #: assumptions the reader made (symbol from the file name, epoch unit, ...), one line each, for the
    #: ingest summary: a guess is never silent
    guesses: tuple[str, ...] = field(default_factory=tuple)

    @property
    def levels(self) -> int:
        return 0 if self.book is None else book_levels(self.book.columns)

    @property
    def partition(self) -> str:
        return f"{self.symbol}|{self.date.isoformat()}"

    def conformed(self) -> DayTables:
        """Return a copy with every table cast to its canonical schema (raises on a mismatch)."""
        book = None
        if self.book is not None:
            schema = book_schema(self.levels)
            schema.update({c: t for c, t in BOOK_EXTRAS.items() if c in self.book.columns})
            book = conform(self.book, schema)
        return DayTables(
            symbol=self.symbol,
            date=self.date,
            events=conform(self.events, EVENTS_SCHEMA),
            trades=conform(self.trades, TRADES_SCHEMA),
            book=book,
            sources=self.sources,
            size_scale=self.size_scale,
            book_check=self.book_check,
            extra=self.extra,
            guesses=self.guesses,
        )


def add_keys(df: pl.DataFrame, symbol: str, date: dt.date) -> pl.DataFrame:
    """Add the ``symbol``, ``date`` and dense ``seq`` columns every canonical table carries."""
    return df.with_columns(
        pl.lit(symbol, dtype=pl.String).alias("symbol"),
        pl.lit(date, dtype=pl.Date).alias("date"),
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("seq"),
    )


def split_by_day(df: pl.DataFrame, tz: str = "UTC") -> dict[dt.date, pl.DataFrame]:
    """Split a frame with a ``ts`` column into trading days (calendar day in ``tz``), keeping row order."""
    if df.is_empty():
        return {}
    day = pl.col("ts").dt.convert_time_zone(tz).dt.date().alias("__day")
    parts = df.with_columns(day).partition_by("__day", as_dict=True, maintain_order=True)
    return {key[0]: part.drop("__day") for key, part in parts.items()}
