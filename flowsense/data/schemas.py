"""The one place that names every canonical column and dtype.

Three canonical tables, hive-partitioned by ``symbol=``/``date=`` in the lake, one Parquet file per
partition:

* ``events`` - one row per market event (order-book message, trade print or quote update).
* ``book``   - the book *after* each event, ``levels`` deep (for LOBSTER aligned with ``events`` row by row).
* ``trades`` - one row per trade, with the aggressor side (+1 buyer-initiated, -1 seller-initiated).

Conventions: ``ts`` is UTC nanoseconds (``Datetime("ns", "UTC")``); ``seq`` is the row order within the
day (0-based, dense); prices are float64 in the instrument's currency (dollars for US equities); sizes are
int64; ``side`` is +1 buy / -1 sell (null where unknown). Empty book levels have null price *and* size.
"""

from __future__ import annotations

import polars as pl

TABLES = ("events", "book", "trades")

EVENT_TYPES: tuple[str, ...] = (
    "add",  # new limit order
    "cancel",  # partial cancellation
    "delete",  # full deletion
    "modify",  # price/size modification (DBN MBO)
    "execute_visible",  # execution of a visible resting order
    "execute_hidden",  # execution of a hidden order
    "cross",  # auction / cross trade
    "halt",  # trading halt
    "quote_resume",  # quoting resumes after a halt
    "trade_resume",  # trading resumes after a halt
    "trade",  # trade print (trades feeds, DBN trades/MBP)
    "fill",  # fill of a resting order (DBN MBO 'F')
    "quote",  # top-of-book quote update
    "clear",  # book cleared (DBN MBO 'R')
    "none",  # no book action (DBN 'N')
)
EventType = pl.Enum(list(EVENT_TYPES))

TS = pl.Datetime("ns", "UTC")

EVENTS_SCHEMA: dict[str, pl.DataType] = {
    "ts": TS,
    "symbol": pl.String(),
    "date": pl.Date(),
    "seq": pl.Int64(),
    "event_type": EventType,
    "order_id": pl.Int64(),
    "side": pl.Int8(),
    "price": pl.Float64(),
    "size": pl.Int64(),
}

TRADES_SCHEMA: dict[str, pl.DataType] = {
    "ts": TS,
    "symbol": pl.String(),
    "date": pl.Date(),
    "seq": pl.Int64(),
    "price": pl.Float64(),
    "size": pl.Int64(),
    "aggressor_side": pl.Int8(),
}

BOOK_KEYS: dict[str, pl.DataType] = {
    "ts": TS,
    "symbol": pl.String(),
    "date": pl.Date(),
    "seq": pl.Int64(),
}


# Optional book columns some readers add after the levels: ``book_complete`` (raw Binance captures) is true
# where every level shown is known (see flowsense.data.binance).
BOOK_EXTRAS: dict[str, pl.DataType] = {"book_complete": pl.Boolean()}


def book_level_columns(levels: int) -> list[str]:
    """Book columns in LOBSTER order: ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ask_px_2, ..."""
    cols: list[str] = []
    for k in range(1, levels + 1):
        cols += [f"ask_px_{k}", f"ask_sz_{k}", f"bid_px_{k}", f"bid_sz_{k}"]
    return cols


def book_schema(levels: int) -> dict[str, pl.DataType]:
    schema = dict(BOOK_KEYS)
    for col in book_level_columns(levels):
        schema[col] = pl.Float64() if "_px_" in col else pl.Int64()
    return schema


def book_levels(columns: list[str] | tuple[str, ...]) -> int:
    """Number of levels present in a book frame's columns."""
    return sum(1 for c in columns if c.startswith("ask_px_"))


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast ``df`` to ``schema`` (exact column order), failing loudly on a missing column."""
    missing = [c for c in schema if c not in df.columns]
    if missing:
        raise ValueError(f"missing columns {missing}; have {df.columns}")
    return df.select([pl.col(c).cast(t, strict=True) for c, t in schema.items()])
