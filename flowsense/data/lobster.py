"""LOBSTER reader: message + orderbook files at any level, as a plain CSV pair or from the vendor's zip.

File layout (see ``../shared/data/lobster_2012-06-21/SOURCE.md`` and the LOBSTER ReadMe):

* names ``{SYMBOL}_{YYYY-MM-DD}_{START}_{END}_{message|orderbook}_{LEVEL}.csv`` (START/END in ms);
* message columns: time (seconds after midnight, New York), type, order_id, size, price (dollars x 10000),
  direction (+1 buy / -1 sell limit order);
* orderbook columns: ask_price_1, ask_size_1, bid_price_1, bid_size_1, ... (4 x LEVEL), row i = the book
  after message i; empty levels are price -9999999999 (bid) / 9999999999 (ask) with size 0.

We store UTC nanosecond timestamps (DST handled through the tz database), prices in dollars, and empty
levels as nulls.
"""

from __future__ import annotations

import datetime as dt
import re
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl

from flowsense.data.csvparse import read_strict_csv
from flowsense.data.day import DayTables, add_keys
from flowsense.data.schemas import EVENTS_SCHEMA, TRADES_SCHEMA, EventType, book_level_columns, book_schema
from flowsense.errors import IngestError

NEW_YORK = ZoneInfo("America/New_York")
PRICE_SCALE = 10_000
EMPTY_PRICE = 9_999_999_999

NAME_RE = re.compile(
    r"(?P<symbol>[A-Za-z0-9.\-]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<start>\d+)_(?P<end>\d+)_"
    r"(?P<kind>message|orderbook)_(?P<level>\d+)\.csv$"
)
ZIP_RE = re.compile(r"(?P<symbol>[A-Za-z0-9.\-]+)_(?P<date>\d{4}-\d{2}-\d{2})_(?P<level>\d+)\.zip$")

MESSAGE_SCHEMA: dict[str, pl.DataType] = {
    "time": pl.Float64(),
    "type": pl.Int64(),
    "order_id": pl.Int64(),
    "size": pl.Int64(),
    "price": pl.Int64(),
    "direction": pl.Int64(),
}

# LOBSTER message type -> canonical event type (7 is refined by its price: -1 halt, 0 quote, 1 trade).
LOBSTER_TYPES = {
    1: "add",
    2: "cancel",
    3: "delete",
    4: "execute_visible",
    5: "execute_hidden",
    6: "cross",
    7: "halt",
}


@dataclass(frozen=True, slots=True)
class LobsterName:
    symbol: str
    date: dt.date
    level: int

    @classmethod
    def parse(cls, name: str) -> LobsterName | None:
        m = NAME_RE.search(name) or ZIP_RE.search(name)
        if m is None:
            return None
        return cls(m["symbol"], dt.date.fromisoformat(m["date"]), int(m["level"]))


