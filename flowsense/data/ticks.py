"""Tick files: trades or top-of-book quotes, as CSV (plain, ``.gz``, ``.xz``, ``.zst``) or Parquet.

Layout
------
A header row is required; column names are matched case-insensitively (spaces and ``-`` count as ``_``):

* timestamp: ``timestamp | time | datetime | date_time | ts``;
* trades: ``price`` (or ``px``, ``trade_price``, ``last``, ``last_price``) and a size
  (``size | qty | quantity | volume | amount``, first present wins), optional aggressor
  (``side | aggressor | aggressor_side``: ``1/-1``, ``B/S``, ``buy/sell``; empty, ``0`` or ``N`` = unknown)
  or ``buyer_maker`` (Binance: true = the buyer was the maker = seller-initiated -> -1). ``side`` wins when
  both are present;
* quotes: ``bid``/``ask`` (or ``bid_price``/``ask_price``, ``bid_px``/``ask_px``, ``best_bid``/``best_ask``),
  optional ``bid_size``/``ask_size`` (or ``_qty``, ``_sz``, ``_quantity``, ``_volume``, ``_amount``).

A file is trades (price + size) or quotes (bid + ask); one with both sets is rejected as ambiguous. Other
columns (``trade_id``...) are ignored; a ``symbol`` column holding more than one value is an error.

Conventions and assumptions
---------------------------
* **Timestamps**: ISO strings (naive ones are local time in ``tz``; strings with ``Z``/an offset are
  absolute), Parquet datetimes (naive ones likewise in ``tz``), or epoch numbers whose unit is chosen from
  the file's largest value: below 1e11 seconds, below 1e14 milliseconds, below 1e17 microseconds, else
  nanoseconds (every row must have the same magnitude). Decimal epoch strings are parsed exactly. A naive
  local time that falls in the DST spring-forward gap is an error; one in the repeated fall-back hour is
  taken as the first (daylight) occurrence until the clock steps back more than a second, then as the
  second. Stored as UTC ns.
* **Symbol**: the ``symbol`` argument, else the file name up to the first ``_``, ``-`` or ``.``, uppercased
  (``btcusdt-trades.parquet`` -> ``BTCUSDT``).
* **Days**: split by calendar day in ``tz``; with ``date`` given, every row must fall on it.
* **Sizes** are int64 in the canonical schema. Whole-number sizes are kept as they are. Fractional sizes
  (crypto) are stored in units of 1e-8 (``size_scale=10**8``, satoshi-style) unless ``size_scale`` says
  otherwise; a size that is not a whole number of units is an error. The scale is ``DayTables.size_scale``;
  ingest records it in the partition's report and the lake's ``instruments`` table, and reads it back from
  there (or from the instrument's built-in default, e.g. 1e8 for Binance pairs) for the symbol's next files.
* **Tables**: trades -> events (``trade``: price, size, side = aggressor), trades (seq = the event's seq),
  no book. Quotes -> events (``quote``, price/size/side null: the book row holds the quote), a level-1 book
  aligned with events row by row (empty levels null), an empty trades table.
* **Strict**: a non-numeric or non-finite number, a negative size, a wrong column count, an empty required
  field, an unparsable timestamp or an unknown side raise :class:`IngestError` naming the file and the
  1-based line (the header is line 1; for Parquet the 1-based row). A missing final newline means a
  truncated CSV. Out-of-order timestamps are kept in file order (validation reports them).
"""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import io
import logging
import lzma
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import polars as pl
import zstandard

from flowsense.data.day import DayTables, add_keys, split_by_day
from flowsense.data.rawbytes import ZSTD_MAGIC, decompress_frames, read_nonempty
from flowsense.data.schemas import EVENTS_SCHEMA, TRADES_SCHEMA, EventType, book_schema
from flowsense.errors import IngestError

log = logging.getLogger(__name__)

