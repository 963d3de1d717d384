"""Raw Binance websocket captures (hftbacktest's collector): trades, best bid/offer and L2 depth diffs.

Layout (``../shared/data/hftbacktest_binance_2024-08-08/SOURCE.md``): gzip text, one message per line,
``<local receive time, ns since epoch> <raw JSON>``. Messages:

* ``{"stream": "<sym>@trade", "data": {p, q, T, m, ...}}`` - a trade (``m`` true = the buyer was the maker,
  so the seller was the aggressor: side -1);
* ``{"stream": "<sym>@bookTicker", "data": {b, B, a, A, u}}`` - best bid and offer (complete from line 1);
* ``{"stream": "<sym>@depth@100ms|@depth@0ms", "data": {U, u, [pu], b: [[px, qty]...], a: [...]}}`` - L2
  diffs (qty 0 deletes the level);
* ``{"lastUpdateId": ..., "bids": [...], "asks": [...]}`` - a REST depth snapshot (1000 levels), which the
  collector fetched once near the start of the ``_20240808`` files (the ``_20240809`` files have none).

Market and symbol: spot (no ``pu`` in depth diffs) -> ``BTCUSDT``; USD-M futures (``pu``, no ``ps``) ->
``BTCUSDT_PERP`` (a FlowSense name, so that spot and perpetual do not share partitions); COIN-M (``ps``) ->
``BTCUSD_PERP``. Sizes: spot and USD-M quantities are stored in 1e-8 units (``size_scale = 10**8``), COIN-M
quantities are whole contracts (``size_scale = 1``); prices in the quote currency.

Tables (one event per message, ``ts`` = the local receive time: the one clock every stream shares; the
exchange's own ``E``/``T`` times in these files run ~1.3 s ahead of it):

* ``events``: ``trade`` (price, size, side = aggressor) and ``quote`` for bookTicker, depth-diff and
  snapshot messages (the book row holds the change; price/size/side null);
* ``trades``: every trade;
* ``book`` (10 levels, row-aligned with events): level 1 is the latest bookTicker; deeper levels come from
  the depth book (the snapshot, when there is one, plus the diffs) strictly behind it. Before the first
  bookTicker level 1 comes from the depth book too. ``book_complete`` (boolean column) is true only where
  every level shown is known: after a snapshot (until an update-id gap), or - without one - once the diffs
  have touched every price tick from the best price to the deepest level shown (no price between them can
  hide an unseen order). Update-id gaps in the diff stream are counted (``depth_gaps`` in the report) and
  mark the rest of the file incomplete.
"""

from __future__ import annotations

import datetime as dt
import gzip
import re
from pathlib import Path

import numpy as np
import orjson
import polars as pl
from numba import njit

from flowsense.data.day import DayTables, add_keys, split_by_day
from flowsense.data.rawbytes import read_nonempty
from flowsense.data.schemas import EVENTS_SCHEMA, TRADES_SCHEMA, EventType, book_schema
from flowsense.errors import IngestError

LEVELS = 10
LINE_RE = re.compile(rb"^\d{15,20} \{")
K_TRADE, K_TICKER, K_DEPTH, K_SNAPSHOT = 0, 1, 2, 3


def _open_text(path: Path) -> bytes:
    raw = read_nonempty(path)
    if raw.startswith(b"\x1f\x8b"):
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise IngestError(path, f"cannot decompress gzip data ({exc})") from exc
    return raw


def looks_like_binance_capture(path: Path) -> bool:
    """True for a (gzip) text file whose first line is ``<ns> {"stream": "...@trade|bookTicker|depth..."``."""
    try:
        with Path(path).open("rb") as fh:
            head = fh.read(2)
        opener = gzip.open if head == b"\x1f\x8b" else open
        with opener(path, "rb") as fh:  # type: ignore[operator]
            line = fh.readline(1 << 16)
    except (OSError, EOFError):
        return False
    if not LINE_RE.match(line):
        return False
    rest = line.split(b" ", 1)[1]
    return rest.startswith(b'{"stream":') or rest.startswith(b'{"lastUpdateId"') or rest.startswith(b'{"channel"')


