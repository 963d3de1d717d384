"""Databento DBN reader: MBO, MBP-1, TBBO, MBP-10 and trades files (``.dbn`` or ``.dbn.zst``).

Decoding goes through the ``databento`` package (``DBNStore.from_bytes`` + ``to_ndarray``); we decompress
zstd ourselves, frame by frame, so that a truncated file is an error instead of silently fewer records.

Conventions and assumptions
---------------------------
* **Timestamps.** ``ts`` is ``ts_event`` (matching-engine time, UTC ns) - except for MBO *snapshot*
  records (``F_SNAPSHOT``), whose ``ts_event`` is the time the order was last touched, possibly days before
  the file's window: they get ``ts_recv`` (Databento sets it to the snapshot generation time, the start of the
  window), so a file's snapshot stays with the day it initialises. ``timestamp="recv"`` uses ``ts_recv`` for
  every record (monotone; the vendor's sort key). Records keep their file order; ``seq`` is dense per day.
* **Prices** are int64 x 1e-9 in the file; we divide by 1e9 (correctly rounded). ``UNDEF_PRICE``
  (INT64_MAX) becomes null.
* **Split** by instrument and UTC calendar day. The symbol comes from the file's symbology mapping
  (``instrument_id`` -> the requested symbol on that day); ``str(instrument_id)`` when unmapped or when one
  mapped name (a parent symbol such as ``ES.FUT``) covers several instruments on the same day. A ``symbol``
  argument renames a single-instrument file; for a multi-instrument file it is an error.
* **Event types.** MBO ``A``->add, ``M``->modify, ``T``->trade, ``F``->fill, ``R``->clear, ``N``->none, and
  ``C`` -> ``delete`` when it removes the rest of the order (what CME cancels always do, and what the cancel
  that follows a full fill does) or ``cancel`` when it leaves part of the order resting (or references an
  order unknown to the replay). ``price``/``size`` are the record's: for ``M`` the order's *new* price and
  size, for ``C`` the cancelled quantity, for ``F`` the filled quantity (for an iceberg order it can exceed
  the displayed size that the following ``C`` removes). MBP-1/MBP-10: ``T`` -> trade, every other action -> quote. TBBO and trades:
  trade. ``side``: ``B`` +1, ``A`` -1, ``N`` null (for trades the side is the aggressor's, per the Databento
  ``Side`` docs: "A sell order or sell aggressor in a trade"). ``order_id`` null for MBP/trades records and
  for MBO records that carry order id 0 (clears, some trades).
* **Trades** come from ``T`` records only (MBO ``F`` fills are the resting side of the same trades and would
  double count), ``aggressor_side`` = the record's side. ``trades.seq`` is the seq of the event it came from
  (as in the LOBSTER reader), so trades join back to events and book.
* **Book.** MBP-1/TBBO/MBP-10: the record's levels (``bid_px_00``...), aligned with events row by row (for
  TBBO the levels are the BBO just *before* the trade, as Databento defines it). MBO: a 10-level price book
  replayed from the orders by a Numba kernel, one row per record (the book after it). The replay follows
  Databento's book-construction rules: ``T``/``F``/``N`` do not change the book, because every CME fill is
  followed by a ``C`` (full fill) or ``M`` (partial fill) of the resting order in the same event; applying
  ``F`` as well would double count. ``M`` of an unknown order is an add; ``R`` empties the book. The book is
  exact only from a snapshot on (MBO files from Databento's historical API start with one); rows in the middle
  of a multi-record event (before the record flagged ``F_LAST``) can be transiently locked or crossed, and
  CME's pre-open book (orders queued for the opening auction) is genuinely crossed until the open.
  Trades-only files have no book.
* ``definition`` files are read by :func:`read_definitions` into instruments (tick size, multiplier...).
  Other schemas (OHLCV, statistics, status, imbalance, ...) raise :class:`IngestError`.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl
import zstandard
from numba import njit

from flowsense.data.day import DayTables, add_keys
from flowsense.data.rawbytes import ZSTD_MAGIC, decompress_frames, read_nonempty
from flowsense.data.schemas import (
    EVENTS_SCHEMA,
    TRADES_SCHEMA,
    EventType,
    book_schema,
)
from flowsense.errors import IngestError

if TYPE_CHECKING:
    from flowsense.data.instruments import Instrument

log = logging.getLogger(__name__)


DBN_MAGIC = b"DBN"
UNDEF_PRICE = np.iinfo(np.int64).max
INT64_MAX = np.iinfo(np.int64).max
F_SNAPSHOT = 1 << 5
F_LAST = 1 << 7
PRICE_SCALE = 1e9
MBO_LEVELS = 10
NS_PER_DAY = 86_400 * 1_000_000_000

# Schemas we read, with their book depth (None: no book) and the record type (rtype) they must carry.
SUPPORTED: dict[str, tuple[int | None, int]] = {
    "mbo": (MBO_LEVELS, 0xA0),
    "mbp-1": (1, 0x01),
    "tbbo": (1, 0x01),
    "mbp-10": (10, 0x0A),
    "trades": (None, 0x00),
}
DEFINITION_RTYPE = 0x13  # instrument definitions: read into the instruments table, not into partitions

# MBO action byte -> kernel code; the code indexes MBO_EVENT_TYPES (C is refined to delete by the replay).
ACTION_CODES = {b"A": 0, b"C": 1, b"M": 2, b"T": 3, b"F": 4, b"R": 5, b"N": 6}
MBO_EVENT_TYPES = ("add", "cancel", "modify", "trade", "fill", "clear", "none", "delete")
A_ADD, A_CANCEL, A_MODIFY, A_TRADE, A_FILL, A_CLEAR, A_NONE, A_DELETE = range(8)


# --------------------------------------------------------------------------------------------- detection


def looks_like_dbn(path: Path) -> bool:
    """True for ``*.dbn`` / ``*.dbn.zst`` names, or a file whose (zstd-decompressed) start is ``DBN``."""
    path = Path(path)
    name = path.name.lower()
    if name.endswith((".dbn", ".dbn.zst")):
        return True
    try:
        with path.open("rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    if head.startswith(DBN_MAGIC):
        return True
    if head.startswith(ZSTD_MAGIC):
        try:
            out = zstandard.ZstdDecompressor().decompressobj().decompress(head)
        except zstandard.ZstdError:
            return False
        return out.startswith(DBN_MAGIC)
    return False


def _decompress(raw: bytes, path: Path) -> bytes:
    """Decompress every zstd frame of ``raw`` (plain DBN passes through)."""
    return decompress_frames(raw, path) if raw.startswith(ZSTD_MAGIC) else raw


# ------------------------------------------------------------------------------------------ MBO replay


@njit(cache=True)
def _replay_mbo(action, side, pidx, size, oidx, n_orders, n_prices, levels):  # pragma: no cover - numba
    """Replay MBO records into a price-level book.

    Inputs are per-record arrays: ``action`` code (see ``ACTION_CODES``), ``side`` (+1 bid / -1 ask / 0),
    ``pidx`` (index into the sorted unique prices, -1 when undefined), ``size``, ``oidx`` (dense order index).
    Returns the book after every record as price indices (-1 = empty level) and sizes for ``levels`` bid and
    ask levels, the refined action codes (C -> delete when it removes the order) and anomaly counters
    [unknown-order cancels, duplicate adds, records without price/side that would touch the book].
    """
    n = action.shape[0]
    bid_px = np.full((n, levels), -1, dtype=np.int64)
    ask_px = np.full((n, levels), -1, dtype=np.int64)
    bid_sz = np.zeros((n, levels), dtype=np.int64)
    ask_sz = np.zeros((n, levels), dtype=np.int64)
    codes = action.astype(np.int64).copy()
    anomalies = np.zeros(3, dtype=np.int64)

    o_alive = np.zeros(n_orders, dtype=np.bool_)
    o_side = np.zeros(n_orders, dtype=np.int8)
    o_pidx = np.zeros(n_orders, dtype=np.int64)
    o_size = np.zeros(n_orders, dtype=np.int64)
    bid_q = np.zeros(n_prices, dtype=np.int64)
    ask_q = np.zeros(n_prices, dtype=np.int64)
    bb = -1  # best bid price index (-1: none)
    ba = n_prices  # best ask price index (n_prices: none)

    for i in range(n):
        a = action[i]
        o = oidx[i]
        if a == 5:  # clear
            o_alive[:] = False
            bid_q[:] = 0
            ask_q[:] = 0
            bb = -1
            ba = n_prices
        elif a == 0 or a == 1 or a == 2:
            # Take the order off the book first (cancel, modify, duplicate add), then put back what remains.
            rest = 0
            if o_alive[o]:
                p = o_pidx[o]
                q = o_size[o]
                if o_side[o] > 0:
                    bid_q[p] -= q
                    if p == bb and bid_q[p] == 0:
                        while bb >= 0 and bid_q[bb] == 0:
                            bb -= 1
                else:
                    ask_q[p] -= q
                    if p == ba and ask_q[p] == 0:
                        while ba < n_prices and ask_q[ba] == 0:
                            ba += 1
                o_alive[o] = False
                if a == 0:
                    anomalies[1] += 1
                elif a == 1:
                    dec = min(size[i], q)
                    rest = q - dec
                    if rest == 0:
                        codes[i] = 7  # delete
                    else:
                        o_alive[o] = True  # put back the remainder at the same price
                        o_size[o] = rest
            elif a == 1:
                anomalies[0] += 1
            if a == 0 or a == 2:
                if pidx[i] < 0 or side[i] == 0:
                    if size[i] > 0:
                        anomalies[2] += 1
                elif size[i] > 0:
                    o_alive[o] = True
                    o_side[o] = side[i]
                    o_pidx[o] = pidx[i]
                    o_size[o] = size[i]
            if o_alive[o] and (a != 1 or rest > 0):
                p = o_pidx[o]
                q = o_size[o]
                if o_side[o] > 0:
                    bid_q[p] += q
                    if p > bb:
                        bb = p
                else:
                    ask_q[p] += q
                    if p < ba:
                        ba = p
        # trade / fill / none: no change (the following cancel or modify updates the resting order)

        k = 0
        p = bb
        while p >= 0 and k < levels:
            if bid_q[p] > 0:
                bid_px[i, k] = p
                bid_sz[i, k] = bid_q[p]
                k += 1
            p -= 1
        k = 0
        p = ba
        while p < n_prices and k < levels:
            if ask_q[p] > 0:
                ask_px[i, k] = p
                ask_sz[i, k] = ask_q[p]
                k += 1
            p += 1
    return bid_px, bid_sz, ask_px, ask_sz, codes, anomalies


def replay_mbo_book(
    action: np.ndarray, side: np.ndarray, price: np.ndarray, size: np.ndarray, order_id: np.ndarray,
    levels: int = MBO_LEVELS,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Rebuild a ``levels``-deep price book from one instrument's MBO records (raw 1e-9 prices).

    Returns ``(book, codes, anomalies)``: ``book`` maps canonical book columns to float64 prices (NaN = empty)
    and int64 sizes (0 = empty); ``codes`` are the refined action codes; ``anomalies`` the kernel counters.
    """
    defined = price != UNDEF_PRICE
    uniq = np.unique(price[defined])
    pidx = np.full(price.shape[0], -1, dtype=np.int64)
    pidx[defined] = np.searchsorted(uniq, price[defined])
    uniq_oid, oidx = np.unique(order_id, return_inverse=True)
    bid_px, bid_sz, ask_px, ask_sz, codes, anomalies = _replay_mbo(
        action.astype(np.int8), side.astype(np.int8), pidx, size.astype(np.int64), oidx.astype(np.int64),
        uniq_oid.shape[0], uniq.shape[0], levels,
    )
    px_lut = np.append(uniq / PRICE_SCALE, np.nan)  # index -1 -> NaN
    book: dict[str, np.ndarray] = {}
    for k in range(levels):
        book[f"ask_px_{k + 1}"] = px_lut[ask_px[:, k]]
        book[f"ask_sz_{k + 1}"] = ask_sz[:, k]
        book[f"bid_px_{k + 1}"] = px_lut[bid_px[:, k]]
        book[f"bid_sz_{k + 1}"] = bid_sz[:, k]
    return book, codes, anomalies


