"""Composing one symbol-day from several sources: a *book* source and a *trades* source.

A source plays one role in its partition:

* ``book``: it carries a book (LOBSTER, DBN MBO/MBP-1/MBP-10/TBBO, a quotes file, a raw Binance capture);
  its events are the book's events, row-aligned with the book;
* ``trades``: trades only (a trades CSV/Parquet, DBN ``trades``).

Ingesting a source replaces only the source of the same role (so ``quotes`` then ``trades`` keep both; two
book sources of one day: the last one wins). When a partition has both, its canonical tables are merged:

* ``events`` = the book source's events without its own ``trade`` prints (MBP-1/MBO ``T`` records, which do
  not change the book) + the trades source's trade events, ordered by ``ts``; at equal ``ts`` the trade
  comes first (a print precedes the book update it causes); ``seq`` is renumbered densely;
* ``book`` stays row-aligned with ``events``: a trade row carries the book as it was after the previous book
  event (empty before the first one);
* ``trades`` = the trades source's trades (its ``seq`` pointing at the merged events). A book source's own
  trades (LOBSTER executions, MBO/MBP-1 ``T``) are replaced by the trades source's - they are the same
  trades from another feed, and keeping both would double count. LOBSTER executions stay in ``events`` as
  the book events they are (``execute_visible``...).
"""

from __future__ import annotations

import numpy as np
import polars as pl

from flowsense.data.day import DayTables, add_keys
from flowsense.data.schemas import BOOK_EXTRAS, EVENTS_SCHEMA, TRADES_SCHEMA, book_level_columns, book_schema
from flowsense.errors import IngestError

ROLES = ("book", "trades")


def role_of(day: DayTables) -> str:
    return "book" if day.book is not None else "trades"


def compose(book_day: DayTables, trades_day: DayTables) -> DayTables:
    """Merge a book source and a trades source of the same symbol-day (see the module docstring)."""
    if book_day.book is None:
        raise ValueError("book_day has no book")
    ev_b = book_day.events
    if book_day.book.height != ev_b.height:
        raise IngestError(
            book_day.sources[0] if book_day.sources else book_day.symbol,
            "cannot merge a trades source into a book that is not row-aligned with its events",
        )
    levels = book_day.levels
    extras = [c for c in BOOK_EXTRAS if c in book_day.book.columns]
    level_cols = book_level_columns(levels) + extras
    keep = (ev_b["event_type"].cast(pl.String) != "trade").to_numpy()
    b_idx = np.flatnonzero(keep)
    ev_t = trades_day.events
    n_b, n_t = b_idx.size, ev_t.height

    ts = np.concatenate([
        ev_b["ts"].dt.epoch("ns").to_numpy()[b_idx], ev_t["ts"].dt.epoch("ns").to_numpy()
    ])
    # order: ts, then trades before book events, then each source's own order
    src = np.concatenate([np.ones(n_b, dtype=np.int8), np.zeros(n_t, dtype=np.int8)])
    within = np.concatenate([np.arange(n_b), np.arange(n_t)])
    order = np.lexsort((within, src, ts))
    is_book = src[order] == 1
    # book row of each merged row: its own (book rows) or the last preceding book row (trade rows)
    pos_in_b = np.where(is_book, within[order], -1)
    last = np.maximum.accumulate(np.where(is_book, np.arange(order.size), -1)) if order.size else pos_in_b
    src_row = np.where(last >= 0, pos_in_b[np.maximum(last, 0)], -1)  # index into b_idx, -1: no book yet
    book_rows = np.where(src_row >= 0, b_idx[np.maximum(src_row, 0)], -1)

    ev_cols = [c for c in EVENTS_SCHEMA if c not in ("symbol", "date", "seq")]
    events = pl.concat([ev_b[b_idx].select(ev_cols), ev_t.select(ev_cols)], how="vertical")[order]
    bk = book_day.book.select(level_cols)
    gather = pl.Series(np.maximum(book_rows, 0))
    book_vals = bk[gather]
    if (book_rows < 0).any():
        none = pl.Series(book_rows < 0)
        book_vals = book_vals.with_columns(
            [pl.when(none).then(None).otherwise(pl.col(c)).alias(c) for c in level_cols]
        )
    merged = add_keys(events, book_day.symbol, book_day.date)
    book = pl.concat([merged.select("ts", "symbol", "date", "seq"), book_vals], how="horizontal")
    book = book.select([*book_schema(levels), *extras])
    check = None
    if book_day.book_check is not None:
        bc = book_day.book_check.to_numpy()
        check = pl.Series("book_check", np.where(book_rows >= 0, bc[np.maximum(book_rows, 0)], True))

    # trades: the trades source's, seq -> the merged row of its event
    new_seq_of_t = np.empty(n_t, dtype=np.int64)
    t_rows = np.flatnonzero(~is_book)
    new_seq_of_t[within[order][t_rows]] = t_rows
    old_t_seq = ev_t["seq"].to_numpy()
    tr = trades_day.trades
    if tr.height:
        pos = np.searchsorted(old_t_seq, tr["seq"].to_numpy())
        tr = tr.with_columns(pl.Series("seq", new_seq_of_t[np.minimum(pos, n_t - 1)]))
    tr = tr.with_columns(pl.lit(book_day.symbol).alias("symbol"), pl.lit(book_day.date).alias("date"))
    return DayTables(
        book_day.symbol, book_day.date,
        events=merged.select(list(EVENTS_SCHEMA)),
        trades=tr.select(list(TRADES_SCHEMA)).sort("seq"),
        book=book,
        sources=(*book_day.sources, *trades_day.sources),
        size_scale=book_day.size_scale,
        book_check=check,
        extra={**trades_day.extra, **book_day.extra},
    ).conformed()