TS_NAMES = ("timestamp", "time", "datetime", "date_time", "ts")
PRICE_NAMES = ("price", "px", "trade_price", "last", "last_price")
SIZE_NAMES = ("size", "qty", "quantity", "volume", "amount")
SIDE_NAMES = ("side", "aggressor", "aggressor_side")
MAKER_NAMES = ("buyer_maker", "is_buyer_maker", "isbuyermaker")
BID_NAMES = ("bid", "bid_price", "bid_px", "best_bid")
ASK_NAMES = ("ask", "ask_price", "ask_px", "best_ask")
SIZE_SUFFIXES = ("size", "qty", "sz", "quantity", "volume", "amount")
BID_SIZE_NAMES = tuple(f"bid_{s}" for s in SIZE_SUFFIXES)
ASK_SIZE_NAMES = tuple(f"ask_{s}" for s in SIZE_SUFFIXES)
SYMBOL_NAMES = ("symbol", "ticker", "instrument")

CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.xz", ".csv.zst", ".csv.zstd", ".txt", ".txt.gz", ".txt.xz", ".txt.zst")
PARQUET_SUFFIXES = (".parquet", ".pq")
GZIP_MAGIC = b"\x1f\x8b"
XZ_MAGIC = b"\xfd7zXZ\x00"

PARQUET_MAGIC = b"PAR1"

FRACTIONAL_SIZE_SCALE = 10**8
BUY_TOKENS = frozenset({"1", "+1", "1.0", "+1.0", "b", "buy", "buyer", "bid"})
SELL_TOKENS = frozenset({"-1", "-1.0", "s", "sell", "seller", "ask", "a"})
UNKNOWN_TOKENS = frozenset({"", "0", "0.0", "n", "none", "na", "nan", "null", "unknown", "?"})
TRUE_TOKENS = frozenset({"true", "t", "1", "yes", "y"})
FALSE_TOKENS = frozenset({"false", "f", "0", "no", "n"})
# Epoch unit by magnitude: (upper bound exclusive, ns per unit, unit name).
EPOCH_UNITS = ((1e11, 1_000_000_000, "s"), (1e14, 1_000_000, "ms"), (1e17, 1_000, "us"), (np.inf, 1, "ns"))
NUMERIC_RE = r"^\s*\d+(\.\d*)?\s*$"


# ------------------------------------------------------------------------------------------ file access


