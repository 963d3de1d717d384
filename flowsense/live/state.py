"""The live worker's durable state: orders, fills, positions, PnL, trading state, stream cursor, events.

One store per worker (``--state DIR``): SQLite at ``DIR/state.db`` by default (WAL, so the API can read
while the worker writes), PostgreSQL when given a ``postgresql://`` DSN (production profile,
``FLOWSENSE_STATE_DSN``). The worker writes **ahead of acting**: an order row (with its client order id)
is committed before the order goes to the broker, and a tick's effects (fills, position, the stream id it
came from) are committed in one transaction before the tick is acknowledged on the stream.

Read side (what the API uses; every method returns plain JSON-able dicts/lists):

* :meth:`StateStore.trading_state` - ``{"state": ACTIVE|REDUCING|HALTED, "reason", "since", ...}``
* :meth:`StateStore.positions`, :meth:`StateStore.open_orders`, :meth:`StateStore.orders`,
  :meth:`StateStore.fills` (``limit``, ``offset``; newest first), :meth:`StateStore.pnl`,
  :meth:`StateStore.equity_curve`, :meth:`StateStore.model_version`, :meth:`StateStore.status`
* event feed :meth:`StateStore.events_since` ``(cursor) -> (events, next_cursor)``: topics ``book``,
  ``trades``, ``signals``, ``fills``, ``pnl``, ``state``, each event ``{"id", "ts", "topic", "symbol",
  "data"}``; :meth:`StateStore.recent_events` ``(topic, symbol, limit, offset)``, newest first. The
  worker's ``signals`` are its decisions (kind ``order``: prediction, intended order, risk decision,
  tick-to-decision latency; kind ``tick``: the last tick's prediction with the rolling latency p50/p99;
  kind ``model_swap``), its ``trades`` a list of market trade rows. In production the worker also publishes each event on the Redis pub/sub channel
  ``flowsense:events:<topic>`` (:data:`EVENT_CHANNEL`), with the same JSON.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from flowsense.errors import FlowSenseError

TOPICS = ("book", "trades", "signals", "fills", "pnl", "state")
EVENT_CHANNEL = "flowsense:events:{topic}"
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
OPEN_STATUSES = ("new", "submitted", "acked", "partially_filled")
SCHEMA_VERSION = 1


class StateError(FlowSenseError):
    """The state store cannot be opened or is inconsistent."""


ORDER_COLUMNS = (
    "client_order_id", "seq", "symbol", "side", "type", "price", "size", "status", "filled", "avg_price",
    "fees", "ts_submit", "ts_done", "reason", "strategy", "model_version", "broker_order_id", "tick_seq",
    "wall_submit",
)
FILL_COLUMNS = (
    "fill_id", "client_order_id", "symbol", "ts", "side", "price", "size", "fee", "liquidity", "slippage",
    "book_price", "tick_seq", "model_version",
)
POSITION_COLUMNS = ("symbol", "position", "avg_price", "cash", "realized", "fees", "mark", "equity", "updated")


def _schema(pg: bool) -> list[str]:
    auto = "BIGSERIAL PRIMARY KEY" if pg else "INTEGER PRIMARY KEY AUTOINCREMENT"
    real = "DOUBLE PRECISION" if pg else "REAL"
    big = "BIGINT" if pg else "INTEGER"
    return [
        "CREATE TABLE IF NOT EXISTS worker_meta (key TEXT PRIMARY KEY, value TEXT)",
        f"""CREATE TABLE IF NOT EXISTS worker_orders (
            client_order_id TEXT PRIMARY KEY, seq {big} NOT NULL, symbol TEXT NOT NULL, side {big} NOT NULL,
            type TEXT NOT NULL, price {real}, size {big} NOT NULL, status TEXT NOT NULL, filled {big} NOT NULL,
            avg_price {real}, fees {real} NOT NULL, ts_submit {big}, ts_done {big}, reason TEXT,
            strategy TEXT, model_version TEXT, broker_order_id TEXT, tick_seq {big}, wall_submit {real})""",
        "CREATE INDEX IF NOT EXISTS worker_orders_status ON worker_orders (status)",
        f"""CREATE TABLE IF NOT EXISTS worker_fills (
            fill_id TEXT PRIMARY KEY, client_order_id TEXT NOT NULL, symbol TEXT NOT NULL, ts {big} NOT NULL,
            side {big} NOT NULL, price {real} NOT NULL, size {big} NOT NULL, fee {real} NOT NULL,
            liquidity TEXT, slippage {real}, book_price {real}, tick_seq {big}, model_version TEXT)""",
        f"""CREATE TABLE IF NOT EXISTS worker_positions (
            symbol TEXT PRIMARY KEY, position {big} NOT NULL, avg_price {real} NOT NULL, cash {real} NOT NULL,
            realized {real} NOT NULL, fees {real} NOT NULL, mark {real}, equity {real}, updated {real})""",
        f"""CREATE TABLE IF NOT EXISTS worker_equity (
            id {auto}, ts {big} NOT NULL, symbol TEXT NOT NULL, equity {real} NOT NULL, cash {real},
            position {big}, mark {real}, peak {real}, drawdown {real})""",
        f"""CREATE TABLE IF NOT EXISTS worker_events (
            id {auto}, ts {real} NOT NULL, topic TEXT NOT NULL, symbol TEXT, data TEXT NOT NULL)""",
    ]


def _jsonable(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    return v


class StateStore:
    """Durable worker state in SQLite (default) or PostgreSQL. See the module docstring.

    ``location``: a folder (the SQLite file is ``state.db`` in it), a ``*.db`` file path, or a
    ``postgresql://`` DSN. Thread-safe for one writer and any number of readers (each thread its own
    connection on SQLite)."""

    def __init__(self, location: str | Path, *, readonly: bool = False, keep_events: int = 20_000,
                 fsync: bool = False) -> None:
        loc = str(location)
        self.pg = loc.startswith(("postgresql://", "postgres://"))
        self.keep_events = keep_events
        self.readonly = readonly
        self.fsync = fsync
        self._local = threading.local()
        self._n_events = 0
        if self.pg:
            self.location = loc
        else:
            p = Path(loc)
            if p.suffix != ".db":
                p = p / "state.db"
            if readonly and not p.exists():
                raise StateError(f"{p}: no worker state here (run `flowsense worker run --state {p.parent}` first)")
            p.parent.mkdir(parents=True, exist_ok=True)
            self.location = str(p)
        if not readonly:
            with self.transaction() as cur:
                for stmt in _schema(self.pg):
                    cur.execute(stmt)
            if self.get_meta("schema_version") is None:
                with self.transaction():
                    self.set_meta("schema_version", str(SCHEMA_VERSION))
                    self.set_meta("trading_state", "ACTIVE")
                    self.set_meta("trading_state_since", str(time.time()))

    # ------------------------------------------------------------------------------------ plumbing

    @classmethod
    def default_location(cls, settings: Any | None = None) -> str:
        """``Settings.worker_state``: ``$FLOWSENSE_STATE_DSN`` when set (production), else
        ``$FLOWSENSE_HOME/worker``."""
        if settings is None:
            from flowsense.config import Settings

            settings = Settings.from_env()
        return settings.worker_state

    def _conn(self) -> Any:
        c = getattr(self._local, "conn", None)
        if c is None:
            if self.pg:
                import psycopg2

                try:
                    c = psycopg2.connect(self.location)
                except psycopg2.Error as exc:
                    raise StateError(f"{self.location}: cannot connect to PostgreSQL: {exc}".strip()) from None
            else:
                uri = f"file:{self.location}?mode=ro" if self.readonly else f"file:{self.location}"
                c = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=30)
                c.execute("PRAGMA busy_timeout=30000")
                if not self.readonly:
                    c.execute("PRAGMA journal_mode=WAL")
                    # WAL + NORMAL: a committed transaction survives a killed process (SIGKILL); only an
                    # OS crash / power loss can lose the last commits (``fsync=True`` for FULL).
                    c.execute(f"PRAGMA synchronous={'FULL' if self.fsync else 'NORMAL'}")
            self._local.conn = c
            self._local.depth = 0
        return c

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.pg else sql

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """One atomic write. Nested calls join the outer transaction."""
        c = self._conn()
        if self._local.depth:
            self._local.depth += 1
            try:
                yield _Cursor(self, c.cursor())
            finally:
                self._local.depth -= 1
            return
        self._local.depth = 1
        cur = c.cursor()
        try:
            if not self.pg:
                cur.execute("BEGIN IMMEDIATE")
            yield _Cursor(self, cur)
            c.commit() if self.pg else cur.execute("COMMIT")
        except BaseException:
            if self.pg:
                c.rollback()
            else:
                with suppress(sqlite3.Error):
                    cur.execute("ROLLBACK")
            raise
        finally:
            self._local.depth = 0

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        c = self._conn()
        cur = c.cursor()
        cur.execute(self._sql(sql), tuple(params))
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, (_jsonable(v) for v in r), strict=True)) for r in cur.fetchall()]
        if self.pg:
            c.commit()  # end the read transaction (no idle-in-transaction)
        return rows

    def close(self) -> None:
        c = getattr(self._local, "conn", None)
        if c is not None:
            c.close()
            self._local.conn = None

    # ------------------------------------------------------------------------------------ meta

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM worker_meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else default

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT INTO worker_meta (key, value) VALUES (?, ?) "
                        "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def set_metas(self, items: dict[str, Any]) -> None:
        with self.transaction() as cur:
            for k, v in items.items():
                cur.execute("INSERT INTO worker_meta (key, value) VALUES (?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                            (k, None if v is None else str(v)))

    def metas(self) -> dict[str, str]:
        return {r["key"]: r["value"] for r in self._query("SELECT key, value FROM worker_meta")}

    # ------------------------------------------------------------------------------------ writes

    def upsert_orders(self, rows: Iterable[dict[str, Any]]) -> None:
        cols = ORDER_COLUMNS
        sql = (f"INSERT INTO worker_orders ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               f"ON CONFLICT (client_order_id) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in cols if c not in ("client_order_id", "seq")))
        with self.transaction() as cur:
            for r in rows:
                cur.execute(sql, tuple(r.get(c) for c in cols))

    def insert_order(self, row: dict[str, Any]) -> None:
        """Insert a new order; a client order id that exists already raises :class:`StateError` (the
        store's primary key is what guarantees no id is ever used twice)."""
        cols = ORDER_COLUMNS
        sql = f"INSERT INTO worker_orders ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
        try:
            with self.transaction() as cur:
                cur.execute(sql, tuple(row.get(c) for c in cols))
        except Exception as exc:  # sqlite3.IntegrityError / psycopg2.IntegrityError
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower() or "primary" in str(exc).lower():
                raise StateError(f"client order id {row.get('client_order_id')!r} exists already") from None
            raise

    def add_fills(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert fills; a fill id seen before is ignored (redelivered execution). Returns rows inserted."""
        cols = FILL_COLUMNS
        sql = (f"INSERT INTO worker_fills ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               "ON CONFLICT (fill_id) DO NOTHING")
        n = 0
        with self.transaction() as cur:
            for r in rows:
                cur.execute(sql, tuple(r.get(c) for c in cols))
                n += max(cur.rowcount, 0)
        return n

    def set_position(self, row: dict[str, Any]) -> None:
        cols = POSITION_COLUMNS
        sql = (f"INSERT INTO worker_positions ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               "ON CONFLICT (symbol) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in cols[1:]))
        with self.transaction() as cur:
            cur.execute(sql, tuple(row.get(c) for c in cols))

    def add_equity(self, ts: int, symbol: str, equity: float, cash: float, position: int, mark: float,
                   peak: float, drawdown: float) -> None:
        with self.transaction() as cur:
            cur.execute("INSERT INTO worker_equity (ts, symbol, equity, cash, position, mark, peak, drawdown) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (ts, symbol, equity, cash, position, mark, peak, drawdown))

    def publish(self, topic: str, symbol: str | None, data: dict[str, Any] | list[dict[str, Any]]) -> None:
        """Append one event to the feed (pruned to the newest ``keep_events``); ``data`` is an object, or a
        list of rows (the worker's ``trades`` events)."""
        if topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r}; topics: {', '.join(TOPICS)}")
        with self.transaction() as cur:
            cur.execute("INSERT INTO worker_events (ts, topic, symbol, data) VALUES (?, ?, ?, ?)",
                        (time.time(), topic, symbol, json.dumps(data, default=_jsonable)))
            self._n_events += 1
            if self._n_events % 1000 == 0:
                cur.execute("DELETE FROM worker_events WHERE id < (SELECT MAX(id) FROM worker_events) - ?",
                            (self.keep_events,))

    def set_trading_state(self, state: str, reason: str = "") -> None:
        if state not in TRADING_STATES:
            raise ValueError(f"trading state must be one of {TRADING_STATES}, got {state!r}")
        with self.transaction():
            self.set_metas({"trading_state": state, "trading_state_reason": reason,
                            "trading_state_since": time.time()})
            self.publish("state", None, {"state": state, "reason": reason})

    # ------------------------------------------------------------------------------------ reads (API)

    def trading_state(self) -> dict[str, Any]:
        m = self.metas()
        since = m.get("trading_state_since")
        return {
            "state": m.get("trading_state", "ACTIVE"),
            "reason": m.get("trading_state_reason") or "",
            "since": float(since) if since else None,
            "peak_equity": float(m["peak_equity"]) if m.get("peak_equity") else None,
            "drawdown": float(m["drawdown"]) if m.get("drawdown") else 0.0,
            "alert": m.get("drawdown_alert") == "1",
        }

    def positions(self) -> list[dict[str, Any]]:
        return self._query(f"SELECT {', '.join(POSITION_COLUMNS)} FROM worker_positions ORDER BY symbol")

    def orders(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        return self._query(f"SELECT {', '.join(ORDER_COLUMNS)} FROM worker_orders ORDER BY seq DESC "
                           "LIMIT ? OFFSET ?", (int(limit), int(offset)))

    def all_orders(self) -> list[dict[str, Any]]:
        return self._query(f"SELECT {', '.join(ORDER_COLUMNS)} FROM worker_orders ORDER BY seq")

    def open_orders(self) -> list[dict[str, Any]]:
        marks = ", ".join("?" * len(OPEN_STATUSES))
        return self._query(f"SELECT {', '.join(ORDER_COLUMNS)} FROM worker_orders WHERE status IN ({marks}) "
                           "ORDER BY seq", OPEN_STATUSES)

    def fills(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """Fills, newest first."""
        return self._query(f"SELECT {', '.join(FILL_COLUMNS)} FROM worker_fills ORDER BY ts DESC, fill_id DESC "
                           "LIMIT ? OFFSET ?", (int(limit), int(offset)))

    def all_fills(self) -> list[dict[str, Any]]:
        return self._query(f"SELECT {', '.join(FILL_COLUMNS)} FROM worker_fills ORDER BY ts, fill_id")

    def pnl(self) -> dict[str, Any]:
        """Totals over symbols: realized, unrealized (at the last mark), fees, net (= equity - initial cash)."""
        pos = self.positions()
        initial = float(self.get_meta("initial_cash", "0") or 0)
        realized = sum(p["realized"] for p in pos)
        fees = sum(p["fees"] for p in pos)
        equity = sum((p["equity"] if p["equity"] is not None else p["cash"]) for p in pos)
        net = equity - initial if pos else 0.0
        unrealized = net - realized + fees if pos else 0.0
        return {"realized": realized, "unrealized": unrealized, "fees": fees, "net": net,
                "equity": equity if pos else initial, "initial_cash": initial,
                "by_symbol": {p["symbol"]: {"position": p["position"], "realized": p["realized"],
                                            "equity": p["equity"], "net": (p["equity"] or p["cash"]) - initial}
                              for p in pos}}

    def equity_curve(self, symbol: str | None = None, limit: int = 5000) -> list[dict[str, Any]]:
        """Equity samples (oldest first, at most ``limit``, the newest ones)."""
        where, params = ("WHERE symbol = ?", [symbol]) if symbol else ("", [])
        rows = self._query(f"SELECT ts, symbol, equity, cash, position, mark, peak, drawdown FROM worker_equity "
                           f"{where} ORDER BY id DESC LIMIT ?", [*params, int(limit)])
        return rows[::-1]

    def model_version(self) -> str | None:
        return self.get_meta("model_version")

    def events_since(self, cursor: int = 0, limit: int = 1000,
                     topics: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], int]:
        """Events with id > ``cursor`` (oldest first) and the cursor to pass next time."""
        params: list[Any] = [int(cursor)]
        where = "id > ?"
        if topics:
            where += f" AND topic IN ({', '.join('?' * len(topics))})"
            params += list(topics)
        rows = self._query(f"SELECT id, ts, topic, symbol, data FROM worker_events WHERE {where} "
                           "ORDER BY id LIMIT ?", [*params, int(limit)])
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows, (rows[-1]["id"] if rows else int(cursor))

    def recent_events(self, topic: str, symbol: str | None = None, limit: int = 100,
                      offset: int = 0) -> list[dict[str, Any]]:
        """Kept events of one topic (and symbol), newest first: ``{"id", "ts", "topic", "symbol", "data"}``."""
        if topic not in TOPICS:
            raise ValueError(f"unknown topic {topic!r}; topics: {', '.join(TOPICS)}")
        where, params = "topic = ?", [topic]
        if symbol is not None:
            where += " AND symbol = ?"
            params.append(symbol)
        rows = self._query(f"SELECT id, ts, topic, symbol, data FROM worker_events WHERE {where} "
                           "ORDER BY id DESC LIMIT ? OFFSET ?", [*params, int(limit), int(offset)])
        for r in rows:
            r["data"] = json.loads(r["data"])
        return rows

    def status(self) -> dict[str, Any]:
        """Everything ``flowsense worker status --json`` prints."""
        m = self.metas()
        orders = self._query("SELECT COUNT(*) AS n, COUNT(DISTINCT client_order_id) AS u FROM worker_orders")[0]
        nf = self._query("SELECT COUNT(*) AS n FROM worker_fills")[0]["n"]
        pos = self.positions()
        hb = float(m["heartbeat"]) if m.get("heartbeat") else None
        return {
            "state_location": self.location if not self.pg else "postgresql",
            "trading_state": self.trading_state(),
            "running": m.get("running") == "1" and hb is not None and time.time() - hb < 10,
            "pid": int(m["pid"]) if m.get("pid") else None,
            "heartbeat": hb,
            "symbol": m.get("symbol"),
            "strategy": m.get("strategy"),
            "source": m.get("source"),
            "broker": m.get("broker"),
            "last_stream_id": m.get("last_stream_id"),
            "last_tick_seq": int(m["last_tick_seq"]) if m.get("last_tick_seq") else None,
            "ticks": int(m.get("ticks", "0") or 0),
            "skipped": json.loads(m["skipped"]) if m.get("skipped") else {},
            "orders": int(orders["n"]),
            "unique_client_order_ids": int(orders["u"]),
            "fills": int(nf),
            "position": sum(int(p["position"]) for p in pos),
            "positions": {p["symbol"]: int(p["position"]) for p in pos},
            "pnl": self.pnl()["net"],
            "model_version": m.get("model_version"),
            "restarts": int(m.get("restarts", "0") or 0),
        }


class _Cursor:
    """A DB-API cursor that takes ``?`` placeholders on both SQLite and PostgreSQL."""

    def __init__(self, store: StateStore, cur: Any) -> None:
        self._s = store
        self._c = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._c.execute(self._s._sql(sql), tuple(params))

    @property
    def rowcount(self) -> int:
        return self._c.rowcount

    def fetchall(self) -> list[Any]:
        return self._c.fetchall()