@dataclass(frozen=True, slots=True)
class LobsterSource:
    """Where one LOBSTER day lives: a zip (members named) or a CSV pair on disk."""

    message: str  # file path, or "zip_path::member"
    orderbook: str
    name: LobsterName

    def read_bytes(self) -> tuple[bytes, bytes]:
        """Both files' bytes; the two zip members are inflated concurrently (zlib releases the GIL)."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            book = pool.submit(_read, self.orderbook)
            return _read(self.message), book.result()


def _read(ref: str) -> bytes:
    if "::" in ref:
        zpath, member = ref.split("::", 1)
        try:
            with zipfile.ZipFile(zpath) as zf:
                return zf.read(member)
        except (zipfile.BadZipFile, zlib.error, EOFError) as exc:  # bad CRC, corrupt or cut-short member
            raise IngestError(zpath, f"zip member {member} is corrupt ({exc}); the archive is damaged") from exc
    try:
        return Path(ref).read_bytes()
    except OSError as exc:
        raise IngestError(ref, f"cannot read file ({exc.strerror or exc})") from exc


def is_lobster(path: Path) -> bool:
    return LobsterName.parse(path.name) is not None and (
        path.suffix == ".csv" or (path.suffix == ".zip" and zipfile.is_zipfile(path))
    )


def find_sources(path: str | Path) -> list[LobsterSource]:
    """Resolve a zip, a message CSV or an orderbook CSV into LOBSTER day sources (message + orderbook)."""
    path = Path(path)
    if not path.exists():
        raise IngestError(path, "file not found")
    if path.suffix == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                members = [n for n in zf.namelist() if NAME_RE.search(n)]
        except zipfile.BadZipFile as exc:
            raise IngestError(path, f"not a readable zip archive ({exc})") from exc
        messages = sorted(m for m in members if "_message_" in m)
        if not messages:
            raise IngestError(path, "zip holds no LOBSTER message file")
        sources = []
        for msg in messages:
            book = msg.replace("_message_", "_orderbook_")
            if book not in members:
                raise IngestError(path, f"zip has {msg} but not its orderbook file {book}")
            name = LobsterName.parse(Path(msg).name)
            assert name is not None
            sources.append(LobsterSource(f"{path}::{msg}", f"{path}::{book}", name))
        return sources
    name = LobsterName.parse(path.name)
    if name is None or path.suffix != ".csv":
        raise IngestError(path, "not a LOBSTER file name (SYMBOL_DATE_START_END_message|orderbook_LEVEL.csv)")
    if "_message_" in path.name:
        msg, book = path, path.with_name(path.name.replace("_message_", "_orderbook_"))
    else:
        msg, book = path.with_name(path.name.replace("_orderbook_", "_message_")), path
    for p in (msg, book):
        if not p.exists():
            raise IngestError(p, f"missing LOBSTER partner file for {path.name}")
    return [LobsterSource(str(msg), str(book), name)]


def utc_offset_ns(date: dt.date, tz: ZoneInfo = NEW_YORK) -> int | None:
    """The day's UTC offset in ns if it is constant over the whole local day, else None (a DST day)."""
    offsets = {
        dt.datetime.combine(date, t, tzinfo=tz).utcoffset() for t in (dt.time(0), dt.time(12), dt.time(23, 59))
    }
    if len(offsets) != 1:
        return None
    (off,) = offsets
    assert off is not None
    return -int(off.total_seconds()) * 1_000_000_000


def local_seconds_to_utc(seconds: pl.Expr, date: dt.date, tz: ZoneInfo = NEW_YORK) -> pl.Expr:
    """Seconds after local midnight (float) -> UTC ``Datetime(ns)``, exact to the nanosecond."""
    ns = (seconds * 1e9).round(0).cast(pl.Int64)
    midnight_utc_naive = int(
        (dt.datetime.combine(date, dt.time(0)) - dt.datetime(1970, 1, 1)).total_seconds()
    ) * 1_000_000_000
    offset = utc_offset_ns(date, tz)
    if offset is not None:
        return (ns + (midnight_utc_naive + offset)).cast(pl.Datetime("ns", "UTC"))
    local = (ns + midnight_utc_naive).cast(pl.Datetime("ns"))
    return local.dt.replace_time_zone(str(tz), ambiguous="earliest").dt.convert_time_zone("UTC")


def scaled_price(values: pl.Series) -> pl.Series:
    """Integer price x 10000 -> dollars, correctly rounded (polars' scalar division multiplies by the
    reciprocal, which turns 1001000 into 100.10000000000001)."""
    return pl.Series(values.name, values.to_numpy() / PRICE_SCALE)


_TYPE_NAMES = {code: name for code, name in LOBSTER_TYPES.items() if code != 7}
# halts are refined by their price field: -1 halt, 0 quoting resumes, 1 trading resumes
_HALT_CODES = {-1: "halt", 0: "quote_resume", 1: "trade_resume"}


def _event_type(msg: pl.DataFrame, path: str) -> pl.Series:
    types = msg["type"]
    bad = (types < 1) | (types > 7)
    if bad.any():
        row = int(bad.arg_max() or 0)
        raise IngestError(path, f"unknown LOBSTER message type {types[row]}", line=row + 1)
    names = types.replace_strict(_TYPE_NAMES, default=None, return_dtype=EventType)
    halts = types == 7
    if halts.any():
        codes = msg["price"].replace_strict(_HALT_CODES, default="halt", return_dtype=EventType)
        names = names.zip_with(~halts, codes)
    return names.alias("event_type")


def _book_prices(book_raw: pl.DataFrame, levels: int) -> tuple[pl.DataFrame, list[str]]:
    """All price columns scaled to dollars in one vectorized pass (correctly rounded: NumPy division, not
    polars' reciprocal multiplication); empty levels (+-9999999999) become null. Also returns the price
    columns that have an empty level somewhere."""
    cols = [c for c in book_level_columns(levels) if "_px_" in c]
    raw = book_raw.select(cols).to_numpy()
    dollars = raw / PRICE_SCALE
    empty = np.abs(raw) >= EMPTY_PRICE
    with_empty = [c for c, e in zip(cols, empty.any(axis=0), strict=True) if e]
    if not with_empty:
        return pl.from_numpy(dollars, schema=cols), with_empty
    dollars[empty] = np.nan
    return pl.from_numpy(dollars, schema=cols).fill_nan(None), with_empty


