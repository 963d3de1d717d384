"""Interactive Brokers broker for the worker, through ``ib_async`` (the maintained ``ib_insync`` fork).

* Market and limit orders; the worker's client order id travels in ``Order.orderRef`` (IB's own
  ``orderId``/``permId`` are 0 until submitted and can collide across client sessions), so every order
  and execution is matched back to the store by that reference.
* At start (and after every reconnect) it syncs with the gateway: positions (``positions()``), open
  orders (``openTrades()``) and executions (``fills()`` / ``reqExecutions()``); executions are
  deduplicated by ``execId``, so a fill seen before a disconnect and again after it counts once, and a
  fill that happened while disconnected is picked up by the sync.
* ``submit`` is idempotent on the client order id: an id the gateway already knows is never sent again.
  While disconnected, new orders wait in a queue and go out (once) after the reconnect.
* Reconnects with exponential back-off (``backoff_s`` doubling up to ``backoff_max_s``).
* Unlike the paper broker, IB is not a deterministic function of the ticks: after a worker restart the
  strategy is warmed up on the stream with its orders suppressed (they never reach IB), and the real
  state (position, open orders, fills) comes from the gateway sync (:meth:`IBBroker.reconcile`).

No IB gateway can run on the machines these tests run on, and none ships as a package: the tests drive
this class with a fake at the ``IB`` object boundary (``tests/live/ib_fake.py``) that behaves like the
gateway (acks, partial fills, rejects, disconnects).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from flowsense.errors import FlowSenseError
from flowsense.trading import (
    Fill,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    RejectReason,
    ReportKind,
)

IB_DONE = {"Filled", "Cancelled", "ApiCancelled", "Inactive"}


class IBError(FlowSenseError):
    """The IB gateway is unreachable or refused something."""


def _status(ib_status: str, filled: float, size: int) -> OrderStatus:
    if ib_status == "Filled" or (size and filled >= size):
        return OrderStatus.FILLED
    if ib_status in ("Cancelled", "ApiCancelled"):
        return OrderStatus.CANCELLED
    if ib_status == "Inactive":
        return OrderStatus.REJECTED
    if filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    if ib_status in ("Submitted", "PreSubmitted"):
        return OrderStatus.ACKED
    return OrderStatus.NEW


class IBBroker:
    name = "ib"
    holdback = False  # real latency, nothing simulated: decide on each tick as it arrives
    deterministic = False

    def __init__(self, ib: Any, *, symbol: str, initial_cash: float = 1_000_000.0, host: str = "127.0.0.1",
                 port: int = 4002, client_id: int = 17, exchange: str = "SMART", currency: str = "USD",
                 backoff_s: float = 0.5, backoff_max_s: float = 30.0, max_attempts: int = 20,
                 sleep: Callable[[float], None] | None = None) -> None:
        from ib_async import Stock

        self.ib = ib
        self.symbol = symbol
        self.initial_cash = initial_cash
        self.host, self.port, self.client_id = host, port, client_id
        self.backoff_s, self.backoff_max_s, self.max_attempts = backoff_s, backoff_max_s, max_attempts
        self._sleep = sleep or time.sleep
        self.contract = Stock(symbol, exchange, currency)
        self.orders: dict[int, dict[str, Any]] = {}
        self.by_ref: dict[str, int] = {}
        self.exec_seen: set[str] = set()
        self._reports: list[tuple[OrderReport, Fill | None]] = []
        self._new_fills: list[dict[str, Any]] = []
        self._changed: set[int] = set()
        self._queued: list[int] = []
        self._ts = 0
        self._mark = math.nan
        self.position = 0
        self.cash = float(initial_cash)
        self.realized = 0.0
        self.fees = 0.0
        self.avg = 0.0
        self.n_fills = 0
        self.reconnects = 0
        self.recovering = False
        self._phantom = 0
        self.session = ""
        ib.orderStatusEvent += self._on_status
        ib.execDetailsEvent += self._on_exec
        ib.commissionReportEvent += self._on_commission
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnect

    # ----------------------------------------------------------------------------- connection

    @classmethod
    def connect(cls, *, host: str = "127.0.0.1", port: int = 4002, client_id: int = 17, symbol: str,
                initial_cash: float = 1_000_000.0, ib: Any = None, **kw: Any) -> IBBroker:
        if ib is None:
            from ib_async import IB

            ib = IB()
        b = cls(ib, symbol=symbol, initial_cash=initial_cash, host=host, port=port, client_id=client_id, **kw)
        b._connect_with_backoff()
        return b

    def _connect_with_backoff(self) -> None:
        delay = self.backoff_s
        last: Exception | None = None
        for _ in range(self.max_attempts):
            try:
                self.ib.connect(self.host, self.port, clientId=self.client_id, timeout=10)
                self.sync()
                return
            except (ConnectionError, OSError, TimeoutError) as exc:
                last = exc
                self._sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
        raise IBError(f"IB gateway {self.host}:{self.port}: no connection after {self.max_attempts} attempts ({last})")

    def _on_disconnect(self) -> None:
        self.reconnects += 1
        self._connect_with_backoff()
        for oid in self._queued:  # orders made while disconnected go out once, now
            self._send(oid)
        self._queued.clear()

    # ----------------------------------------------------------------------------- sync / reconcile

    def sync(self) -> dict[str, Any]:
        """Open orders and executions from the gateway, matched by orderRef; missed fills applied once."""
        self.ib.reqExecutions()
        n_new = 0
        for tr in self.ib.openTrades():
            ref = tr.order.orderRef
            if ref in self.by_ref:
                self.orders[self.by_ref[ref]]["trade"] = tr
                self._on_status(tr)
        for f in self.ib.fills():
            if f.execution.orderRef in self.by_ref and f.execution.execId not in self.exec_seen:
                self._apply_exec(self.by_ref[f.execution.orderRef], f)
                n_new += 1
        pos = sum(int(p.position) for p in self.ib.positions() if p.contract.symbol == self.symbol)
        return {"position_broker": pos, "position_worker": self.position, "fills_recovered": n_new}

    def reconcile(self, store: Any, session: str) -> dict[str, Any]:
        """After a restart: adopt the store's orders (by client order id) and the gateway's state."""
        self.recovering = False
        self.session = session
        for o in store.all_orders():
            cid = o["client_order_id"]
            if not cid.startswith(session) or cid in self.by_ref:
                continue
            oid = int(cid.rsplit("-", 1)[1])
            self.orders[oid] = {"cid": cid, "side": o["side"], "type": o["type"], "price": o["price"],
                                "size": o["size"], "status": OrderStatus.NEW if o["status"] == "new" else
                                _STATUS_BY_NAME.get(o["status"], OrderStatus.NEW), "filled": 0, "leaves": o["size"],
                                "notional": 0.0, "fees": 0.0, "trade": None, "ts_submit": o["ts_submit"],
                                "ts_done": None, "sent": True}
            self.by_ref[cid] = oid
        seen = {f["fill_id"] for f in store.all_fills() if f["client_order_id"].startswith(session)}
        for f in store.all_fills():  # rebuild the account from the fills the store has
            if f["client_order_id"] in self.by_ref:
                self.exec_seen.add(f["fill_id"])
                self._account_fill(self.by_ref[f["client_order_id"]], int(f["side"]), int(f["size"]),
                                   float(f["price"]), float(f["fee"]), record=False)
        report = self.sync()
        # an order written ahead but unknown to the gateway was never sent: send it now (once)
        known = {tr.order.orderRef for tr in self.ib.trades()}
        resent = 0
        for cid, oid in self.by_ref.items():
            o = self.orders[oid]
            if o["status"] == OrderStatus.NEW and cid not in known:
                self._send(oid)
                resent += 1
        report.update(resent=resent, fills_in_store=len(seen))
        return report

    # ----------------------------------------------------------------------------- events

    def _on_status(self, trade: Any) -> None:
        ref = trade.order.orderRef
        oid = self.by_ref.get(ref)
        if oid is None:
            return
        o = self.orders[oid]
        st = _status(trade.orderStatus.status, o["filled"], o["size"])
        if st in (OrderStatus.FILLED, OrderStatus.PARTIALLY_FILLED) and o["filled"] < o["size"] and \
                trade.orderStatus.status != "Filled":
            st = OrderStatus.PARTIALLY_FILLED if o["filled"] else OrderStatus.ACKED
        if st == OrderStatus.FILLED and o["filled"] < o["size"]:
            st = OrderStatus.PARTIALLY_FILLED if o["filled"] else OrderStatus.ACKED  # fills still to come
        if st != o["status"]:
            o["status"] = st
            kind = {OrderStatus.ACKED: ReportKind.ACK, OrderStatus.CANCELLED: ReportKind.CANCELLED,
                    OrderStatus.REJECTED: ReportKind.REJECTED}.get(st)
            if kind is not None:
                self._report(oid, kind, None)
            if st.is_done:
                o["ts_done"] = self._ts
            self._changed.add(oid)

    def _on_exec(self, trade: Any, fill: Any) -> None:
        oid = self.by_ref.get(fill.execution.orderRef)
        if oid is not None and fill.execution.execId not in self.exec_seen:
            self._apply_exec(oid, fill)

    def _on_commission(self, trade: Any, fill: Any, report: Any) -> None:
        pass  # the commission is read from the fill when it is applied (it arrives with the execution)

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        for o in self.orders.values():
            tr = o.get("trade")
            if tr is not None and tr.order.orderId == req_id and not o["status"].is_done:
                o["reason"] = f"IB {code}: {message}"

    def _apply_exec(self, oid: int, fill: Any) -> None:
        ex = fill.execution
        self.exec_seen.add(ex.execId)
        side = 1 if ex.side == "BOT" else -1
        fee = float(fill.commissionReport.commission or 0.0) if fill.commissionReport else 0.0
        self._account_fill(oid, side, int(ex.shares), float(ex.price), fee, record=True, exec_id=ex.execId)

    def _account_fill(self, oid: int, side: int, qty: int, px: float, fee: float, *, record: bool,
                      exec_id: str = "") -> None:
        o = self.orders[oid]
        notional = px * qty
        self.cash -= side * notional + fee
        self.fees += fee
        pos = self.position
        if pos == 0 or (pos > 0) == (side > 0):
            self.avg = (self.avg * abs(pos) + px * qty) / (abs(pos) + qty)
        else:
            close = min(qty, abs(pos))
            self.realized += (px - self.avg) * close * (1.0 if pos > 0 else -1.0)
            if qty > close:
                self.avg = px
            elif close == abs(pos):
                self.avg = 0.0
        self.position = pos + side * qty
        o["filled"] += qty
        o["leaves"] = max(o["size"] - o["filled"], 0)
        o["notional"] += notional
        o["fees"] += fee
        o["status"] = OrderStatus.FILLED if o["leaves"] == 0 else OrderStatus.PARTIALLY_FILLED
        if o["leaves"] == 0:
            o["ts_done"] = self._ts
        self.n_fills += 1
        self._changed.add(oid)
        if record:
            f = Fill(ts=self._ts, ts_exchange=self._ts, order_id=oid, side=side, price=px, size=qty, fee=fee,
                     liquidity="taker", slippage=0.0)
            self._report(oid, ReportKind.FILL, f)
            self._new_fills.append({"fill_id": exec_id, "fill_no": self.n_fills, "order_id": oid, "ts": self._ts,
                                    "side": side, "price": px, "size": qty, "fee": fee, "slippage": 0.0,
                                    "liquidity": "ib", "book_price": px})

    def _report(self, oid: int, kind: ReportKind, fill: Fill | None) -> None:
        o = self.orders[oid]
        self._reports.append((OrderReport(ts=self._ts, ts_exchange=self._ts, order_id=oid, kind=kind,
                                          status=o["status"], filled=o["filled"], leaves=o["leaves"],
                                          reason=RejectReason.NONE), fill))

    # ----------------------------------------------------------------------------- worker interface

    def append(self, rec: Any) -> None:
        last = rec[-1]
        self._ts = int(last["ts"])
        a, b = float(last["book"][0]), float(last["book"][2])
        if math.isfinite(a) and math.isfinite(b):
            self._mark = 0.5 * (a + b)

    def bound(self, i: int) -> int:
        return self._ts

    def local(self, i: int) -> int:
        return self._ts

    def step(self, i: int) -> list[tuple[OrderReport, Fill | None]]:
        self.ib.sleep(0)  # let ib_async dispatch what the gateway sent
        out, self._reports = self._reports, []
        return out

    def done_step(self, i: int) -> None:
        pass

    def finish(self) -> list[tuple[OrderReport, Fill | None]]:
        self.ib.sleep(0.05)
        out, self._reports = self._reports, []
        return out

    def next_order_id(self) -> int:
        if self.recovering:
            return 10**9 + self._phantom + 1
        return max(self.orders, default=0) + 1

    def submit(self, req: OrderRequest, local: int, client_order_id: str) -> int:
        if self.recovering:  # warm-up replay after a restart: IB is not replayed, nothing is sent
            self._phantom += 1
            return 10**9 + self._phantom
        if client_order_id in self.by_ref:  # known to the gateway already: never twice
            return self.by_ref[client_order_id]
        oid = self.next_order_id()
        self.orders[oid] = {"cid": client_order_id, "side": req.side,
                            "type": {OrderType.MARKET: "market", OrderType.LIMIT: "limit"}.get(req.type, "limit"),
                            "price": req.price, "size": int(req.size), "status": OrderStatus.NEW, "filled": 0,
                            "leaves": int(req.size), "notional": 0.0, "fees": 0.0, "trade": None,
                            "ts_submit": local, "ts_done": None, "sent": False}
        self.by_ref[client_order_id] = oid
        if self.ib.isConnected():
            self._send(oid)
        else:
            self._queued.append(oid)
        return oid

    def _send(self, oid: int) -> None:
        from ib_async import LimitOrder, MarketOrder

        o = self.orders[oid]
        if o.get("sent") and o.get("trade") is not None:
            return
        action = "BUY" if o["side"] > 0 else "SELL"
        order = MarketOrder(action, o["size"]) if o["type"] == "market" else LimitOrder(action, o["size"], o["price"])
        order.orderRef = o["cid"]
        o["trade"] = self.ib.placeOrder(self.contract, order)
        o["sent"] = True

    def reject_locally(self, req: OrderRequest, local: int) -> int:
        if self.recovering:
            self._phantom += 1
            return 10**9 + self._phantom
        oid = self.next_order_id()
        self.orders[oid] = {"cid": f"{self.session}-{oid}", "side": req.side, "type": "market", "price": req.price,
                            "size": int(req.size), "status": OrderStatus.REJECTED, "filled": 0, "leaves": 0,
                            "notional": 0.0, "fees": 0.0, "trade": None, "ts_submit": local, "ts_done": local,
                            "sent": False}
        return oid

    def cancel(self, order_id: int, local: int) -> None:
        o = self.orders.get(order_id)
        if o is None or self.recovering:
            return
        if o.get("trade") is not None and not o["status"].is_done:
            self.ib.cancelOrder(o["trade"].order)

    def known_position(self) -> int:
        return self.position

    def known_status(self, order_id: int) -> OrderStatus:
        if order_id > 10**9:  # a warm-up order that was never sent
            return OrderStatus.CANCELLED
        if order_id not in self.orders:
            raise KeyError(f"unknown order id {order_id}")
        return self.orders[order_id]["status"]

    @property
    def n_orders(self) -> int:
        return len(self.orders)

    def account(self) -> dict[str, float]:
        mark = self._mark
        return {"position": self.position, "cash": self.cash, "realized": self.realized, "fees": self.fees,
                "avg_price": self.avg, "mark": mark,
                "equity": self.cash + self.position * (mark if math.isfinite(mark) else self.avg)}

    def order_row(self, order_id: int) -> dict[str, Any]:
        o = self.orders[order_id]
        return {"side": o["side"], "type": o["type"], "price": o["price"], "size": o["size"],
                "status": o["status"].name.lower(), "filled": o["filled"],
                "avg_price": o["notional"] / o["filled"] if o["filled"] else None, "fees": o["fees"],
                "ts_submit": o["ts_submit"], "ts_done": o["ts_done"],
                "broker_order_id": str(o["trade"].order.orderId) if o.get("trade") is not None else None,
                **({"reason": o["reason"]} if o.get("reason") else {})}

    def new_fills(self) -> list[dict[str, Any]]:
        out, self._new_fills = self._new_fills, []
        return out

    def changed_orders(self) -> list[int]:
        out = sorted(i for i in self._changed if i < 10**9)
        self._changed.clear()
        return out


_STATUS_BY_NAME = {s.name.lower(): s for s in OrderStatus}