def _norm(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def _is_parquet(path: Path, head: bytes) -> bool:
    return path.name.lower().endswith(PARQUET_SUFFIXES) or head.startswith(PARQUET_MAGIC)


def _decompress(raw: bytes, path: Path) -> bytes:
    """Decompress gzip / xz / zstd by magic bytes (in memory); plain data passes through."""
    try:
        if raw.startswith(GZIP_MAGIC):
            return gzip.decompress(raw)
        if raw.startswith(XZ_MAGIC):
            return lzma.decompress(raw)
    except (OSError, EOFError, lzma.LZMAError) as exc:
        raise IngestError(path, f"cannot decompress file ({exc})") from exc
    if raw.startswith(ZSTD_MAGIC):
        return decompress_frames(raw, path)
    return raw


def _first_line(path: Path, head: bytes) -> str | None:
    """The first line of a (possibly compressed) text file, reading only its start."""
    try:
        if head.startswith(GZIP_MAGIC):
            with gzip.open(path, "rb") as fh:
                line = fh.readline(65536)
        elif head.startswith(XZ_MAGIC):
            with lzma.open(path, "rb") as fh:
                line = fh.readline(65536)
        elif head.startswith(ZSTD_MAGIC):
            with path.open("rb") as raw, zstandard.ZstdDecompressor().stream_reader(raw) as fh:
                line = io.BufferedReader(fh).readline(65536)  # type: ignore[arg-type]
        else:
            with path.open("rb") as fh:
                line = fh.readline(65536)
    except (OSError, EOFError, lzma.LZMAError, zstandard.ZstdError):
        return None
    try:
        return line.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


# ------------------------------------------------------------------------------------------- columns


@dataclass(frozen=True, slots=True)
class Columns:
    """Which file column plays which role (names as they appear in the file)."""

    kind: str  # "trades" | "quotes"
    ts: str
    price: str | None = None
    size: str | None = None
    side: str | None = None
    buyer_maker: str | None = None
    bid: str | None = None
    ask: str | None = None
    bid_size: str | None = None
    ask_size: str | None = None
    symbol: str | None = None


def _pick(by_norm: dict[str, str], names: Sequence[str]) -> str | None:
    for n in names:
        if n in by_norm:
            return by_norm[n]
    return None


def detect_columns(names: Sequence[str], path: str | Path) -> Columns:
    """Map a header to roles; raise :class:`IngestError` when it is neither a trades nor a quotes file."""
    by_norm: dict[str, str] = {}
    for name in names:
        key = _norm(name)
        if key in by_norm:
            raise IngestError(path, f"duplicate column {name!r} in the header", line=1)
        by_norm[key] = name
    ts = _pick(by_norm, TS_NAMES)
    price, size = _pick(by_norm, PRICE_NAMES), _pick(by_norm, SIZE_NAMES)
    bid, ask = _pick(by_norm, BID_NAMES), _pick(by_norm, ASK_NAMES)
    is_trades = price is not None and size is not None
    is_quotes = bid is not None and ask is not None
    if ts is None:
        raise IngestError(
            path, f"no timestamp column (one of {', '.join(TS_NAMES)}) in header {list(names)}", line=1
        )
    if is_trades and is_quotes:
        raise IngestError(path, "header has both trade (price, size) and quote (bid, ask) columns", line=1)
    symbol = _pick(by_norm, SYMBOL_NAMES)
    if is_trades:
        return Columns(
            "trades", ts, price=price, size=size, side=_pick(by_norm, SIDE_NAMES),
            buyer_maker=_pick(by_norm, MAKER_NAMES), symbol=symbol,
        )
    if is_quotes:
        return Columns(
            "quotes", ts, bid=bid, ask=ask, bid_size=_pick(by_norm, BID_SIZE_NAMES),
            ask_size=_pick(by_norm, ASK_SIZE_NAMES), symbol=symbol,
        )
    raise IngestError(
        path,
        f"header {list(names)} is neither trades (timestamp, price, size) nor quotes (timestamp, bid, ask)",
        line=1,
    )


def looks_like_ticks(path: Path) -> bool:
    """True for a CSV (maybe compressed) or Parquet file whose header names a trades or quotes layout."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    name = path.name.lower()
    if _is_parquet(path, head):
        try:
            names = list(pl.read_parquet_schema(path))
        except Exception:
            return False
    elif name.endswith(CSV_SUFFIXES) or any(name.endswith(s) for s in (".gz", ".xz", ".zst")):
        line = _first_line(path, head)
        if not line:
            return False
        names = next(csv.reader([line.strip("\r\n")]), [])
    else:
        return False
    try:
        detect_columns(names, path)
    except IngestError:
        return False
    return True


# --------------------------------------------------------------------------------------- CSV reading


class _Source:
    """A loaded tick file: the raw frame plus how to turn a row index into a 1-based line for errors."""

    def __init__(self, path: Path, frame: pl.DataFrame, text: str | None) -> None:
        self.path = path
        self.frame = frame
        self.text = text  # decoded CSV text (None for Parquet)
        self.guesses: list[str] = []  # assumptions made while reading, shown in the ingest summary

    def error(self, row: int, reason: str) -> IngestError:
        """Error for the 0-based data row ``row``: CSV line (header = line 1) or Parquet row (1-based)."""
        if self.text is None:
            return IngestError(self.path, f"row {row + 1}: {reason}")
        reader = csv.reader(io.StringIO(self.text))
        next(reader, None)
        start = reader.line_num + 1
        for i, _ in enumerate(reader):
            if i == row:
                return IngestError(self.path, reason, line=start)
            start = reader.line_num + 1
        return IngestError(self.path, reason, line=start)


def _scan_column_counts(text: str, path: Path, ncols: int) -> None:
    """Raise on the first line whose field count differs from the header's."""
    reader = csv.reader(io.StringIO(text))
    next(reader, None)
    start = reader.line_num + 1
    for row in reader:
        if len(row) != ncols:
            raise IngestError(path, f"expected {ncols} columns, found {len(row)}", line=start)
        start = reader.line_num + 1


def _load_csv(path: Path, raw: bytes) -> _Source:
    data = _decompress(raw, path)
    if not data.strip():
        raise IngestError(path, "file is empty")
    if not data.endswith(b"\n"):
        raise IngestError(path, "file is truncated: last line has no line terminator", line=data.count(b"\n") + 1)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IngestError(path, f"not UTF-8 text ({exc.reason})", line=line) from exc
    header = next(csv.reader(io.StringIO(text)), [])
    if not header or all(not h.strip() for h in header):
        raise IngestError(path, "missing header row", line=1)
    detect_columns(header, path)  # duplicate or missing roles: fail before parsing the body
    try:
        frame = pl.read_csv(io.StringIO(text), has_header=True, infer_schema=False, new_columns=header)
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError, pl.exceptions.NoDataError) as exc:
        _scan_column_counts(text, path, len(header))
        raise IngestError(path, f"could not parse CSV ({exc})") from exc
    if frame.height and frame.null_count().sum_horizontal().item():
        _scan_column_counts(text, path, len(header))  # short rows are padded with nulls by polars
    return _Source(path, frame, text)


