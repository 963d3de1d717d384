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
* **trades** are inferred one per match (see :func:`_infer_trades`): from the resting (maker) order's fill,
  aggressor = the other side; from the incoming (taker) order's fill only when the maker was created before
  the capture (its size is unknown). Fills of orders created before the capture have a null size.

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


TAKER_WINDOW_MS = 1_000


def _infer_trades(
    oid: np.ndarray, action: np.ndarray, side: np.ndarray, price: np.ndarray, ms: np.ndarray,
    executed: np.ndarray, ask1_after: np.ndarray, bid1_after: np.ndarray, volume_zero: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One trade per match, not one per order: per row the trade size (0 = none), price and aggressor.

    Both orders of a match shrink in the feed: the resting (maker) order and the incoming (taker) order,
    which Bitstamp announces as ``created`` and then ``changed`` or ``deleted``. An order is a *taker* when,
    on creation, its price reaches the best opposite price of the rebuilt book, or an older opposite order at
    a price it reaches is filled (changed down, or deleted with volume 0) in the next second. Its decreases
    in that second are taker fills. Trades come from maker fills (the maker's price, aggressor = the other
    side); a taker fill becomes the trade (aggressor = the taker's side, at the maker's price) only when no
    maker fill of known size on the other side falls in its window - the maker was created before the
    capture."""
    n = oid.shape[0]
    ask_before = np.concatenate([[np.nan], ask1_after[:-1]])
    bid_before = np.concatenate([[np.nan], bid1_after[:-1]])
    is_deleted = action == "deleted"
    filled = (executed > 0) | (is_deleted & volume_zero)
    created_row = {int(oid[i]): int(i) for i in np.flatnonzero(action == "created")}
    fill_rows = np.flatnonzero(filled)
    fill_ms = ms[fill_rows]
    decreasing = {int(oid[i]) for i in np.flatnonzero(executed > 0)}
    taker_since: dict[int, tuple[int, float]] = {}
    for i in np.flatnonzero(action == "created"):
        o = int(oid[i])
        if o not in decreasing:
            continue
        s_ = int(side[i])
        best = ask_before[i] if s_ > 0 else bid_before[i]
        if not np.isnan(best) and (price[i] >= best - 1e-9 if s_ > 0 else price[i] <= best + 1e-9):
            taker_since[o] = (int(ms[i]), float(best))
            continue
        lo = np.searchsorted(fill_ms, ms[i], side="left")
        hi = np.searchsorted(fill_ms, ms[i] + TAKER_WINDOW_MS, side="right")
        for j in fill_rows[lo:hi]:
            if j <= i or side[j] != -s_ or created_row.get(int(oid[j]), -1) >= i:
                continue
            if (price[j] <= price[i] + 1e-9) if s_ > 0 else (price[j] >= price[i] - 1e-9):
                taker_since[o] = (int(ms[i]), float(price[j]))
                break
    is_taker = np.zeros(n, dtype=bool)
    for i in np.flatnonzero(executed > 0):
        t = taker_since.get(int(oid[i]))
        is_taker[i] = t is not None and ms[i] - t[0] <= TAKER_WINDOW_MS
    size = np.where(is_taker, 0, executed).astype(np.int64)
    px = price.astype(np.float64).copy()
    agg = np.where(size > 0, -side, 0).astype(np.int8)
    known = np.flatnonzero(size > 0)
    known_ms = ms[known]
    for i in np.flatnonzero(is_taker):
        start, maker_px = taker_since[int(oid[i])]
        lo = np.searchsorted(known_ms, start, side="left")
        hi = np.searchsorted(known_ms, ms[i] + TAKER_WINDOW_MS, side="right")
        if not (side[known[lo:hi]] == -side[i]).any():
            size[i] = executed[i]
            px[i] = maker_px
            agg[i] = side[i]
    return size, px, agg


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

    ms = df["timestamp"].to_numpy()
    trade_size, trade_px, aggressor = _infer_trades(
        oid, action, side, df["price"].to_numpy(), ms, executed, book_arrays["ask_px_1"], book_arrays["bid_px_1"],
        volume == 0,
    )
    ts = pl.Series("ts", ms * 1_000_000).cast(pl.Datetime("ns", "UTC"))
    size_s = pl.Series("size", size).set(pl.Series(size < 0), None)  # type: ignore[arg-type]
    frame = pl.DataFrame({
        "ts": ts,
        "event_type": pl.Series(types, dtype=EventType),
        "order_id": df["id"],
        "side": pl.Series("side", side, dtype=pl.Int8),
        "price": df["price"],
        "size": size_s,
        "__exec": trade_size,
        "__tpx": trade_px,
        "__agg": pl.Series("__agg", aggressor, dtype=pl.Int8),
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
            "ts", "symbol", "date", "seq", pl.col("__tpx").alias("price"), pl.col("__exec").alias("size"),
            pl.col("__agg").alias("aggressor_side"),
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




# ------------------------------------------------------------------------------ the raw Bitstamp feed log

FEED_RE = re.compile(rb"^\d{13} (order_created|order_changed|order_deleted|order_book|trade) \{")
FEED_LEVELS = 20


def looks_like_bitstamp_feed(path: Path) -> bool:
    """True for obAnalytics' raw Bitstamp feed log: lines ``<ms> <event> <json>``."""
    import lzma

    try:
        with Path(path).open("rb") as fh:
            head = fh.read(6)
        opener = lzma.open if head.startswith(b"\xfd7zXZ") else open
        with opener(path, "rb") as fh:  # type: ignore[operator]
            line = fh.readline(1 << 16)
    except (OSError, EOFError, lzma.LZMAError):
        return False
    return bool(FEED_RE.match(line))


def read_bitstamp_feed(path: str | Path, symbol: str | None = None, date: dt.date | None = None) -> list[DayTables]:
    """Read obAnalytics' raw Bitstamp feed (``2015-05-01.log.xz``): the exchange's ``order_book`` snapshots
    (top 20 levels each side, complete) become ``quote`` events with a 20-level book, and its ``trade``
    prints the trades. The order events in the same log are what ``orders.csv`` holds (read that for L3).

    ``ts`` = the receive time (ms). Trade prints carry no side: the aggressor is taken from the resting order
    that the feed reports changed or deleted at the trade's price in the 2 s before the print (its opposite
    side), else null. Sizes in 1e-8 BTC (``size_scale = 10**8``)."""
    import orjson

    from flowsense.data.ticks import _decompress

    path = Path(path)
    if not path.exists():
        raise IngestError(path, "file not found")
    data = _decompress(read_nonempty(path), path)
    if not data.endswith(b"\n"):
        raise IngestError(path, "file is truncated: last line has no line terminator", line=data.count(b"\n") + 1)
    ts: list[int] = []
    kind: list[str] = []
    price: list[float | None] = []
    size: list[int | None] = []
    books: list[list[float | None]] = []
    side: list[int | None] = []
    recent: dict[float, tuple[int, int]] = {}  # price -> (ms, resting side) of the last fill-like order event
    for lineno, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            t_raw, event, body = line.split(b" ", 2)
            t = int(t_raw)
            msg = orjson.loads(body)
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise IngestError(path, f"not '<ms> <event> <json>' ({exc})", line=lineno) from exc
        try:
            if event in (b"order_changed", b"order_deleted"):
                recent[float(msg["price"])] = (t, 1 if int(msg["order_type"]) == 0 else -1)
                continue
            if event == b"order_created":
                continue
            if event == b"trade":
                p = float(msg["price"])
                hit = recent.get(p)
                ts.append(t * 1_000_000)
                kind.append("trade")
                price.append(p)
                size.append(round(float(msg["amount"]) * SIZE_SCALE))
                side.append(-hit[1] if hit is not None and t - hit[0] <= 2_000 else None)
                books.append([])
            elif event == b"order_book":
                row: list[float | None] = []
                bids, asks = msg["bids"], msg["asks"]
                for k in range(FEED_LEVELS):
                    a = asks[k] if k < len(asks) else None
                    b = bids[k] if k < len(bids) else None
                    row += [float(a[0]) if a else None, round(float(a[1]) * SIZE_SCALE) if a else None,
                            float(b[0]) if b else None, round(float(b[1]) * SIZE_SCALE) if b else None]
                ts.append(t * 1_000_000)
                kind.append("quote")
                price.append(None)
                size.append(None)
                side.append(None)
                books.append(row)
            else:
                raise IngestError(path, f"unknown event {event.decode(errors='replace')!r}", line=lineno)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise IngestError(path, f"malformed {event.decode(errors='replace')} message ({exc!r})", line=lineno) from exc
    if not ts:
        raise IngestError(path, "no order_book or trade lines")
    n = len(ts)
    # trades carry the book in force (the last snapshot), empty before the first one
    cols = list(book_schema(FEED_LEVELS))[4:]
    last: list[float | None] = [None] * len(cols)
    filled = []
    for r in books:
        if r:
            last = r
        filled.append(last)
    arr = list(zip(*filled, strict=True)) if filled else [[] for _ in cols]
    book_cols = {c: pl.Series(c, arr[j], dtype=pl.Float64 if "_px_" in c else pl.Int64) for j, c in enumerate(cols)}
    frame = pl.DataFrame({
        "ts": pl.Series("ts", ts, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        "event_type": pl.Series(kind, dtype=EventType),
        "order_id": pl.Series([None] * n, dtype=pl.Int64),
        "side": pl.Series(side, dtype=pl.Int8),
        "price": pl.Series(price, dtype=pl.Float64),
        "size": pl.Series(size, dtype=pl.Int64),
        **book_cols,
    })
    days = split_by_day(frame, "UTC")
    if date is not None and set(days) != {date}:
        raise IngestError(path, f"the log spans {sorted(days)}, not only --date {date}")
    # the file is named by date; Bitstamp's public feed of 2015 carried BTC/USD only
    sym = symbol or "BTCUSD"
    guesses: tuple[str, ...] = () if symbol else (
        "symbol BTCUSD assumed (Bitstamp's 2015 order feed was BTC/USD only; pass --symbol to choose)",)
    out = []
    for day, part in days.items():
        keyed = add_keys(part, sym, day)
        trades = keyed.filter(pl.col("event_type") == "trade").select(
            "ts", "symbol", "date", "seq", "price", "size", pl.col("side").alias("aggressor_side")
        ).select(list(TRADES_SCHEMA))
        out.append(DayTables(
            sym, day, events=keyed.select(list(EVENTS_SCHEMA)), trades=trades,
            book=keyed.select(list(book_schema(FEED_LEVELS))), sources=(str(path),), size_scale=SIZE_SCALE,
            extra={"snapshots": int((keyed["event_type"] == "quote").sum()),
                   "trades_without_side": int(trades["aggressor_side"].null_count())},
            guesses=guesses,
        ))
    return sorted(out, key=lambda d: d.date)


__all__ = ["looks_like_bitstamp_feed", "looks_like_order_log", "read_bitstamp_feed", "read_order_log"]