@njit(cache=True)
def _replay(kind, reset, u_row, u_side, u_pidx, u_qty, tb_p, tb_q, ta_p, ta_q, gap_row, grid, tick, levels):  # pragma: no cover
    n = kind.shape[0]
    m = grid.shape[0]
    bid_q = np.zeros(m, dtype=np.int64)
    ask_q = np.zeros(m, dtype=np.int64)
    touched = np.zeros(m, dtype=np.bool_)
    snap_lo = np.int64(m)  # grid range known from a snapshot: [snap_lo, snap_hi]
    snap_hi = np.int64(-1)
    out_bp = np.full((n, levels), -1, dtype=np.int64)
    out_bq = np.zeros((n, levels), dtype=np.int64)
    out_ap = np.full((n, levels), -1, dtype=np.int64)
    out_aq = np.zeros((n, levels), dtype=np.int64)
    complete = np.zeros(n, dtype=np.bool_)
    have_tb = False
    cb_p = -1
    cb_q = 0
    ca_p = -1
    ca_q = 0
    broken = False
    j = 0
    nu = u_row.shape[0]
    for i in range(n):
        if gap_row[i]:
            broken = True
            touched[:] = False
            snap_lo = m
            snap_hi = -1
        if reset[i]:
            bid_q[:] = 0
            ask_q[:] = 0
            broken = False
        first_snap = reset[i]
        lo_s = m
        hi_s = -1
        while j < nu and u_row[j] == i:
            p = u_pidx[j]
            if u_side[j] > 0:
                bid_q[p] = u_qty[j]
            else:
                ask_q[p] = u_qty[j]
            touched[p] = True
            if first_snap and u_qty[j] > 0:
                lo_s = min(lo_s, p)
                hi_s = max(hi_s, p)
            j += 1
        if first_snap and hi_s >= 0:
            snap_lo = lo_s
            snap_hi = hi_s
        if kind[i] == 1:
            have_tb = True
            cb_p = tb_p[i]
            cb_q = tb_q[i]
            ca_p = ta_p[i]
            ca_q = ta_q[i]
        # bids: level 1 = ticker, then depth levels strictly below it
        k = 0
        if have_tb and cb_p >= 0:
            out_bp[i, 0] = cb_p
            out_bq[i, 0] = cb_q
            k = 1
            p = cb_p - 1
        else:
            p = m - 1
        while p >= 0 and k < levels:
            if bid_q[p] > 0:
                out_bp[i, k] = p
                out_bq[i, k] = bid_q[p]
                k += 1
            p -= 1
        k = 0
        if have_tb and ca_p >= 0:
            out_ap[i, 0] = ca_p
            out_aq[i, 0] = ca_q
            k = 1
            p = ca_p + 1
        else:
            p = 0
        while p < m and k < levels:
            if ask_q[p] > 0:
                out_ap[i, k] = p
                out_aq[i, k] = ask_q[p]
                k += 1
            p += 1
        # complete: every level shown, every tick between adjacent shown levels known
        ok = not broken
        for s in range(2):
            if not ok:
                break
            for lv in range(levels):
                pa = out_bp[i, lv] if s == 0 else out_ap[i, lv]
                if pa < 0:
                    ok = False
                    break
                if lv == 0:
                    continue
                pb = out_bp[i, lv - 1] if s == 0 else out_ap[i, lv - 1]
                lo = min(pa, pb)
                hi = max(pa, pb)
                if lo >= snap_lo and hi <= snap_hi:
                    continue
                ticks = int(np.round(abs(grid[hi] - grid[lo]) / tick)) - 1
                if ticks != hi - lo - 1:
                    ok = False
                    break
                for q in range(lo + 1, hi):
                    if not touched[q]:
                        ok = False
                        break
                if not ok:
                    break
        complete[i] = ok
    return out_bp, out_bq, out_ap, out_aq, complete


def _symbol_and_market(stream_sym: str, depth: dict | None) -> tuple[str, str]:
    sym = stream_sym.upper()
    if depth is not None and "ps" in depth:
        return sym, "coinm"
    if depth is not None and "pu" in depth:
        return f"{sym}_PERP", "usdm"
    return sym, "spot"