def _load(path: Path) -> _Source:
    raw = read_nonempty(path)
    if _is_parquet(path, raw[:8]):
        try:
            frame = pl.read_parquet(io.BytesIO(raw))
        except Exception as exc:  # polars raises several types for corrupt Parquet
            raise IngestError(path, f"cannot read Parquet ({exc})") from exc
        return _Source(path, frame, None)
    return _load_csv(path, raw)


# ------------------------------------------------------------------------------------- value parsing


def _first(mask: pl.Series) -> int | None:
    """Index of the first True in ``mask`` (nulls count as False), or None."""
    mask = mask.fill_null(False)
    return int(mask.arg_max()) if mask.any() else None  # type: ignore[arg-type]


def _required(src: _Source, col: str) -> None:
    s = src.frame[col]
    empty = s.is_null()
    if s.dtype == pl.String:
        empty = empty | (s.str.strip_chars() == "")
    row = _first(empty)
    if row is not None:
        raise src.error(row, f"column {col!r}: empty field")


def _numbers(src: _Source, col: str, *, required: bool) -> pl.Series:
    """Parse a numeric column to Float64 (null only where the field is empty and not required)."""
    s = src.frame[col]
    if required:
        _required(src, col)
    if s.dtype == pl.String:
        text = s.str.strip_chars()
        out = text.cast(pl.Float64, strict=False)
        bad = _first(out.is_null() & text.is_not_null() & (text != ""))
        if bad is not None:
            raise src.error(bad, f"column {col!r}: {s[bad]!r} is not a number")
    elif s.dtype.is_numeric():
        out = s.cast(pl.Float64)
    elif s.dtype == pl.Null:
        out = pl.Series(col, [None] * s.len(), dtype=pl.Float64)
    else:
        raise IngestError(src.path, f"column {col!r} has type {s.dtype}, expected numbers")
    bad = _first(out.is_nan() | out.is_infinite())
    if bad is not None:
        raise src.error(bad, f"column {col!r}: {s[bad]!r} is not a finite number")
    return out.alias(col)