# -------------------------------------------------------------------------------------------- helpers


def _side(raw: np.ndarray) -> np.ndarray:
    """Databento side bytes -> +1 (B), -1 (A), 0 (N or anything else)."""
    out = np.zeros(raw.shape[0], dtype=np.int8)
    out[raw == b"B"] = 1
    out[raw == b"A"] = -1
    return out


def _prices(raw: np.ndarray) -> pl.Series:
    values = raw.astype(np.int64) / PRICE_SCALE
    return pl.Series(values, dtype=pl.Float64).set(pl.Series(raw == UNDEF_PRICE), None)  # type: ignore[arg-type]


def _book_frame(book: dict[str, np.ndarray], levels: int) -> pl.DataFrame:
    """Canonical level columns from NaN-priced/zero-sized empty levels -> null price and size."""
    cols: dict[str, pl.Series] = {}
    for k in range(1, levels + 1):
        for s in ("ask", "bid"):
            px = np.asarray(book[f"{s}_px_{k}"], dtype=np.float64)
            sz = np.asarray(book[f"{s}_sz_{k}"], dtype=np.int64)
            empty = np.isnan(px) | (sz <= 0)
            cols[f"{s}_px_{k}"] = pl.Series(f"{s}_px_{k}", np.where(empty, 0.0, px)).set(
                pl.Series(empty), None  # type: ignore[arg-type]
            )
            cols[f"{s}_sz_{k}"] = pl.Series(f"{s}_sz_{k}", sz).set(pl.Series(empty), None)  # type: ignore[arg-type]
    return pl.DataFrame(cols)