def read_binance_capture(
    path: str | Path, symbol: str | None = None, date: dt.date | None = None
) -> list[DayTables]:
    """Read a raw Binance capture into one :class:`DayTables` per UTC day (see the module docstring)."""
    from flowsense.data.instruments import builtin_instrument

    path = Path(path)
    if not path.exists():
        raise IngestError(path, "file not found")
    text = _open_text(path)
    if not text.endswith(b"\n"):
        raise IngestError(path, "file is truncated: last line has no line terminator", line=text.count(b"\n") + 1)
    ts: list[int] = []
    kind: list[int] = []
    price: list[float | None] = []
    qty: list[str | None] = []
    side: list[int | None] = []
    tick_rows: list[tuple[float, str, float, str]] = []  # per ticker row
    depth_msgs: list[tuple[int, dict]] = []  # (row, data)
    snapshots: list[tuple[int, dict]] = []
    stream_sym = None
    first_depth = None
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        head, _, body = line.partition(b" ")
        try:
            t = int(head)
            msg = orjson.loads(body)
        except (ValueError, orjson.JSONDecodeError) as exc:
            raise IngestError(path, f"not '<ns> <json>' ({exc})", line=lineno) from exc
        if "channel" in msg:
            raise IngestError(path, "is a Hyperliquid capture (channel l2Book/trades): not supported; "
                              "FlowSense reads Binance trade/bookTicker/depth captures")
        row = len(ts)
        if "lastUpdateId" in msg:
            ts.append(t)
            kind.append(K_SNAPSHOT)
            price.append(None)
            qty.append(None)
            side.append(None)
            snapshots.append((row, msg))
            continue
        stream = str(msg.get("stream", ""))
        data = msg.get("data") or {}
        name, _, what = stream.partition("@")
        if stream_sym is None:
            stream_sym = name
        elif name != stream_sym:
            raise IngestError(path, f"stream {stream!r} is for another symbol than {stream_sym!r}", line=lineno)
        try:
            if what == "trade":
                ts.append(t)
                kind.append(K_TRADE)
                price.append(float(data["p"]))
                qty.append(str(data["q"]))
                side.append(-1 if data["m"] else 1)
            elif what == "bookTicker":
                ts.append(t)
                kind.append(K_TICKER)
                price.append(None)
                qty.append(None)
                side.append(None)
                tick_rows.append((float(data["b"]), str(data["B"]), float(data["a"]), str(data["A"])))
            elif what.startswith("depth"):
                ts.append(t)
                kind.append(K_DEPTH)
                price.append(None)
                qty.append(None)
                side.append(None)
                depth_msgs.append((row, data))
                first_depth = first_depth or data
            else:
                raise IngestError(path, f"unknown stream {stream!r}", line=lineno)
        except (KeyError, TypeError, ValueError) as exc:
            raise IngestError(path, f"malformed {what} message ({exc!r})", line=lineno) from exc
    if not ts:
        raise IngestError(path, "no messages")
    if stream_sym is None:
        raise IngestError(path, "no stream messages (only snapshots)")
    sym, market = _symbol_and_market(stream_sym, first_depth)
    if symbol is not None:
        sym = symbol
    inst = builtin_instrument(sym)
    scale = 1 if market == "coinm" else 10**8
    tick = inst.tick_size

    def q_int(s: str) -> int:
        return round(float(s) * scale)

    n = len(ts)
    kind_a = np.array(kind, dtype=np.int8)
    # ---- depth updates, in replay order (snapshot rows re-apply the earlier diffs that straddle them)
    rows_u: list[int] = []
    sides_u: list[int] = []
    px_u: list[float] = []
    q_u: list[int] = []
    reset = np.zeros(n, dtype=np.bool_)
    gap_row = np.zeros(n, dtype=np.bool_)
    gaps = 0
    snap_at = {r: s for r, s in snapshots}
    last_id: int | None = None
    pending: list[tuple[int, dict]] = []  # diffs seen before the latest snapshot
    events_by_row: dict[int, list[tuple[int, float, int]]] = {}
    depth_by_row = dict(depth_msgs)
    synced = False  # a snapshot was applied and the diff chain is unbroken
    pending = []
    for r in sorted(list(depth_by_row) + list(snap_at)):
        if r in snap_at:
            snap = snap_at[r]
            lid = int(snap["lastUpdateId"])
            reset[r] = True
            ups = [(1, float(p), q_int(q)) for p, q in snap["bids"]] + [(-1, float(p), q_int(q)) for p, q in snap["asks"]]
            last_id = lid
            for _, d in pending:
                if int(d["u"]) > lid:
                    ups += [(1, float(p), q_int(q)) for p, q in d["b"]] + [(-1, float(p), q_int(q)) for p, q in d["a"]]
                    last_id = int(d["u"])
            events_by_row[r] = ups
            pending = []
            synced = True
            continue
        d = depth_by_row[r]
        U, u = int(d["U"]), int(d["u"])
        if synced and last_id is not None:
            if u <= last_id:
                continue  # already in the snapshot
            chained = (int(d["pu"]) == last_id) if "pu" in d else (last_id + 1 >= U)
            if not chained:
                gaps += 1
                gap_row[r] = True
                synced = False
        pending.append((r, d))
        last_id = u
        events_by_row[r] = [(1, float(p), q_int(q)) for p, q in d["b"]] + [(-1, float(p), q_int(q)) for p, q in d["a"]]
    for r in sorted(events_by_row):
        for s_, p, q in events_by_row[r]:
            rows_u.append(r)
            sides_u.append(s_)
            px_u.append(p)
            q_u.append(q)
    tick_idx = np.flatnonzero(kind_a == K_TICKER)
    tb_px = np.full(n, np.nan)
    ta_px = np.full(n, np.nan)
    tb_q = np.zeros(n, dtype=np.int64)
    ta_q = np.zeros(n, dtype=np.int64)
    if tick_idx.size:
        arr = np.array([(b, a) for b, _, a, _ in tick_rows])
        tb_px[tick_idx] = arr[:, 0]
        ta_px[tick_idx] = arr[:, 1]
        tb_q[tick_idx] = [q_int(bq) for _, bq, _, _ in tick_rows]
        ta_q[tick_idx] = [q_int(aq) for _, _, _, aq in tick_rows]
    px_u_a = np.array(px_u, dtype=np.float64)
    allp = np.concatenate([px_u_a, tb_px[tick_idx], ta_px[tick_idx]])
    grid = np.unique(allp[~np.isnan(allp)])
    if grid.size == 0:
        grid = np.array([0.0])
    pidx_u = np.searchsorted(grid, px_u_a).astype(np.int64)
    tbp = np.where(np.isnan(tb_px), -1, np.searchsorted(grid, np.nan_to_num(tb_px))).astype(np.int64)
    tap = np.where(np.isnan(ta_px), -1, np.searchsorted(grid, np.nan_to_num(ta_px))).astype(np.int64)
    bp, bq, ap, aq, complete = _replay(
        kind_a, reset, np.array(rows_u, dtype=np.int64), np.array(sides_u, dtype=np.int8), pidx_u,
        np.array(q_u, dtype=np.int64), tbp, tb_q, tap, ta_q, gap_row, grid, float(tick), LEVELS,
    )
    lut = np.append(grid, np.nan)
    book_cols: dict[str, pl.Series] = {}
    for k in range(LEVELS):
        for s_, pcol, qcol in (("ask", ap, aq), ("bid", bp, bq)):
            empty = pcol[:, k] < 0
            book_cols[f"{s_}_px_{k + 1}"] = pl.Series(lut[pcol[:, k]]).set(pl.Series(empty), None)  # type: ignore[arg-type]
            book_cols[f"{s_}_sz_{k + 1}"] = pl.Series(qcol[:, k]).set(pl.Series(empty), None)  # type: ignore[arg-type]
    size = pl.Series("size", [None if q is None else q_int(q) for q in qty], dtype=pl.Int64)
    frame = pl.DataFrame({
        "ts": pl.Series("ts", ts, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
        "event_type": pl.Series(["trade" if k == K_TRADE else "quote" for k in kind], dtype=EventType),
        "order_id": pl.Series([None] * n, dtype=pl.Int64),
        "side": pl.Series(side, dtype=pl.Int8),
        "price": pl.Series(price, dtype=pl.Float64),
        "size": size,
        **book_cols,
        "book_complete": pl.Series(complete),
    })
    days = split_by_day(frame, "UTC")
    if date is not None and set(days) != {date}:
            raise IngestError(path, f"the capture spans {sorted(days)}, not only --date {date}")
    out = []
    schema = list(book_schema(LEVELS))
    for day, part in days.items():
        keyed = add_keys(part, sym, day)
        trades = keyed.filter(pl.col("event_type") == "trade").select(
            "ts", "symbol", "date", "seq", "price", "size", pl.col("side").alias("aggressor_side")
        ).select(list(TRADES_SCHEMA))
        out.append(DayTables(
            sym, day, events=keyed.select(list(EVENTS_SCHEMA)), trades=trades,
            book=keyed.select([*schema, "book_complete"]), sources=(str(path),), size_scale=scale,
            extra={"market": market, "depth_gaps": gaps, "snapshots": len(snapshots),
                   "book_complete_rows": int(keyed["book_complete"].sum()),
                   "book_complete_from": _first_true_ts(keyed)},
        ))
    return sorted(out, key=lambda d: d.date)


def _first_true_ts(df: pl.DataFrame) -> str | None:
    hit = df.filter(pl.col("book_complete"))
    return None if hit.is_empty() else str(hit["ts"][0])


__all__ = ["looks_like_binance_capture", "read_binance_capture"]