def _sizes(src: _Source, col: str | None, *, required: bool, scale: int) -> pl.Series | None:
    if col is None:
        return None
    values = _numbers(src, col, required=required)
    bad = _first(values < 0)
    if bad is not None:
        raise src.error(bad, f"column {col!r}: negative size {src.frame[col][bad]!r}")
    scaled = values.to_numpy() * scale
    rounded = np.round(scaled)
    off = np.abs(scaled - rounded) > np.maximum(1e-6, 1e-12 * np.abs(scaled))  # float noise only
    off &= ~np.isnan(scaled)
    if off.any():
        row = int(np.flatnonzero(off)[0])
        raise src.error(
            row, f"column {col!r}: size {src.frame[col][row]!r} is not a whole number of 1/{scale} units "
            "(pass size_scale)"
        )
    if np.nanmax(np.abs(rounded), initial=0.0) >= 2**63:
        raise IngestError(src.path, f"column {col!r}: sizes overflow int64 at scale {scale}")
    return pl.Series(col, rounded).cast(pl.Int64)


def _size_scale(src: _Source, cols: Sequence[str | None], size_scale: int | None) -> int:
    """1 for whole-number sizes, FRACTIONAL_SIZE_SCALE otherwise, unless given."""
    if size_scale is not None:
        if size_scale < 1:
            raise ValueError(f"size_scale must be a positive integer, not {size_scale}")
        return int(size_scale)
    for col in cols:
        if col is None:
            continue
        values = _numbers(src, col, required=False).drop_nulls()
        if values.len() and not (values == values.floor()).all():
            log.warning(
                "%s: fractional sizes in %r; storing them in units of 1/%d (size_scale)",
                src.path, col, FRACTIONAL_SIZE_SCALE,
            )
            src.guesses.append(f"fractional sizes in {col!r} stored in units of 1e-8")
            return FRACTIONAL_SIZE_SCALE
    return 1


def _sides(src: _Source, cols: Columns) -> pl.Series:
    n = src.frame.height
    if cols.side is not None:
        s = src.frame[cols.side]
        if s.dtype.is_numeric():
            v = s.cast(pl.Float64)
            bad = _first(v.is_not_null() & ~v.is_in([1.0, -1.0, 0.0]))
            if bad is not None:
                raise src.error(bad, f"column {cols.side!r}: side {s[bad]!r} is not 1, -1 or 0")
            return v.cast(pl.Int8).replace(0, None).alias("side")
        if s.dtype == pl.Boolean:
            raise IngestError(src.path, f"column {cols.side!r} is boolean; expected 1/-1, B/S or buy/sell")
        tok = s.cast(pl.String).str.strip_chars().str.to_lowercase().fill_null("")
        out = (
            pl.when(tok.is_in(list(BUY_TOKENS))).then(1)
            .when(tok.is_in(list(SELL_TOKENS))).then(-1)
            .otherwise(None)
        )
        side = pl.select(out.cast(pl.Int8).alias("side")).to_series()
        bad = _first(side.is_null() & ~tok.is_in(list(UNKNOWN_TOKENS)))
        if bad is not None:
            raise src.error(bad, f"column {cols.side!r}: unknown side {s[bad]!r} (use 1/-1, B/S, buy/sell)")
        return side
    if cols.buyer_maker is not None:
        s = src.frame[cols.buyer_maker]
        if s.dtype == pl.Boolean:
            maker = s
        else:
            tok = s.cast(pl.String).str.strip_chars().str.to_lowercase()
            maker = pl.select(
                pl.when(tok.is_in(list(TRUE_TOKENS))).then(True)
                .when(tok.is_in(list(FALSE_TOKENS))).then(False)
                .otherwise(None)
                .alias("m")
            ).to_series()
            bad = _first(maker.is_null() & tok.is_not_null() & (tok != ""))
            if bad is not None:
                raise src.error(bad, f"column {cols.buyer_maker!r}: {s[bad]!r} is not true/false")
        # The buyer was the maker (resting order) -> the seller crossed the spread.
        return pl.select(pl.when(maker).then(-1).otherwise(1).cast(pl.Int8).alias("side")).to_series()
    return pl.Series("side", [None] * n, dtype=pl.Int8)


