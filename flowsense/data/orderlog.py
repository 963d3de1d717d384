"""L3 order logs (order created / changed / deleted with ids), e.g. obAnalytics' Bitstamp ``orders.csv``.

Layout (``../shared/data/obanalytics_bitstamp_2015-05-01/SOURCE.md``): a CSV (plain or compressed) with the
header ``id, timestamp, exchange.timestamp, price, volume, action, direction``:

* ``timestamp``: local receive time, epoch milliseconds (UTC) - used as ``ts``; ``exchange.timestamp`` is
  the order's *creation* time at the exchange, not the event's, and is ignored;
* ``price`` in the quote currency (USD); ``volume``: the order's *remaining* quantity, an integer in 1e-8
  units of the base currency (satoshi) - stored as is, ``size_scale = 10**8``;
* ``action``: ``created`` | ``changed`` | ``deleted``; ``direction``: ``bid`` | ``ask``.

How the events read:

* ``created`` -> ``add`` (size = volume);
* ``changed`` to a smaller volume -> ``execute_visible`` of the resting order (size = the decrease: a
  partial fill, as Bitstamp sends them); to a larger one -> ``modify`` (size = the new volume);
* ``deleted`` with volume 0 -> ``execute_visible`` of the rest (the order was filled; size = its remaining
  volume when the order is known, else null), with volume > 0 -> ``delete`` (a cancellation);
* an event received *after* its order's deletion (the feed delivers some out of order) -> ``none``: it
  must not bring the order back to life;
* **trades** are inferred from the executions: price = the resting order's, size = the executed volume,
  aggressor = the opposite side of the resting order. Fills of orders created before the capture are not
  known in size and give no trade row.

The price book (10 levels) is rebuilt from the orders with the same replay as DBN MBO files. **The log has no
initial snapshot**: orders resting before its first line are unknown until they change or leave, so the book
misses them - the report says so (``book_complete: false``).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import polars as pl

from flowsense.data.day import DayTables, add_keys, split_by_day
from flowsense.data.rawbytes import read_nonempty
from flowsense.data.schemas import EVENTS_SCHEMA, TRADES_SCHEMA, EventType, book_schema
from flowsense.errors import IngestError

HEADER = ("id", "timestamp", "exchange.timestamp", "price", "volume", "action", "direction")
SIZE_SCALE = 10**8
LEVELS = 10
ACTIONS = ("created", "changed", "deleted")
DIRECTIONS = {"bid": 1, "ask": -1}


def _norm(name: str) -> str:
    return re.sub(r"[\s\-_]+", ".", name.strip().lower())


def is_order_log_header(names: list[str]) -> bool:
    return tuple(_norm(n) for n in names) == HEADER


def looks_like_order_log(path: Path) -> bool:
    """True for a (maybe compressed) CSV whose header is the obAnalytics order-log header."""
    from flowsense.data.ticks import _first_line

    try:
        with Path(path).open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    line = _first_line(Path(path), head)
    if not line:
        return False
    return is_order_log_header([c for c in line.strip("\r\n").split(",")])


def _load(path: Path) -> pl.DataFrame:
    from flowsense.data.csvparse import read_strict_csv
    from flowsense.data.ticks import _decompress

    data = _decompress(read_nonempty(path), path)
    first = data.split(b"\n", 1)[0].decode("utf-8", errors="replace")
    if not is_order_log_header(first.strip("\r").split(",")):
        raise IngestError(path, f"header {first!r} is not an order log ({', '.join(HEADER)})", line=1)
    names = [c.strip() for c in first.strip("\r").split(",")]
    types = [pl.Int64(), pl.Int64(), pl.Int64(), pl.Float64(), pl.Int64(), pl.String(), pl.String()]
    df = read_strict_csv(data, path, dict(zip(names, types, strict=True)), has_header=True)
    df = df.rename(dict(zip(names, ["id", "timestamp", "exchange_ts", "price", "volume", "action", "direction"],
                            strict=True)))
    if df.height == 0:
        raise IngestError(path, "file has a header but no data rows")
    for col, allowed in (("action", ACTIONS), ("direction", tuple(DIRECTIONS))):
        bad = ~df[col].is_in(list(allowed))
        if bad.any():
            i = int(bad.arg_max() or 0)
            raise IngestError(path, f"column {col!r}: {df[col][i]!r} is not one of {', '.join(allowed)}", line=i + 2)
    for col in ("volume", "price"):
        bad = df[col] < 0
        if bad.any():
            i = int(bad.arg_max() or 0)
            raise IngestError(path, f"column {col!r}: negative value {df[col][i]}", line=i + 2)
    return df


def _classify(
    oid: np.ndarray, action: np.ndarray, volume: np.ndarray
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Per row: event type, event size (null = -1), the executed volume (0 = no trade) and whether the row
    is stale (it arrived after its order's deletion)."""
    n = oid.shape[0]
    types: list[str] = [""] * n
    size = np.full(n, -1, dtype=np.int64)
    executed = np.zeros(n, dtype=np.int64)
    remaining: dict[int, int] = {}
    gone: set[int] = set()
    stale = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        o = int(oid[i])
        a = action[i]
        v = int(volume[i])
        if o in gone:  # an event received after the order's deletion: stale, no book action
            types[i] = "none"
            size[i] = v
            stale[i] = True
            continue
        if a == "created":
            types[i] = "add"
            size[i] = v
            remaining[o] = v
        elif a == "changed":
            prev = remaining.get(o)
            if prev is not None and v < prev:
                types[i] = "execute_visible"
                size[i] = executed[i] = prev - v
            else:
                types[i] = "modify"
                size[i] = v
            remaining[o] = v
        else:  # deleted
            gone.add(o)
            prev = remaining.pop(o, None)
            if v == 0:
                types[i] = "execute_visible"
                if prev is not None and prev > 0:
                    size[i] = executed[i] = prev
            else:
                types[i] = "delete"
                size[i] = prev if prev is not None else v
    return types, size, executed, stale


