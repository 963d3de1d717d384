"""A fake of ``ib_async.IB`` at the object boundary, behaving like an IB gateway for the worker's
broker: ``connect`` (refused while the gateway is "down"), ``placeOrder`` -> ack (Submitted), fills
(optionally in two partial executions, with commission), rejects (``Inactive`` + ``errorEvent``),
``cancelOrder``; ``openTrades``/``trades``/``fills``/``positions``/``reqExecutions`` for the sync;
``drop()`` disconnects (``disconnectedEvent``) and fills that happen at the gateway while the client is
away are only visible through the sync after the reconnect. It uses ib_async's own ``Trade``, ``Order``,
``OrderStatus``, ``Fill``, ``Execution`` and ``CommissionReport`` objects and eventkit events, as the
real client does. Events are dispatched from ``sleep()``, as ib_async does from its event loop."""

from __future__ import annotations

import datetime as dt
import itertools

from eventkit import Event
from ib_async import CommissionReport, Execution, Fill, OrderStatus, Position, Trade


class FakeIB:
    def __init__(self, *, price: float = 580.0, partial: bool = True, reject_over: int | None = None,
                 down_attempts: int = 0) -> None:
        self.orderStatusEvent = Event("orderStatusEvent")
        self.execDetailsEvent = Event("execDetailsEvent")
        self.commissionReportEvent = Event("commissionReportEvent")
        self.errorEvent = Event("errorEvent")
        self.disconnectedEvent = Event("disconnectedEvent")
        self.price = price
        self.partial = partial
        self.reject_over = reject_over
        self.down_attempts = down_attempts  # connect() refusals before the gateway answers
        self.connected = False
        self.connect_calls = 0
        self._ids = itertools.count(1)
        self._exec = itertools.count(1)
        self._trades: list[Trade] = []
        self._fills: list[Fill] = []
        self._pending: list[tuple] = []  # events to dispatch at the next sleep()
        self.position = 0
        self.placed_refs: list[str] = []

    # --- connection
    def connect(self, host: str, port: int, clientId: int = 1, timeout: float = 4, **kw) -> None:
        self.connect_calls += 1
        if self.down_attempts > 0:
            self.down_attempts -= 1
            raise ConnectionRefusedError(111, "Connect call failed")
        self.connected = True

    def isConnected(self) -> bool:
        return self.connected

    def drop(self, down_attempts: int = 2) -> None:
        """The connection drops; what the gateway had queued executes while the client is away (it learns
        of it only through the sync after reconnecting); the client sees disconnectedEvent."""
        self.connected = False
        self.down_attempts = down_attempts
        self.run_at_gateway()
        self.disconnectedEvent.emit()

    # --- orders
    def placeOrder(self, contract, order) -> Trade:
        if not self.connected:
            raise ConnectionError("not connected")
        order.orderId = next(self._ids)
        order.permId = 10_000 + order.orderId
        self.placed_refs.append(order.orderRef)
        trade = Trade(contract=contract, order=order,
                      orderStatus=OrderStatus(orderId=order.orderId, status="PendingSubmit",
                                              remaining=order.totalQuantity))
        self._trades.append(trade)
        if self.reject_over is not None and order.totalQuantity > self.reject_over:
            trade.orderStatus.status = "Inactive"
            self._pending.append(("error", order.orderId, 201, "Order rejected - reason: size"))
            self._pending.append(("status", trade))
            return trade
        trade.orderStatus.status = "Submitted"
        self._pending.append(("status", trade))
        qty = int(order.totalQuantity)
        parts = [qty // 2, qty - qty // 2] if self.partial and qty > 1 else [qty]
        for q in parts:
            self._pending.append(("fill", trade, q))
        return trade

    def cancelOrder(self, order) -> None:
        for tr in self._trades:
            if tr.order.orderId == order.orderId and tr.orderStatus.status not in OrderStatus.DoneStates:
                tr.orderStatus.status = "Cancelled"
                self._pending = [p for p in self._pending if not (p[0] == "fill" and p[1] is tr)]
                self._pending.append(("status", tr))

    def _execute(self, trade: Trade, qty: int, emit: bool) -> None:
        side = "BOT" if trade.order.action == "BUY" else "SLD"
        n = next(self._exec)
        ex = Execution(execId=f"0000e{n:04d}.01", time=dt.datetime.now(dt.UTC), side=side, shares=qty,
                       price=self.price, orderId=trade.order.orderId, permId=trade.order.permId,
                       orderRef=trade.order.orderRef, cumQty=trade.orderStatus.filled + qty, avgPrice=self.price)
        cr = CommissionReport(execId=ex.execId, commission=0.005 * qty, currency="USD")
        fill = Fill(trade.contract, ex, cr, ex.time)
        trade.fills.append(fill)
        self._fills.append(fill)
        trade.orderStatus.filled += qty
        trade.orderStatus.remaining -= qty
        self.position += qty if side == "BOT" else -qty
        if trade.orderStatus.remaining <= 0:
            trade.orderStatus.status = "Filled"
        if emit:
            self.execDetailsEvent.emit(trade, fill)
            self.commissionReportEvent.emit(trade, fill, cr)
            self.orderStatusEvent.emit(trade)

    def sleep(self, secs: float = 0) -> None:
        """Deliver what the gateway has for the client (everything queued, in order)."""
        pending, self._pending = self._pending, []
        for ev in pending:
            if ev[0] == "status":
                if self.connected:
                    self.orderStatusEvent.emit(ev[1])
            elif ev[0] == "error":
                if self.connected:
                    self.errorEvent.emit(ev[1], ev[2], ev[3], None)
            else:
                self._execute(ev[1], ev[2], emit=self.connected)

    def run_at_gateway(self) -> None:
        """Let the gateway execute what is queued without telling the client (it is disconnected)."""
        pending, self._pending = self._pending, []
        for ev in pending:
            if ev[0] == "fill":
                self._execute(ev[1], ev[2], emit=False)

    # --- state for the sync
    def reqExecutions(self, *a) -> list[Fill]:
        return list(self._fills)

    def fills(self) -> list[Fill]:
        return list(self._fills)

    def openTrades(self) -> list[Trade]:
        return [t for t in self._trades if t.orderStatus.status not in OrderStatus.DoneStates]

    def trades(self) -> list[Trade]:
        return list(self._trades)

    def positions(self) -> list[Position]:
        from ib_async import Stock

        return [Position("DU123", Stock("GOOG", "SMART", "USD"), self.position, self.price)] if self.position else []