# ----------------------------------------------------------------------------------------- timestamps


def _localize(src: _Source, col: str, naive: pl.Series, tz: str | None) -> pl.Series:
    """Naive local datetimes (ns) -> UTC, with DST gap errors and fall-back disambiguation.

    Without ``tz`` naive times are refused: assuming UTC silently shifts a New York file by 4-5 hours."""
    if tz is None:
        raise src.error(0, f"column {col!r} has timestamps without a time zone (e.g. {naive[0]}); say which "
                           "zone they are in with --tz (e.g. --tz America/New_York, --tz UTC)")
    if tz == "UTC":
        return naive.dt.replace_time_zone("UTC")
    strict = naive.dt.replace_time_zone(tz, ambiguous="null", non_existent="null")
    early = naive.dt.replace_time_zone(tz, ambiguous="earliest", non_existent="null")
    gap = _first(early.is_null() & naive.is_not_null())
    if gap is not None:
        raise src.error(gap, f"column {col!r}: local time {naive[gap]} does not exist in {tz} (DST gap)")
    ambiguous = (strict.is_null() & naive.is_not_null()).to_numpy()
    if not ambiguous.any():
        return strict.dt.convert_time_zone("UTC")
    late = naive.dt.replace_time_zone(tz, ambiguous="latest").to_physical().to_numpy()
    chosen = early.to_physical().to_numpy().copy()
    local = naive.to_physical().to_numpy()
    idx = np.flatnonzero(ambiguous)
    day = local[idx] // 86_400_000_000_000
    switched = np.zeros(idx.size, dtype=bool)
    for j in range(1, idx.size):
        if day[j] != day[j - 1]:
            continue
        switched[j] = switched[j - 1] or local[idx[j]] < local[idx[j - 1]] - 1_000_000_000
    chosen[idx[switched]] = late[idx[switched]]
    return pl.Series(col, chosen).cast(pl.Datetime("ns", "UTC"))


def _epoch(src: _Source, col: str, values: pl.Series, frac_ns: pl.Series | None) -> pl.Series:
    """Epoch integers (unit from magnitude) plus optional sub-unit fraction (in 1e-9 units) -> UTC ns."""
    v = values.to_numpy().astype(np.int64)
    if (v < 0).any():
        row = int(np.flatnonzero(v < 0)[0])
        raise src.error(row, f"column {col!r}: negative epoch timestamp {src.frame[col][row]!r}")
    top = float(v.max()) if v.size else 0.0
    unit_of = np.searchsorted(np.array([b for b, _, _ in EPOCH_UNITS[:-1]]), v.astype(np.float64), side="right")
    file_unit = int(np.searchsorted(np.array([b for b, _, _ in EPOCH_UNITS[:-1]]), top, side="right"))
    _, ns_per, unit = EPOCH_UNITS[file_unit]
    src.guesses.append(f"{col!r} read as epoch {unit} (from the magnitude of its largest value)")
    bad = np.flatnonzero(unit_of != file_unit)
    if bad.size:
        row = int(bad[0])
        raise src.error(
            row, f"column {col!r}: epoch {src.frame[col][row]!r} has a different magnitude than the file's "
            f"(unit {unit}, from the largest value)"
        )
    ns = v * ns_per
    if frac_ns is not None:
        ns = ns + frac_ns.to_numpy().astype(np.int64) * ns_per // 1_000_000_000
    return pl.Series(col, ns).cast(pl.Datetime("ns", "UTC"))


