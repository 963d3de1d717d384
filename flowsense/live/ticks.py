"""The tick wire format: one market event plus the book after it, as a fixed-size binary record.

Every source (lake replay, Redis Streams, Interactive Brokers) hands the worker :class:`TickBatch` es: a
numpy structured array of :func:`tick_dtype` records. On a Redis stream each entry carries one record in
field ``t`` (bytes) and its dedupe key in ``k`` (``SYMBOL|YYYY-MM-DD|seq``), so a consumer decodes a
whole ``XREADGROUP`` reply with one ``np.frombuffer``.

Record fields: ``ts`` (exchange time, int ns UTC), ``seq`` (row of the day; the dedupe key), ``n`` (events
expected in the session, -1 when unknown - a replayed day knows it, which is what lets a strategy flatten
on the last event as in the backtest), ``ev`` (index into :data:`flowsense.data.schemas.EVENT_TYPES`),
``side`` (+1/-1 of the resting order, 0 unknown), ``agg`` (aggressor side of a trade), ``price``
(dollars, NaN when none), ``size`` and ``book`` (LOBSTER order ``ask_px_1, ask_sz_1, bid_px_1, bid_sz_1,
...``; NaN price and 0 size for an empty level).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import polars as pl

from flowsense.data.schemas import EVENT_TYPES, book_levels

EV_INDEX = {name: i for i, name in enumerate(EVENT_TYPES)}


@lru_cache(maxsize=8)
def tick_dtype(levels: int) -> np.dtype:
    return np.dtype([("ts", "<i8"), ("seq", "<i8"), ("n", "<i8"), ("ev", "i1"), ("side", "i1"),
                     ("agg", "i1"), ("_pad", "V5"), ("price", "<f8"), ("size", "<i8"),
                     ("book", "<f8", (4 * levels,))])


def levels_of(dtype: np.dtype) -> int:
    return int(dtype["book"].shape[0] // 4)


@dataclass(frozen=True, slots=True)
class TickBatch:
    """Consecutive ticks of one symbol/day; ``ids`` are the source's message ids (stream ids), if any."""

    symbol: str
    date: str
    records: np.ndarray
    ids: list[str] | None = None

    def __len__(self) -> int:
        return int(self.records.shape[0])


def encode(records: np.ndarray) -> list[bytes]:
    """One bytes payload per record."""
    raw = records.tobytes()
    w = records.dtype.itemsize
    return [raw[k:k + w] for k in range(0, len(raw), w)]


def decode(payloads: list[bytes], levels: int) -> np.ndarray:
    dt = tick_dtype(levels)
    return np.frombuffer(b"".join(payloads), dtype=dt)


def dedupe_key(symbol: str, date: str, seq: int) -> str:
    return f"{symbol}|{date}|{seq}"


def records_from_frames(events: pl.DataFrame, book: pl.DataFrame, trades: pl.DataFrame | None = None) -> np.ndarray:
    """A lake partition (``events`` and ``book`` aligned row by row) as wire records, in order.

    The book matrix, trade sizes and aggressor sides come from the feature pipeline's own input
    preparation (:func:`flowsense.features.tick.prepare_inputs`), so the streaming features see exactly
    what the batch tables saw."""
    from flowsense.features.tick import prepare_inputs

    if events.height != book.height:
        raise ValueError(f"events ({events.height} rows) and book ({book.height} rows) must align row by row")
    inp = prepare_inputs(book, events, trades)
    levels = book_levels(book.columns)
    n = events.height
    rec = np.zeros(n, dtype=tick_dtype(levels))
    rec["ts"] = events["ts"].dt.epoch("ns").to_numpy()
    rec["seq"] = events["seq"].to_numpy()
    rec["n"] = n
    names = events["event_type"].cast(pl.String).to_list()
    rec["ev"] = np.array([EV_INDEX.get(x, EV_INDEX["none"]) if x else EV_INDEX["none"] for x in names], np.int8)
    rec["side"] = events["side"].fill_null(0).cast(pl.Int8).to_numpy()
    rec["agg"] = inp.agg.astype(np.int8)
    rec["price"] = events["price"].cast(pl.Float64).fill_null(np.nan).to_numpy()
    rec["size"] = events["size"].fill_null(0).cast(pl.Int64).to_numpy()
    rec["book"] = inp.book
    return rec


def lake_records(lake_root: str, symbol: str, date: str) -> np.ndarray:
    """Wire records of one lake partition (raises :class:`flowsense.errors.FlowSenseError` when absent)."""
    import datetime as dt

    from flowsense.data.lake import Lake, Partition
    from flowsense.errors import FlowSenseError

    lake = Lake(lake_root)
    part = Partition(symbol, dt.date.fromisoformat(date))
    missing = [t for t in ("events", "book") if not lake.exists(t, part)]
    if missing:
        raise FlowSenseError(f"{lake.root}: no {' / '.join(missing)} partition for {symbol} on {date}; "
                             f"run `flowsense ingest <files>` first")
    trades = lake.read("trades", part) if lake.exists("trades", part) else None
    return records_from_frames(lake.read("events", part), lake.read("book", part), trades)


def batches(symbol: str, date: str, records: np.ndarray, size: int = 1024) -> Iterator[TickBatch]:
    for k in range(0, records.shape[0], size):
        yield TickBatch(symbol, date, records[k:k + size])