def _mbp_book(rec: np.ndarray, levels: int) -> dict[str, np.ndarray]:
    book: dict[str, np.ndarray] = {}
    for k in range(levels):
        for s in ("ask", "bid"):
            raw = rec[f"{s}_px_{k:02d}"].astype(np.int64)
            px = raw / PRICE_SCALE
            px[raw == UNDEF_PRICE] = np.nan
            book[f"{s}_px_{k + 1}"] = px
            book[f"{s}_sz_{k + 1}"] = rec[f"{s}_sz_{k:02d}"].astype(np.int64)
    return book


def _load(path: Path, *, allow_definition: bool = False) -> tuple[str, np.ndarray, object]:
    """Decode ``path`` into (schema name, record array, metadata); every defect raises IngestError."""
    import databento as db  # heavy import, only when a DBN file is read
    from databento.common.error import BentoError
    from databento_dbn import DBNError

    raw = read_nonempty(path)
    data = _decompress(raw, path)
    if not data.startswith(DBN_MAGIC):
        raise IngestError(path, "not a DBN file (no 'DBN' magic bytes after decompression)")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store = db.DBNStore.from_bytes(io.BytesIO(data))
            schema = None if store.schema is None else str(store.schema)
            if schema == "definition" and not allow_definition:
                raise IngestError(path, "is a DBN definition file: read it with read_definitions (ingest does)")
            if schema not in SUPPORTED and schema != "definition":
                raise IngestError(
                    path,
                    f"unsupported DBN schema {schema!r}: FlowSense reads {', '.join(SUPPORTED)} and definition "
                    "(OHLCV bars, statistics and status records are not market events)",
                )
            rec = store.to_ndarray()
            metadata = store.metadata
    except IngestError:
        raise
    except (BentoError, DBNError, ValueError, RuntimeError, OSError) as exc:
        raise IngestError(path, f"cannot decode DBN data ({exc})") from exc
    for w in caught:
        if "truncated" in str(w.message) or "incomplete" in str(w.message):
            raise IngestError(path, f"file is truncated: {w.message}")
    if rec.ndim != 1:
        rec = rec.reshape(-1)
    rtype = DEFINITION_RTYPE if schema == "definition" else SUPPORTED[schema][1]
    if rec.shape[0]:
        bad = np.flatnonzero((rec["rtype"] != rtype) | (rec["length"].astype(np.int64) * 4 != rec.dtype.itemsize))
        if bad.size:
            i = int(bad[0])
            raise IngestError(
                path, f"record {i + 1}: rtype {rec['rtype'][i]} / length {rec['length'][i]} does not fit schema {schema}"
            )
    return schema, rec, metadata