def _timestamps(src: _Source, col: str, tz: str | None) -> pl.Series:
    _required(src, col)
    s = src.frame[col]
    if isinstance(s.dtype, pl.Datetime):
        s = s.cast(pl.Datetime("ns", s.dtype.time_zone))
        if s.dtype.time_zone is None:
            return _localize(src, col, s, tz)
        return s.dt.convert_time_zone("UTC")
    if s.dtype.is_integer():
        return _epoch(src, col, s, None)
    if s.dtype.is_float():
        whole = s.floor()
        frac = ((s - whole) * 1e9).round(0)
        return _epoch(src, col, whole.cast(pl.Int64), frac.cast(pl.Int64))
    if s.dtype != pl.String:
        raise IngestError(src.path, f"column {col!r} has type {s.dtype}; expected a timestamp or epoch number")
    text = s.str.strip_chars()
    numeric = text.str.contains(NUMERIC_RE)
    if numeric.all():
        parts = text.str.split_exact(".", 1).struct.rename_fields(["i", "f"]).struct.unnest()
        whole = parts["i"].cast(pl.Int64, strict=False)
        bad = _first(whole.is_null())
        if bad is not None:
            raise src.error(bad, f"column {col!r}: epoch {s[bad]!r} is out of range")
        frac = parts["f"].fill_null("").str.slice(0, 9).str.pad_end(9, "0").cast(pl.Int64)
        return _epoch(src, col, whole, frac)
    if numeric.any() and not numeric.all():
        first_num = _first(numeric)
        first_text = _first(~numeric)
        assert first_num is not None and first_text is not None
        row = max(first_num, first_text)
        raise src.error(row, f"column {col!r}: timestamp {s[row]!r} mixes epoch numbers and date strings")
    try:
        parsed = text.str.to_datetime(time_unit="ns", strict=False)
    except Exception:  # mixed formats or naive/aware mixes: find the first row polars rejects on its own
        parsed = None
    if parsed is not None:
        bad = _first(parsed.is_null())
        if bad is not None:
            raise src.error(bad, f"column {col!r}: cannot parse timestamp {s[bad]!r}")
    else:
        fmt_ref = text[0]
        for i, value in enumerate(text):
            try:
                pl.Series([fmt_ref, value]).str.to_datetime(time_unit="ns")
            except Exception:
                raise src.error(
                    i, f"column {col!r}: timestamp {s[i]!r} does not match the format of the first row"
                ) from None
        raise IngestError(src.path, f"column {col!r}: cannot parse timestamps")
    assert isinstance(parsed.dtype, pl.Datetime)
    if parsed.dtype.time_zone is None:
        return _localize(src, col, parsed, tz)
    return parsed.dt.convert_time_zone("UTC")


# ---------------------------------------------------------------------------------------------- main


def symbol_from_name(path: Path) -> str:
    """``btcusdt-trades.parquet`` -> ``BTCUSDT``: the name up to the first ``_``, ``-`` or ``.``, uppercased."""
    stem = re.split(r"[_\-.]", path.name, maxsplit=1)[0]
    return stem.upper()


