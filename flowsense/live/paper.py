"""The paper broker: the backtest engine's exchange core, fed one tick at a time.

It is not a re-implementation: the state (:class:`flowsense.backtest.exchange.Sim`) and the ``@njit``
functions are those of the backtest (:func:`flowsense.backtest.builtins.run_events`, the one loop both
backtest drivers call; queue position, latency, fees, slippage models from a
:class:`~flowsense.backtest.engine.BacktestConfig`). The only difference from a backtest is that the
market-data arrays grow as ticks arrive; the core sees the rows received so far (``Sim.n_ev``).

Clock (as in the backtest): the strategy decides on tick ``i`` at local time ``ts[i] + feed``, after the
simulated exchange has processed everything up to ``ts[i] + feed - min(response latency)``. The worker
therefore runs the decision for tick ``i`` as soon as a tick later than that bound has arrived (or the
session ended): the simulated exchange runs ahead of the strategy by the simulated feed latency, exactly
as in the backtest, and a live replay reproduces the backtest's orders and fills.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowsense.backtest import exchange as C
from flowsense.backtest.builtins import SK_EXTERNAL, run_events
from flowsense.backtest.engine import EVENT_CODES, BacktestConfig, _new_sim, _report_objects
from flowsense.data.schemas import EVENT_TYPES
from flowsense.trading.orders import OrderRequest, OrderStatus, OrderType

ENGINE_CODE = np.array([EVENT_CODES.get(name, C.EV_OTHER) for name in EVENT_TYPES], dtype=np.int8)
ORDER_TYPE = {OrderType.MARKET: "market", OrderType.LIMIT: "limit", OrderType.IOC: "ioc"}


class PaperBroker:
    """Simulated exchange + account for one symbol. See the module docstring.

    ``append(records)`` adds market data; ``step(i)`` brings the exchange to the moment tick ``i`` reaches
    the strategy and returns the reports delivered; ``submit``/``cancel`` queue requests on the simulated
    order-entry session; ``finish()`` runs the exchange to the end of data (end of the session)."""

    name = "paper"

    def __init__(self, config: BacktestConfig | None = None, levels: int = 10, capacity: int = 1 << 16) -> None:
        self.config = config or BacktestConfig()
        self.levels = levels
        feed, _order, resp, _prof = self.config.latency.arrays()
        self.feed = int(feed)
        self.respmin = int(resp.min())
        self.scale = float(self.config.price_scale)
        C.seed(int(self.config.seed))
        self.n = 0
        self._no_params = np.zeros(0, np.float64)
        self._alloc_md(capacity)
        self.sim = _new_sim(self._md_full, self.config)
        C.set_rows(self.sim, 0)
        self._fill_cursor = 0
        self._rep_scan = 0
        self.finished = False

    # ----------------------------------------------------------------------------- arrays

    def _alloc_md(self, cap: int) -> None:
        L = self.levels
        old = getattr(self, "_md_full", None)
        # the book arrays column-major, as the backtest builds them (one compiled specialisation for both)
        new = (np.zeros(cap, np.int64), np.zeros(cap, np.int8), np.zeros(cap, np.int8), np.zeros(cap, np.int64),
               np.zeros(cap, np.int64), np.zeros((L, cap), np.int64).T, np.zeros((L, cap), np.int64).T,
               np.zeros((L, cap), np.int64).T, np.zeros((L, cap), np.int64).T)
        if old is not None:
            for a, b in zip(old, new, strict=True):
                b[: self.n] = a[: self.n]
        self._md_full = new
        self.cap = cap
        if old is not None:
            C.set_market(self.sim, *new, self.n)

    @property
    def md(self) -> tuple:
        return tuple(a[: self.n] for a in self._md_full)

    def append(self, rec: np.ndarray) -> None:
        """Add market-data records (``flowsense.live.ticks`` format) at the end of the arrays."""
        m = rec.shape[0]
        if self.n + m > self.cap:
            self._alloc_md(max(2 * self.cap, self.n + m))
        s, e = self.n, self.n + m
        ts, et, es, ep, ez, apx, asz, bpx, bsz = self._md_full
        ts[s:e] = rec["ts"]
        et[s:e] = ENGINE_CODE[rec["ev"]]
        es[s:e] = rec["side"]
        px = rec["price"]
        nan = np.isnan(px)
        ep[s:e] = np.where(nan, -1, np.rint(np.where(nan, 0.0, px) * self.scale)).astype(np.int64)
        ez[s:e] = rec["size"]
        book = rec["book"]
        L = self.levels
        # the book row is (ask px, ask size, bid px, bid size) per level: all levels of a side at once
        for off, pa, sa, empty in ((0, apx, asz, C.INF), (2, bpx, bsz, 0)):
            p, q = book[:, off::4][:, :L], book[:, off + 1::4][:, :L]
            bad = np.isnan(p) | (q <= 0)
            pa[s:e] = np.where(bad, empty, np.rint(np.where(bad, 0.0, p) * self.scale)).astype(np.int64)
            sa[s:e] = np.where(bad, 0, q).astype(np.int64)
        self.n = e
        C.set_rows(self.sim, e)

    # ----------------------------------------------------------------------------- the clock

    def bound(self, i: int) -> int:
        """Exchange time the simulation must reach before tick ``i`` is delivered to the strategy."""
        return int(self._md_full[0][i]) + self.feed - self.respmin

    def local(self, i: int) -> int:
        return int(self._md_full[0][i]) + self.feed

    def step(self, i: int) -> list[tuple[Any, Any]]:
        """Advance to tick ``i``'s delivery; returns the (report, fill|None) pairs delivered."""
        C.set_cursor(self.sim, i)
        c = int(run_events(self.sim, SK_EXTERNAL, self._no_params, i + 1, False))
        C.keep_last_equity_row(self.sim)
        cur = int(C.known(self.sim)[2])
        return _report_objects(self.sim, cur - c, cur) if c else []

    def done_step(self, i: int) -> None:
        C.set_cursor(self.sim, i + 1)

    def finish(self) -> list[tuple[Any, Any]]:
        c = int(C.finish_run(self.sim))
        self.finished = True
        cur = int(C.known(self.sim)[2])
        return _report_objects(self.sim, cur - c, cur) if c else []

    # ----------------------------------------------------------------------------- orders

    def submit(self, req: OrderRequest, local: int, client_order_id: str = "") -> int:
        """Queue a new order; returns its order id (1, 2, ... in submission order)."""
        px = 0 if req.price is None else round(req.price * self.scale)
        return int(C.submit(self.sim, req.side, int(req.type), px, int(req.size), local)) + 1

    def reject_locally(self, req: OrderRequest, local: int) -> int:
        """Record an order the risk manager refused: it gets the next order id and is REJECTED at once
        (never sent), so a strategy tracking ``view.next_order_id`` sees it done."""
        px = 0 if req.price is None else round(req.price * self.scale)
        return int(C.reject_local(self.sim, req.side, int(req.type), px, int(req.size), local)) + 1

    def cancel(self, order_id: int, local: int) -> None:
        if not 1 <= order_id <= self.n_orders:
            raise KeyError(f"cancel of unknown order id {order_id}")
        C.cancel(self.sim, order_id - 1, local)

    # ----------------------------------------------------------------------------- what is known

    def known_position(self) -> int:
        return int(C.known(self.sim)[0])

    def known_status(self, order_id: int) -> OrderStatus:
        if not 1 <= order_id <= self.n_orders:
            raise KeyError(f"unknown order id {order_id}")
        return OrderStatus(int(C.known_status(self.sim, order_id - 1)))

    def next_order_id(self) -> int:
        return self.n_orders + 1

    @property
    def n_orders(self) -> int:
        return int(C.known(self.sim)[1])

    @property
    def n_fills(self) -> int:
        return int(C.account(self.sim)[6])

    # ----------------------------------------------------------------------------- account

    def account(self) -> dict[str, float]:
        """Exchange-side account: position, cash, realized, fees, mark (last mid), equity."""
        pos, cash, realized, fees, avg, mark, _nf, _nr, _ne = C.account(self.sim)
        pos, cash, mark = int(pos), float(cash), float(mark)
        return {"position": pos, "cash": cash, "realized": float(realized), "fees": float(fees),
                "avg_price": float(avg), "mark": mark,
                "equity": cash + pos * (mark if np.isfinite(mark) else 0.0)}

    def order_row(self, order_id: int) -> dict[str, Any]:
        """The exchange's view of one order (status, filled, average price, fees)."""
        o = order_id - 1
        oi, of = C.tables(self.sim)[:2]
        filled = int(oi[o, C.O_FILLED])
        typ = OrderType(int(oi[o, C.O_TYPE]))
        done = int(oi[o, C.O_TSDONE])
        return {
            "side": int(oi[o, C.O_SIDE]), "type": ORDER_TYPE[typ],
            "price": None if typ == OrderType.MARKET else oi[o, C.O_PX] / self.scale,
            "size": int(oi[o, C.O_SIZE]),
            "status": OrderStatus(int(oi[o, C.O_STATUS])).name.lower(),
            "filled": filled, "avg_price": (of[o, C.OF_NOTIONAL] / filled) if filled else None,
            "fees": float(of[o, C.OF_FEES]), "ts_submit": int(oi[o, C.O_TSSUB]),
            "ts_done": done if done > 0 else None,
        }

    def new_fills(self) -> list[dict[str, Any]]:
        """Fills that happened at the exchange since the last call (exchange time, not delivery)."""
        fi, ff = C.tables(self.sim)[3:5]
        n = fi.shape[0]
        out = []
        for j in range(self._fill_cursor, n):
            out.append({"fill_no": j + 1, "order_id": int(fi[j, C.FI_OIDX]) + 1, "ts": int(fi[j, C.FI_TS]),
                        "side": int(fi[j, C.FI_SIDE]), "price": float(ff[j, C.FF_PX]), "size": int(fi[j, C.FI_QTY]),
                        "fee": float(ff[j, C.FF_FEE]), "slippage": float(ff[j, C.FF_SLIP]),
                        "liquidity": "taker" if fi[j, C.FI_LIQ] == 1 else "maker",
                        "book_price": fi[j, C.FI_BOOKPX] / self.scale})
        self._fill_cursor = n
        return out

    def changed_orders(self) -> list[int]:
        """Order ids whose exchange state changed (a report was generated) since the last call."""
        rp = C.tables(self.sim)[2]
        n = rp.shape[0]
        ids = sorted({int(rp[k, C.P_OIDX]) + 1 for k in range(self._rep_scan, n)})
        self._rep_scan = n
        return ids