def _timestamps(rec: np.ndarray, path: Path, timestamp: str) -> np.ndarray:
    ts_event = rec["ts_event"]
    ts_recv = rec["ts_recv"]
    if timestamp == "recv":
        ts = ts_recv
    else:
        snapshot = (rec["flags"] & F_SNAPSHOT) != 0
        ts = np.where(snapshot, ts_recv, ts_event)
    bad = np.flatnonzero(ts > INT64_MAX)
    if bad.size:
        raise IngestError(path, f"record {int(bad[0]) + 1}: undefined or out-of-range timestamp {ts[bad[0]]}")
    return ts.astype(np.int64)


def _symbol_names(
    rec: np.ndarray, ts: np.ndarray, metadata: object, symbol: str | None, path: Path
) -> np.ndarray:
    """One symbol per record: the file's symbology on the record's UTC day, else str(instrument_id)."""
    from databento.common.symbology import InstrumentMap

    iids = rec["instrument_id"].astype(np.int64)
    uniq_iids = np.unique(iids)
    if symbol is not None:
        if uniq_iids.size > 1:
            raise IngestError(
                path,
                f"symbol={symbol!r} given but the file holds {uniq_iids.size} instruments "
                f"({', '.join(map(str, uniq_iids[:5]))}); a symbol override needs a single-instrument file",
            )
        return np.full(iids.shape[0], symbol, dtype=object)
    imap = InstrumentMap()
    try:
        imap.insert_metadata(metadata)  # type: ignore[arg-type]
    except Exception as exc:  # malformed mappings: fall back to instrument ids, but say so
        log.warning("%s: cannot use the symbology mappings (%s); naming instruments by id", path, exc)
        imap = InstrumentMap()
    # The set of names each instrument id has anywhere in the mapping (fallback for days outside it).
    names_of: dict[int, set[str]] = {}
    for raw_symbol, intervals in (getattr(metadata, "mappings", None) or {}).items():
        for iv in intervals:
            try:
                names_of.setdefault(int(iv["symbol"]), set()).add(str(raw_symbol))
            except (KeyError, TypeError, ValueError):
                continue
    days = ts // NS_PER_DAY
    keys = np.unique(np.stack([iids, days], axis=1), axis=0)
    resolved: dict[tuple[int, int], str] = {}
    for iid, day in keys.tolist():
        date = dt.date(1970, 1, 1) + dt.timedelta(days=day)
        name = imap.resolve(iid, date)
        if name is None and len(names_of.get(iid, ())) == 1:
            name = next(iter(names_of[iid]))
        resolved[(iid, day)] = str(name) if name else str(iid)
    # A name shared by several instruments on one day (parent symbology) is ambiguous: use the ids.
    owners: dict[tuple[str, int], set[int]] = {}
    for (iid, day), name in resolved.items():
        owners.setdefault((name, day), set()).add(iid)
    for (iid, day), name in list(resolved.items()):
        if len(owners[(name, day)]) > 1:
            resolved[(iid, day)] = str(iid)
    out = np.empty(iids.shape[0], dtype=object)
    key_index = {k: j for j, k in enumerate(resolved)}
    names = np.array(list(resolved.values()), dtype=object)
    key_codes = np.fromiter((key_index[(a, b)] for a, b in zip(iids.tolist(), days.tolist(), strict=True)),
                            dtype=np.int64, count=iids.shape[0])
    out[:] = names[key_codes]
    return out