def read_ticks(
    path: str | Path,
    symbol: str | None = None,
    date: dt.date | None = None,
    tz: str | None = None,
    *,
    size_scale: int | None = None,
) -> list[DayTables]:
    """Read a trades or quotes tick file into one :class:`DayTables` per calendar day in ``tz``.

    ``tz`` is required when the timestamps are naive (no zone or offset); aware timestamps and epoch
    numbers are absolute, and without ``tz`` their days are UTC calendar days. Every assumption made
    (symbol from the file name, epoch unit, size scale, UTC days) is listed in ``DayTables.guesses``."""
    path = Path(path)
    if not path.exists():
        raise IngestError(path, "file not found")
    if tz is not None:
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise IngestError(path, f"unknown time zone {tz!r}") from exc
    src = _load(path)
    cols = detect_columns(src.frame.columns, path)
    if src.frame.height == 0:
        raise IngestError(path, "file has a header but no data rows")
    sym = symbol if symbol is not None else symbol_from_name(path)
    if not sym or not re.search(r"[A-Za-z0-9]", sym):
        raise IngestError(path, "cannot derive a symbol from the file name; pass symbol")
    if symbol is None:
        src.guesses.append(f"symbol {sym} taken from the file name (pass --symbol to choose)")
    if cols.symbol is not None and symbol is None:
        distinct = src.frame[cols.symbol].drop_nulls().unique()
        if distinct.len() > 1:
            raise IngestError(
                path, f"column {cols.symbol!r} holds {distinct.len()} symbols; split the file per instrument"
            )

    ts = _timestamps(src, cols.ts, tz).alias("ts")
    n = src.frame.height
    if cols.kind == "trades":
        assert cols.price is not None and cols.size is not None
        price = _numbers(src, cols.price, required=True)
        scale = _size_scale(src, [cols.size], size_scale)
        size = _sizes(src, cols.size, required=True, scale=scale)
        frame = pl.DataFrame(
            {
                "ts": ts,
                "event_type": pl.Series(["trade"] * n, dtype=EventType),
                "order_id": pl.Series([None] * n, dtype=pl.Int64),
                "side": _sides(src, cols),
                "price": price,
                "size": size,
            }
        )
    else:
        assert cols.bid is not None and cols.ask is not None
        bid = _numbers(src, cols.bid, required=True)
        ask = _numbers(src, cols.ask, required=True)
        scale = _size_scale(src, [cols.bid_size, cols.ask_size], size_scale)
        none_i = pl.Series([None] * n, dtype=pl.Int64)
        bid_sz = _sizes(src, cols.bid_size, required=False, scale=scale)
        ask_sz = _sizes(src, cols.ask_size, required=False, scale=scale)
        frame = pl.DataFrame(
            {
                "ts": ts,
                "event_type": pl.Series(["quote"] * n, dtype=EventType),
                "order_id": none_i,
                "side": pl.Series([None] * n, dtype=pl.Int8),
                "price": pl.Series([None] * n, dtype=pl.Float64),
                "size": none_i,
                "ask_px_1": ask,
                "ask_sz_1": none_i if ask_sz is None else ask_sz,
                "bid_px_1": bid,
                "bid_sz_1": none_i if bid_sz is None else bid_sz,
            }
        )
    if scale != 1:
        log.info("%s: sizes stored in units of 1/%d", path, scale)

    naive_days = tz is None
    tz = tz or "UTC"
    if naive_days:
        src.guesses.append("dates are UTC calendar days (pass --tz to split days in another zone)")
    if date is not None:
        local_day = frame["ts"].dt.convert_time_zone(tz).dt.date()
        bad = _first(local_day != date)
        if bad is not None:
            raise src.error(bad, f"timestamp {frame['ts'][bad]} falls on {local_day[bad]} in {tz}, not {date}")
        days = {date: frame}
    else:
        days = split_by_day(frame, tz)

    out: list[DayTables] = []
    for day, part in days.items():
        keyed = add_keys(part, sym, day)
        events = keyed.select(list(EVENTS_SCHEMA))
        if cols.kind == "trades":
            trades = keyed.select(
                "ts", "symbol", "date", "seq", "price", "size", pl.col("side").alias("aggressor_side")
            ).select(list(TRADES_SCHEMA))
            book = None
        else:
            trades = pl.DataFrame(schema=TRADES_SCHEMA)
            book = keyed.select(list(book_schema(1)))
        out.append(DayTables(sym, day, events=events, trades=trades, book=book, sources=(str(path),),
                             size_scale=scale, guesses=tuple(src.guesses)))
    out.sort(key=lambda d: d.date)
    return out


__all__ = ["Columns", "detect_columns", "looks_like_ticks", "read_ticks", "symbol_from_name"]
