"""The worker's state as the API sees it: :class:`flowsense.live.state.StateStore` read through a short cache.

The API only reads the store (and writes halt/resume requests through the store's control methods); it
never holds a lock the worker waits on, so the API restarting or a dashboard closing cannot slow or stop
the worker. When no worker has run yet (no state database), every method answers "no worker" instead of
failing.

Reads are cached for ``ttl_s`` (default 0.1 s): a dashboard or a load generator polling at 1,000 req/s
costs the store ten reads a second per view, and an answer is at most 0.1 s older than the store.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

from flowsense.config import Settings
from flowsense_api.lakedata import jsonable


class WorkerUnavailable(RuntimeError):
    """No worker state store to read (no worker has run under this FLOWSENSE_HOME)."""


def open_state_store(settings: Settings, *, readonly: bool = True) -> Any | None:
    """The worker's StateStore (``Settings.worker_state``), or None when no worker has written one yet."""
    try:
        from flowsense.live.state import StateStore
    except ImportError:
        return None
    try:
        return StateStore(settings.worker_state, readonly=readonly)
    except Exception:  # a missing or unreadable store means "no worker yet"
        return None


class WorkerView:
    def __init__(self, settings: Settings, ttl_s: float = 0.1,
                 store_factory: Callable[[Settings], Any | None] = open_state_store) -> None:
        self.settings = settings
        self.ttl_s = ttl_s
        self._factory = store_factory
        self._store: Any | None = None
        self._opened_at = 0.0
        self._cache: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    # ---- the store ------------------------------------------------------------------------------
    def store(self) -> Any:
        if self._store is None:
            now = time.monotonic()
            if now - self._opened_at > 1.0:  # retry opening at most once a second
                self._opened_at = now
                with self._lock:
                    if self._store is None:
                        self._store = self._factory(self.settings)
        if self._store is None:
            raise WorkerUnavailable("no worker state: no worker has run under this FLOWSENSE_HOME yet "
                                    "(start one with `flowsense worker`)")
        return self._store

    @property
    def available(self) -> bool:
        try:
            self.store()
        except WorkerUnavailable:
            return False
        return True

    def cached(self, name: str, load: Callable[[Any], Any]) -> Any:
        now = time.monotonic()
        hit = self._cache.get(name)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        val = jsonable(load(self.store()))
        self._cache[name] = (now, val)
        return val

    def last(self, name: str) -> Any | None:
        """The cached value however old (None when never read)."""
        hit = self._cache.get(name)
        return hit[1] if hit is not None else None

    def peek(self, name: str) -> Any | None:
        """The cached value when still fresh (no I/O): lets async endpoints skip the thread pool."""
        hit = self._cache.get(name)
        if hit is not None and time.monotonic() - hit[0] < self.ttl_s:
            return hit[1]
        return None

    # ---- reads ------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        def load(s: Any) -> dict[str, Any]:
            pnl = _call(s, "pnl")
            return {
                "trading_state": _call(s, "trading_state"),
                "model_version": _call(s, "model_version"),
                "pnl": pnl,
                "positions": _call(s, "positions"),
                "open_orders": _call(s, "open_orders"),
                "status": _call(s, "status"),
            }
        return self.cached("summary", load)

    def positions(self) -> Any:
        return self.cached("positions", lambda s: _call(s, "positions"))

    def open_orders(self) -> Any:
        return self.cached("open_orders", lambda s: _call(s, "open_orders"))

    def fills(self, limit: int, offset: int) -> Any:
        return self.cached(f"fills:{limit}:{offset}", lambda s: s.fills(limit=limit, offset=offset))

    def orders(self, limit: int, offset: int) -> Any:
        return self.cached(f"orders:{limit}:{offset}", lambda s: s.orders(limit=limit, offset=offset))

    def signals(self, symbol: str, limit: int, offset: int) -> Any:
        """The worker's decision events for ``symbol``, newest first, each ``{"cursor", "published",
        **data}`` (times ISO-8601, as on the WebSocket)."""
        def load(s: Any) -> list[dict[str, Any]]:
            from flowsense_api.hub import normalize

            out = []
            for row in s.recent_events("signals", symbol, limit=limit, offset=offset):
                e = normalize(row, 0)
                data = e["data"] if isinstance(e["data"], dict) else {"value": e["data"]}
                out.append({"cursor": e["cursor"], "published": e["ts"], **data})
            return out
        return self.cached(f"signals:{symbol}:{limit}:{offset}", load)

    def status(self) -> Any:
        return self.cached("status", lambda s: _call(s, "status"))

    def pnl(self) -> Any:
        return self.cached("pnl", lambda s: _call(s, "pnl"))

    def equity_curve(self) -> Any:
        return self.cached("equity", lambda s: _call(s, "equity_curve"))

    def model_version(self) -> Any:
        return self.cached("model_version", lambda s: _call(s, "model_version"))

    def trading_state(self) -> Any:
        return self.cached("trading_state", lambda s: _call(s, "trading_state"))

    def invalidate(self) -> None:
        self._cache.clear()

    # ---- control ----------------------------------------------------------------------------------
    def control(self, action: str, reason: str, actor: str) -> Any:
        """Halt or resume the worker: the operator's trading state goes into the store, which the running
        worker polls and applies at its next decision (as ``flowsense worker resume`` does). A halt cancels
        the worker's open orders and lets only cancels through; it stays until a resume, across restarts."""
        self.store()  # 503 when no worker has run here
        target = {"halt": "HALTED", "resume": "ACTIVE", "reduce": "REDUCING"}.get(action)
        if target is None:
            raise ValueError(f"unknown control action {action!r}")
        writer = self._factory(self.settings, readonly=False) if self._factory is open_state_store else self.store()
        if writer is None:
            raise WorkerUnavailable("cannot open the worker state store for writing")
        before = writer.trading_state()
        writer.set_trading_state(target, "operator")  # the worker applies states whose reason is "operator"
        after = writer.trading_state()
        if writer is not self._store:
            with contextlib.suppress(Exception):
                writer.close()
        self.invalidate()
        return {"before": before.get("state"), "after": after.get("state"), "actor": actor, "reason": reason}


def _call(store: Any, name: str) -> Any:
    fn = getattr(store, name, None)
    return fn() if callable(fn) else None
