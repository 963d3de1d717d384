"""Live event fan-out: the worker's event feed -> WebSocket clients, with resume by cursor.

Sources: locally the state store's ``events_since(cursor)`` (polled every ``poll_s``); in production the
Redis pub/sub channels ``flowsense:events:<topic>``. Each event becomes ``{cursor, topic, symbol, ts, data}``
serialized once; every client receives the events of its subscriptions in batches, one WebSocket frame per
batch: ``{"type": "events", "cursor": <last>, "items": [...]}``.

Resume: the hub keeps the last ``ring_size`` events; a client that reconnects with ``cursor`` gets every
event after it (from the ring, or locally from the store when older), then the live feed. A cursor older
than what is still available gets a ``{"type": "gap", ...}`` frame first, so the client knows it missed
events. A client too slow to keep up (its queue fills) is sent a ``lagged`` frame and disconnected; it
reconnects with its cursor. The worker never waits on the hub: the hub only reads.

The hub also keeps the latest book and recent trades per symbol for the REST endpoints.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from flowsense_api.lakedata import _book_from_row, jsonable

TOPICS = ("book", "trades", "signals", "fills", "pnl", "state")
REDIS_PATTERN = "flowsense:events:*"
log = logging.getLogger("flowsense_api.hub")


@dataclass(slots=True)
class Item:
    cursor: int
    topic: str
    symbol: str
    json: str  # the serialized event object


@dataclass(eq=False)
class Client:
    queue: asyncio.Queue[str | None]
    subs: set[tuple[str, str]] = field(default_factory=set)  # (topic, symbol); "*" = any symbol
    lagged: bool = False
    sent_events: int = 0

    def wants(self, topic: str, symbol: str) -> bool:
        s = self.subs
        return (topic, symbol) in s or (topic, "*") in s


def _get(ev: Any, *names: str) -> Any:
    for n in names:
        if isinstance(ev, dict):
            if n in ev:
                return ev[n]
        elif hasattr(ev, n):
            return getattr(ev, n)
    return None


def _levels(px: Any, sz: Any) -> list[list[float]]:
    out = []
    for p, q in zip(px or [], sz or [], strict=False):
        if isinstance(p, int | float) and isinstance(q, int | float) and q == q and p == p and q > 0:
            out.append([p, int(q) if float(q).is_integer() else q])
    return out


def book_levels(data: dict[str, Any]) -> dict[str, Any]:
    """A book event's data -> ``{ts, seq, bids: [[px, size], ...], asks: [...]}`` (best first, empty levels
    dropped), from the worker's ``bid``/``bid_size``/``ask``/``ask_size`` lists, flat ``bid_px_k`` columns,
    or ``bids``/``asks`` pairs."""
    if "bids" in data or "asks" in data:
        return {**data, "bids": data.get("bids") or [], "asks": data.get("asks") or []}
    if "bid" in data or "ask" in data:
        rest = {k: v for k, v in data.items() if k not in ("bid", "bid_size", "ask", "ask_size")}
        return {**rest, "bids": _levels(data.get("bid"), data.get("bid_size")),
                "asks": _levels(data.get("ask"), data.get("ask_size"))}
    row = _book_from_row(data)
    return {**{k: v for k, v in data.items() if not k.startswith(("bid_", "ask_"))}, "bids": row["bids"],
            "asks": row["asks"]}


def normalize(ev: Any, fallback_cursor: int) -> dict[str, Any]:
    """Any event shape the worker emits (dict or object) -> ``{cursor, topic, symbol, ts, data}``."""
    cursor = _get(ev, "cursor", "id", "event_id", "seq")
    topic = _get(ev, "topic", "kind", "type")
    symbol = _get(ev, "symbol") or "*"
    ts = _get(ev, "ts", "time", "timestamp")
    data = _get(ev, "data", "payload")
    if isinstance(data, str | bytes):
        with contextlib.suppress(ValueError):
            data = json.loads(data)
    if data is None and isinstance(ev, dict):
        data = {k: v for k, v in ev.items() if k not in ("cursor", "id", "event_id", "topic", "symbol", "ts")}
    try:
        cursor = int(cursor)
    except (TypeError, ValueError):
        cursor = fallback_cursor
    topic = str(topic)
    if isinstance(data, dict):
        if topic == "book":
            data = book_levels(data)
        data = _iso_row(data)
    elif isinstance(data, list):  # rows (the worker's trades events): each row's time as ISO too
        data = [_iso_row(r) if isinstance(r, dict) else r for r in data]
    return {"cursor": cursor, "topic": topic, "symbol": str(symbol), "ts": iso_ts(ts), "data": jsonable(data)}


def _iso_row(data: dict[str, Any]) -> dict[str, Any]:
    """A numeric ``ts`` -> ISO-8601 (the exchange nanoseconds kept as ``ts_ns``)."""
    if isinstance(data.get("ts"), int | float) and not isinstance(data.get("ts"), bool):
        return {**data, "ts_ns": data["ts"] if data["ts"] > 1e15 else None, "ts": iso_ts(data["ts"])}
    return data


def iso_ts(t: Any) -> Any:
    """Seconds, ms or ns since the epoch -> ISO-8601 UTC (anything else unchanged)."""
    if isinstance(t, bool) or not isinstance(t, int | float):
        return jsonable(t)
    sec = t / 1e9 if t > 1e15 else t / 1e3 if t > 1e11 else t
    try:
        return dt.datetime.fromtimestamp(sec, dt.UTC).isoformat(timespec="microseconds")
    except (OverflowError, OSError, ValueError):
        return t


class EventHub:
    def __init__(self, worker: Any, *, mode: str = "local", redis_url: str | None = None, poll_s: float = 0.02,
                 ring_size: int = 20_000, client_queue: int = 256, trades_kept: int = 200) -> None:
        self.worker = worker  # flowsense_api.worker.WorkerView
        self.mode = mode
        self.redis_url = redis_url
        self.poll_s = poll_s
        self.ring: deque[Item] = deque(maxlen=ring_size)
        self.cursor = 0  # last cursor seen
        self.clients: set[Client] = set()
        self.client_queue = client_queue
        self.books: dict[str, dict[str, Any]] = {}
        self.trades: dict[str, deque[dict[str, Any]]] = {}
        self.trades_kept = trades_kept
        self.last: dict[tuple[str, str], dict[str, Any]] = {}  # latest event per (topic, symbol)
        self.events_in = 0
        self.started_at = time.time()
        self.source_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="flowsense-event-hub")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        for c in list(self.clients):
            with contextlib.suppress(asyncio.QueueFull):
                c.queue.put_nowait(None)

    async def _run(self) -> None:
        while True:
            try:
                if self.mode == "production" and self.redis_url:
                    await self._run_redis()
                else:
                    await self._run_local()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.source_error = f"{type(exc).__name__}: {str(exc)[:200]}"
                log.warning("event feed error (retrying in 1 s): %s", self.source_error)
                await asyncio.sleep(1.0)

    async def _run_local(self) -> None:
        first = True
        while True:
            store = None
            with contextlib.suppress(Exception):
                store = self.worker.store()
            if store is None or not hasattr(store, "events_since"):
                await asyncio.sleep(0.5)
                continue
            if first:  # the store's kept history fills the ring first (resume, latest book per symbol)
                first = False
                self.cursor = await asyncio.to_thread(_latest_cursor, store)
            events, new_cursor = await asyncio.to_thread(_events_since, store, self.cursor)
            self.source_error = None
            if events:
                self.ingest(events)
            if new_cursor is not None and new_cursor > self.cursor:
                self.cursor = new_cursor
            if not events:
                await asyncio.sleep(self.poll_s)

    async def _run_redis(self) -> None:
        import redis.asyncio as aioredis

        r = aioredis.from_url(self.redis_url)
        try:
            ps = r.pubsub()
            await ps.psubscribe(REDIS_PATTERN)
            self.source_error = None
            while True:
                msg = await ps.get_message(ignore_subscribe_messages=True, timeout=1.0)
                batch = []
                while msg is not None:
                    if msg.get("type") in ("pmessage", "message"):
                        try:
                            ev = json.loads(msg["data"])
                        except (ValueError, TypeError):
                            ev = None
                        if isinstance(ev, dict):
                            chan = msg.get("channel", b"")
                            chan = chan.decode() if isinstance(chan, bytes) else str(chan)
                            ev.setdefault("topic", chan.rsplit(":", 1)[-1])
                            batch.append(ev)
                    if len(batch) >= 1000:
                        break
                    msg = await ps.get_message(ignore_subscribe_messages=True, timeout=0)
                if batch:
                    self.ingest(batch)
        finally:
            with contextlib.suppress(Exception):
                await r.aclose()

    # ---- events in ------------------------------------------------------------------------------
    def ingest(self, events: Iterable[Any]) -> None:
        """Normalize, remember and fan out a batch of events (called on the event loop)."""
        items: list[Item] = []
        for ev in events:
            e = normalize(ev, self.cursor + 1)
            if e["cursor"] <= self.cursor and self.mode != "local":
                e["cursor"] = self.cursor + 1
            self.cursor = max(self.cursor, e["cursor"])
            self._remember(e)
            it = Item(e["cursor"], e["topic"], e["symbol"], json.dumps(e, separators=(",", ":"), default=str))
            self.ring.append(it)
            items.append(it)
        self.events_in += len(items)
        if items and self.clients:
            self._fan_out(items)

    def _remember(self, e: dict[str, Any]) -> None:
        topic, sym, data = e["topic"], e["symbol"], e["data"]
        self.last[(topic, sym)] = e
        if topic == "book" and isinstance(data, dict):
            self.books[sym] = {"ts": data.get("ts", e["ts"]), "cursor": e["cursor"], "bids": data["bids"],
                               "asks": data["asks"], "seq": data.get("seq")}
        elif topic == "trades":
            q = self.trades.setdefault(sym, deque(maxlen=self.trades_kept))
            rows = data if isinstance(data, list) else [data]
            for row in rows:
                q.appendleft({"ts": e["ts"], "cursor": e["cursor"], **(row if isinstance(row, dict) else {"value": row})})

    def _fan_out(self, items: list[Item]) -> None:
        for c in list(self.clients):
            mine = [it.json for it in items if c.wants(it.topic, it.symbol)]
            if mine:
                self._send(c, mine, items[-1].cursor)

    def _send(self, c: Client, jsons: list[str], cursor: int) -> None:
        frame = '{"type":"events","cursor":' + str(cursor) + ',"items":[' + ",".join(jsons) + "]}"
        try:
            c.queue.put_nowait(frame)
            c.sent_events += len(jsons)
        except asyncio.QueueFull:
            c.lagged = True
            self.clients.discard(c)
            with contextlib.suppress(asyncio.QueueEmpty):
                while True:
                    c.queue.get_nowait()
            c.queue.put_nowait(json.dumps({"type": "lagged", "cursor": cursor,
                                           "message": "client too slow: reconnect and resume from your last cursor"}))
            c.queue.put_nowait(None)

    # ---- clients --------------------------------------------------------------------------------
    def new_client(self) -> Client:
        return Client(queue=asyncio.Queue(maxsize=self.client_queue))

    async def subscribe(self, c: Client, subs: set[tuple[str, str]], cursor: int | None) -> None:
        """Add subscriptions; with ``cursor``, first replay what came after it, then go live."""
        new = subs - c.subs
        c.subs |= subs
        if cursor is not None:
            await self._replay(c, new or subs, cursor)
        else:
            self._snapshot(c, new)
        self.clients.add(c)

    def unsubscribe(self, c: Client, subs: set[tuple[str, str]]) -> None:
        c.subs -= subs

    def drop(self, c: Client) -> None:
        self.clients.discard(c)

    def _snapshot(self, c: Client, subs: set[tuple[str, str]]) -> None:
        """The latest event of each newly subscribed (topic, symbol), so a page shows something at once."""
        snap = [e for (topic, sym), e in self.last.items() if (topic, sym) in subs or (topic, "*") in subs]
        if snap:
            snap.sort(key=lambda e: e["cursor"])
            frame = json.dumps({"type": "snapshot", "cursor": self.cursor, "items": snap}, default=str)
            with contextlib.suppress(asyncio.QueueFull):
                c.queue.put_nowait(frame)

    async def _replay(self, c: Client, subs: set[tuple[str, str]], cursor: int) -> None:
        def wanted(topic: str, sym: str) -> bool:
            return (topic, sym) in subs or (topic, "*") in subs

        oldest = self.ring[0].cursor if self.ring else self.cursor + 1
        out: list[str] = []
        last = cursor
        if cursor + 1 < oldest:
            store = None
            with contextlib.suppress(Exception):
                store = self.worker.store()
            got: list[dict[str, Any]] = []
            if self.mode == "local" and store is not None and hasattr(store, "events_since"):
                events, _ = await asyncio.to_thread(_events_since, store, cursor, 20_000)
                got = [normalize(e, 0) for e in events]
            if not got or got[0]["cursor"] > cursor + 1:
                first = got[0]["cursor"] if got else oldest
                with contextlib.suppress(asyncio.QueueFull):
                    c.queue.put_nowait(json.dumps({"type": "gap", "from": cursor, "to": first - 1,
                                                   "message": "events between these cursors are no longer kept"}))
            for e in got:
                if e["cursor"] < oldest and wanted(e["topic"], e["symbol"]):
                    out.append(json.dumps(e, separators=(",", ":"), default=str))
                last = max(last, e["cursor"])
        for it in list(self.ring):
            if it.cursor > cursor and wanted(it.topic, it.symbol):
                out.append(it.json)
        for i in range(0, len(out), 500):
            chunk = out[i:i + 500]
            frame = ('{"type":"events","cursor":' + str(max(last, self.cursor)) + ',"replay":true,"items":['
                     + ",".join(chunk) + "]}")
            try:
                c.queue.put_nowait(frame)
            except asyncio.QueueFull:
                await c.queue.put(frame)

    def stats(self) -> dict[str, Any]:
        return {"mode": self.mode, "cursor": self.cursor, "clients": len(self.clients), "events_in": self.events_in,
                "ring": len(self.ring), "source_error": self.source_error}


def _latest_cursor(store: Any) -> int:
    fn = getattr(store, "latest_cursor", None) or getattr(store, "last_cursor", None)
    if callable(fn):
        with contextlib.suppress(Exception):
            return int(fn() or 0)
    return 0


def _events_since(store: Any, cursor: int, limit: int = 5000) -> tuple[list[Any], int | None]:
    try:
        got = store.events_since(cursor, limit=limit)
    except TypeError:
        got = store.events_since(cursor)
    if isinstance(got, tuple) and len(got) == 2 and not isinstance(got[0], dict | str):
        events, new_cursor = got
        return list(events), (int(new_cursor) if new_cursor is not None else None)
    events = list(got)
    if events:
        last = normalize(events[-1], cursor)
        return events, last["cursor"]
    return events, None