def read_order_log(path: str | Path, symbol: str | None = None, date: dt.date | None = None) -> list[DayTables]:
    """Read an L3 order log into one :class:`DayTables` per UTC day (events, 10-level book, inferred trades)."""
    from flowsense.data.dbn import (
        A_ADD,
        A_CANCEL,
        A_MODIFY,
        A_NONE,
        UNDEF_PRICE,
        _book_frame,
        replay_mbo_book,
    )
    from flowsense.data.ticks import symbol_from_name

    path = Path(path)
    if not path.exists():
        raise IngestError(path, "file not found")
    df = _load(path)
    sym = symbol or symbol_from_name(path)
    guesses: tuple[str, ...] = () if symbol else (
        f"symbol {sym} taken from the file name (pass --symbol to choose)",)
    oid = df["id"].to_numpy()
    action = df["action"].to_numpy()
    volume = df["volume"].to_numpy()
    side = df["direction"].replace_strict(DIRECTIONS, return_dtype=pl.Int8).to_numpy()
    types, size, executed, stale = _classify(oid, action, volume)

    # replay: created -> add, changed -> modify (new remaining volume), deleted -> cancel of everything
    codes = np.where(action == "created", A_ADD, np.where(action == "changed", A_MODIFY, A_CANCEL)).astype(np.int8)
    codes[stale] = A_NONE
    replay_size = np.where(action == "deleted", np.iinfo(np.int64).max // 4, volume).astype(np.int64)
    raw_px = np.round(df["price"].to_numpy() * 1e9).astype(np.int64)
    raw_px[np.isnan(df["price"].to_numpy())] = UNDEF_PRICE
    book_arrays, _, anomalies = replay_mbo_book(codes, side, raw_px, replay_size, oid, levels=LEVELS)
    book = _book_frame(book_arrays, LEVELS)

    ts = pl.Series("ts", df["timestamp"].to_numpy() * 1_000_000).cast(pl.Datetime("ns", "UTC"))
    size_s = pl.Series("size", size).set(pl.Series(size < 0), None)  # type: ignore[arg-type]
    frame = pl.DataFrame({
        "ts": ts,
        "event_type": pl.Series(types, dtype=EventType),
        "order_id": df["id"],
        "side": pl.Series("side", side, dtype=pl.Int8),
        "price": df["price"],
        "size": size_s,
        "__exec": executed,
    })
    frame = pl.concat([frame, book], how="horizontal")
    if date is not None:
        days = {date: frame.filter(pl.col("ts").dt.date() == date)}
        if days[date].height != frame.height:
            raise IngestError(path, f"rows fall outside --date {date} (the log spans several UTC days)")
    else:
        days = split_by_day(frame, "UTC")
    out = []
    for day, part in days.items():
        keyed = add_keys(part, sym, day)
        trades = keyed.filter(pl.col("__exec") > 0).select(
            "ts", "symbol", "date", "seq", "price", pl.col("__exec").alias("size"),
            (-pl.col("side")).cast(pl.Int8).alias("aggressor_side"),
        ).select(list(TRADES_SCHEMA))
        t = keyed["ts"].dt.epoch("ns").to_numpy()
        # like DBN F_LAST: the book is checked at the last row of each receive timestamp (a taker order is
        # announced, then the resting orders it filled, within the same millisecond)
        check = pl.Series("book_check", np.append(t[1:] != t[:-1], True) if t.size else t.astype(bool))
        out.append(DayTables(
            sym, day, events=keyed.select(list(EVENTS_SCHEMA)), trades=trades, book_check=check,
            book=keyed.select(list(book_schema(LEVELS))), sources=(str(path),), size_scale=SIZE_SCALE,
            extra={"book_complete": False, "book_note": "order log without an initial snapshot: orders resting "
                   "before its first line are missing from the book until they change or leave",
                   "unknown_order_removals": int(anomalies[0]), "stale_events": int(stale.sum())},
            guesses=guesses,
        ))
    return sorted(out, key=lambda d: d.date)


__all__ = ["looks_like_order_log", "read_order_log"]