# ------------------------------------------------------------------------------------------ main entry


def _instrument_frame(
    schema: str, rec: np.ndarray, ts: np.ndarray, path: Path
) -> tuple[pl.DataFrame, int | None]:
    """Events (+ book columns, + aggressor) of one instrument's records, in file order."""
    levels, _ = SUPPORTED[schema]
    n = rec.shape[0]
    side = _side(rec["side"])
    side_s = pl.Series("side", side, dtype=pl.Int8).set(pl.Series(side == 0), None)  # type: ignore[arg-type]
    cols: dict[str, pl.Series | np.ndarray] = {
        "ts": pl.Series("ts", ts, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        "price": _prices(rec["price"]),
        "size": pl.Series("size", rec["size"].astype(np.int64)),
        "side": side_s,
    }
    book: dict[str, np.ndarray] | None = None
    actions = rec["action"]
    if schema == "mbo":
        publishers = np.unique(rec["publisher_id"])
        if publishers.size > 1:
            raise IngestError(
                path,
                f"instrument {rec['instrument_id'][0]} has MBO records from {publishers.size} publishers "
                "(venues); one price book per venue is not supported - request one venue per file",
            )
        codes = np.full(n, -1, dtype=np.int8)
        for byte, code in ACTION_CODES.items():
            codes[actions == byte] = code
        if (codes < 0).any():
            i = int(np.flatnonzero(codes < 0)[0])
            raise IngestError(path, f"unknown MBO action {actions[i]!r} (instrument record {i + 1})")
        order_id = rec["order_id"]
        if (order_id > INT64_MAX).any():
            raise IngestError(path, "order_id above 2**63-1 cannot be stored as int64")
        book, refined, anomalies = replay_mbo_book(codes, side, rec["price"], rec["size"], order_id)
        if anomalies.any():
            log.warning(
                "%s: MBO replay of instrument %s: %d cancels of unknown orders, %d duplicate adds, "
                "%d adds/modifies without price or side",
                path, rec["instrument_id"][0], *anomalies.tolist(),
            )
        event_type = np.array(MBO_EVENT_TYPES, dtype=object)[refined]
        oid = order_id.astype(np.int64)
        cols["order_id"] = pl.Series("order_id", oid).set(pl.Series(oid == 0), None)  # type: ignore[arg-type]
        is_trade = codes == A_TRADE
    else:
        if schema in ("trades", "tbbo"):
            event_type = np.full(n, "trade", dtype=object)
        else:
            event_type = np.where(actions == b"T", "trade", "quote").astype(object)
        is_trade = actions == b"T"
        cols["order_id"] = pl.Series("order_id", [None] * n, dtype=pl.Int64)
        if levels is not None:
            book = _mbp_book(rec, levels)
    cols["event_type"] = pl.Series("event_type", event_type.tolist(), dtype=EventType)
    frame = pl.DataFrame(cols).with_columns(
        pl.Series("__is_trade", is_trade),
        pl.Series("__last", (rec["flags"] & F_LAST) != 0),
    )
    if book is not None and levels is not None:
        frame = pl.concat([frame, _book_frame(book, levels)], how="horizontal")
    return frame, levels


def dbn_schema(path: str | Path) -> str | None:
    """The schema named in a DBN file's metadata (reads only the header)."""
    import databento as db

    path = Path(path)
    data = _decompress(read_nonempty(path), path)
    if not data.startswith(DBN_MAGIC):
        raise IngestError(path, "not a DBN file (no 'DBN' magic bytes after decompression)")
    try:
        store = db.DBNStore.from_bytes(io.BytesIO(data))
    except Exception as exc:  # any decoding failure is the file's fault
        raise IngestError(path, f"cannot decode DBN data ({exc})") from exc
    return None if store.schema is None else str(store.schema)


def read_definitions(path: str | Path, symbol: str | None = None) -> list[Instrument]:
    """Instruments (tick size, multiplier, currency, venue...) from a Databento ``definition`` file."""
    from flowsense.data.instruments import from_dbn_definitions

    path = Path(path)
    schema, rec, _ = _load(path, allow_definition=True)
    if schema != "definition":
        raise IngestError(path, f"is a DBN {schema} file, not a definition file")
    if rec.shape[0] == 0:
        raise IngestError(path, "definition file holds no records")
    names = None
    if symbol is not None:
        if np.unique(rec["instrument_id"]).size > 1:
            raise IngestError(path, f"symbol={symbol!r} given but the file defines several instruments")
        names = [symbol] * rec.shape[0]
    return from_dbn_definitions(rec, names)


def read_dbn(
    path: str | Path, symbol: str | None = None, *, timestamp: Literal["event", "recv"] = "event"
) -> list[DayTables]:
    """Read a DBN file into one :class:`DayTables` per instrument x UTC day (sorted by symbol, date)."""
    path = Path(path)
    if not path.exists():
        raise IngestError(path, "file not found")
    if timestamp not in ("event", "recv"):
        raise ValueError(f"timestamp must be 'event' or 'recv', not {timestamp!r}")
    schema, rec, metadata = _load(path)
    if rec.shape[0] == 0:
        return []
    ts = _timestamps(rec, path, timestamp)
    names = _symbol_names(rec, ts, metadata, symbol, path)
    iids = rec["instrument_id"]
    out: list[DayTables] = []
    for iid in np.unique(iids):
        idx = np.flatnonzero(iids == iid)
        frame, levels = _instrument_frame(schema, rec[idx], ts[idx], path)
        frame = frame.with_columns(
            pl.Series("__sym", names[idx].tolist(), dtype=pl.String),
            pl.col("ts").dt.date().alias("__day"),
        )
        for (sym, day), part in frame.partition_by(["__sym", "__day"], as_dict=True, maintain_order=True).items():
            assert isinstance(sym, str) and isinstance(day, dt.date)
            keyed = add_keys(part, sym, day)
            events = keyed.select(list(EVENTS_SCHEMA))
            trades = keyed.filter(pl.col("__is_trade")).select(
                "ts", "symbol", "date", "seq", "price", "size", pl.col("side").alias("aggressor_side")
            ).select(list(TRADES_SCHEMA))
            book = None if levels is None else keyed.select(list(book_schema(levels)))
            check = None if levels is None else keyed["__last"].alias("book_check")
            out.append(DayTables(sym, day, events=events, trades=trades, book=book, sources=(str(path),),
                                 book_check=check))
    out.sort(key=lambda d: (d.symbol, d.date))
    return out


__all__ = ["dbn_schema", "looks_like_dbn", "read_dbn", "read_definitions", "replay_mbo_book"]