def parse_day(source: LobsterSource) -> DayTables:
    """Read one LOBSTER day into canonical ``events``, ``book`` and ``trades`` tables."""
    msg_bytes, book_bytes = source.read_bytes()
    name = source.name
    levels = name.level
    if not 1 <= levels <= 200:
        raise IngestError(source.orderbook, f"implausible book level {levels}")
    msg = read_strict_csv(msg_bytes, source.message, MESSAGE_SCHEMA)
    raw_book_schema = {c: pl.Int64() for c in book_level_columns(levels)}
    book_raw = read_strict_csv(book_bytes, source.orderbook, raw_book_schema)
    if msg.height != book_raw.height:
        raise IngestError(
            source.orderbook,
            f"message file has {msg.height} rows but orderbook file has {book_raw.height}; "
            f"they must align row by row ({source.message})",
            line=min(msg.height, book_raw.height) + 1,
        )
    directions = msg["direction"]
    bad_dir = (directions != 1) & (directions != -1)
    if bad_dir.any():
        row = int(bad_dir.arg_max() or 0)
        raise IngestError(source.message, f"direction must be 1 or -1, got {directions[row]}", line=row + 1)
    bad_time = (msg["time"] < 0) | (msg["time"] >= 86_400) | msg["time"].is_nan()
    if bad_time.any():
        row = int(bad_time.arg_max() or 0)
        raise IngestError(source.message, f"time {msg['time'][row]} is not seconds after midnight", line=row + 1)

    event_type = _event_type(msg, source.message)
    ts = local_seconds_to_utc(pl.col("time"), name.date).alias("ts")
    is_halt = pl.col("type") == 7
    events = add_keys(
        msg.select(
            ts,
            pl.lit(event_type).alias("event_type"),
            pl.col("order_id"),
            pl.col("direction").cast(pl.Int8).alias("side"),
            pl.when(is_halt).then(None).otherwise(scaled_price(msg["price"])).alias("price"),
            pl.col("size"),
        ),
        name.symbol,
        name.date,
    ).select(list(EVENTS_SCHEMA))

    prices, with_empty = _book_prices(book_raw, levels)
    sizes = [  # an empty level has a null size too, not 0
        pl.when(prices[px].is_null()).then(None).otherwise(pl.col(px.replace("_px_", "_sz_"))).alias(
            px.replace("_px_", "_sz_")
        )
        for px in with_empty
    ]
    book = (
        book_raw.with_columns(sizes)
        .with_columns(prices)
        .with_columns(events.select("ts", "symbol", "date", "seq"))
        .select(list(book_schema(levels)))
    )

    trades = (
        events.filter(pl.col("event_type").is_in(["execute_visible", "execute_hidden", "cross"]))
        .select(
            "ts",
            "symbol",
            "date",
            "seq",
            "price",
            "size",
            # An execution of a resting sell order is a buyer-initiated trade, and vice versa.
            pl.when(pl.col("event_type") == "cross").then(None).otherwise(-pl.col("side")).alias("aggressor_side"),
        )
        .select(list(TRADES_SCHEMA))
    )
    return DayTables(
        symbol=name.symbol,
        date=name.date,
        events=events,
        book=book,
        trades=trades,
        sources=(source.message, source.orderbook),
    )


def read_lobster(
    path: str | Path, *, symbol: str | None = None, date: dt.date | None = None
) -> list[DayTables]:
    """Read every LOBSTER day found at ``path`` (a zip, or either file of a CSV pair).

    ``symbol``/``date`` override what the file names say (timestamps then use the given date).
    """
    sources = find_sources(path)
    if (symbol or date) and len(sources) > 1:
        raise IngestError(path, "--symbol/--date can only override a single-day LOBSTER source")
    for s in sources:
        if date is not None and date != s.name.date:
            raise IngestError(
                path, f"--date {date} contradicts the date in the file name ({s.name.date}): LOBSTER times are "
                "seconds after midnight of that day, so relabelling would move every event; rename the file "
                "if its name is wrong"
            )
    if symbol or date:
        sources = [
            replace(s, name=replace(s.name, symbol=symbol or s.name.symbol, date=date or s.name.date))
            for s in sources
        ]
    return [parse_day(s) for s in sources]
