"""The paper broker: the backtest engine's exchange core, fed one tick at a time.

It is not a re-implementation: the arrays and the ``@njit`` functions are those of
:mod:`flowsense.backtest._core` (queue position, latency, fees, slippage models from a
:class:`~flowsense.backtest.engine.BacktestConfig`). The only difference from a backtest is that the
market-data arrays grow as ticks arrive; the core is always handed the rows received so far.

Clock (as in the backtest): the strategy decides on tick ``i`` at local time ``ts[i] + feed``, after the
simulated exchange has processed everything up to ``ts[i] + feed - min(response latency)``. The worker
therefore runs the decision for tick ``i`` as soon as a tick later than that bound has arrived (or the
session ended): the simulated exchange runs ahead of the strategy by the simulated feed latency, exactly
as in the backtest, and a live replay reproduces the backtest's orders and fills.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from flowsense.backtest import _core as C
from flowsense.backtest.engine import EVENT_CODES, BacktestConfig, _cfg, _grow, _report_objects
from flowsense.backtest.orders import OrderRequest, OrderStatus, OrderType
from flowsense.data.schemas import EVENT_TYPES

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
        self.cfg = _cfg(self.config)
        self.feed = int(self.cfg[0][C.C_FEED])
        self.respmin = int(self.cfg[0][C.C_RESPMIN])
        self.scale = float(self.config.price_scale)
        C._seed(int(self.config.seed))
        self.n = 0
        self._alloc_md(capacity)
        self.st = self._new_state()
        self._fill_cursor = 0
        self._rep_scan = 0
        self.finished = False

    # ----------------------------------------------------------------------------- arrays

    def _alloc_md(self, cap: int) -> None:
        L = self.levels
        old = getattr(self, "_md_full", None)
        new = (np.zeros(cap, np.int64), np.zeros(cap, np.int8), np.zeros(cap, np.int8), np.zeros(cap, np.int64),
               np.zeros(cap, np.int64), np.zeros((cap, L), np.int64), np.zeros((cap, L), np.int64),
               np.zeros((cap, L), np.int64), np.zeros((cap, L), np.int64))
        if old is not None:
            for a, b in zip(old, new, strict=True):
                b[: self.n] = a[: self.n]
        self._md_full = new
        self.cap = cap
        self.md = tuple(a[: self.n] for a in new)

    def _new_state(self) -> tuple:
        n = 1024
        si = np.zeros(C.SI_SIZE, np.int64)
        sf = np.zeros(C.SF_SIZE, np.float64)
        sf[C.F_CASH] = self.config.initial_cash
        sf[C.F_LASTMID] = np.nan
        return (si, sf, np.zeros((n, C.OI_COLS), np.int64), np.zeros((n, C.OF_COLS), np.float64),
                np.zeros((n, C.RQ_COLS), np.int64), np.zeros((4 * n, C.RP_COLS), np.int64),
                np.zeros((2 * n, C.FI_COLS), np.int64), np.zeros((2 * n, C.FF_COLS), np.float64),
                np.zeros(n, np.int64), np.zeros(4096, np.int64), np.zeros((4096, 3), np.float64))

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
        ep[s:e] = np.where(np.isnan(px), -1, np.rint(np.nan_to_num(px) * self.scale)).astype(np.int64)
        ez[s:e] = rec["size"]
        book = rec["book"]
        L = self.levels
        for k in range(L):
            for side, (pa, sa, empty) in (("ask", (apx, asz, C.INF)), ("bid", (bpx, bsz, 0))):
                off = 4 * k + (0 if side == "ask" else 2)
                p, q = book[:, off], book[:, off + 1]
                bad = np.isnan(p) | (q <= 0)
                pa[s:e, k] = np.where(bad, empty, np.rint(np.nan_to_num(p) * self.scale)).astype(np.int64)
                sa[s:e, k] = np.where(bad, 0, q).astype(np.int64)
        self.n = e
        self.md = tuple(a[:e] for a in self._md_full)

    def _compact_equity(self) -> None:
        si, eq_ts, eq_f = self.st[0], self.st[9], self.st[10]
        n = int(si[C.S_NEQ])
        if n > eq_ts.size // 2:
            eq_ts[0] = eq_ts[n - 1]
            eq_f[0] = eq_f[n - 1]
            si[C.S_NEQ] = 1

    # ----------------------------------------------------------------------------- the clock

    def bound(self, i: int) -> int:
        """Exchange time the simulation must reach before tick ``i`` is delivered to the strategy."""
        return int(self.md[0][i]) + self.feed - self.respmin

    def local(self, i: int) -> int:
        return int(self.md[0][i]) + self.feed

    def step(self, i: int) -> list[tuple[Any, Any]]:
        """Advance to tick ``i``'s delivery; returns the (report, fill|None) pairs delivered."""
        while (c := C._step_to(self.md, self.st, self.cfg, i)) < 0:
            self.st = _grow(self.st)
        self._compact_equity()
        cur = int(self.st[0][C.S_REPCUR])
        return _report_objects(self.st, cur - c, cur) if c else []

    def done_step(self, i: int) -> None:
        self.st[0][C.S_I] = i + 1

    def finish(self) -> list[tuple[Any, Any]]:
        while (c := C._finish_run(self.md, self.st, self.cfg)) < 0:
            self.st = _grow(self.st)
        self.finished = True
        cur = int(self.st[0][C.S_REPCUR])
        return _report_objects(self.st, cur - c, cur) if c else []

    # ----------------------------------------------------------------------------- orders

    def _room(self) -> None:
        s = self.st
        if s[2].shape[0] - s[0][C.S_NORD] < 2 or s[4].shape[0] - s[0][C.S_NREQ] < 2:
            self.st = _grow(s)

    def submit(self, req: OrderRequest, local: int, client_order_id: str = "") -> int:
        """Queue a new order; returns its order id (1, 2, ... in submission order)."""
        self._room()
        px = 0 if req.price is None else round(req.price * self.scale)
        return int(C._submit(self.st, self.cfg, req.side, int(req.type), px, int(req.size), local)) + 1

    def reject_locally(self, req: OrderRequest, local: int) -> int:
        """Record an order the risk manager refused: it gets the next order id and is REJECTED at once
        (never sent), so a strategy tracking ``view.next_order_id`` sees it done."""
        self._room()
        si, oi, of = self.st[0], self.st[2], self.st[3]
        o = int(si[C.S_NORD])
        oi[o, :] = 0
        oi[o, C.O_SIDE] = req.side
        oi[o, C.O_TYPE] = int(req.type)
        oi[o, C.O_PX] = 0 if req.price is None else round(req.price * self.scale)
        oi[o, C.O_SIZE] = int(req.size)
        oi[o, C.O_STATUS] = C.ST_REJECTED
        oi[o, C.O_KSTATUS] = C.ST_REJECTED
        oi[o, C.O_TSSUB] = local
        oi[o, C.O_TSEX] = -1
        oi[o, C.O_TSDONE] = local
        of[o, :] = 0.0
        of[o, C.OF_FRONT0] = -1.0
        si[C.S_NORD] = o + 1
        return o + 1

    def cancel(self, order_id: int, local: int) -> None:
        if not 1 <= order_id <= self.st[0][C.S_NORD]:
            raise KeyError(f"cancel of unknown order id {order_id}")
        self._room()
        C._cancel(self.st, self.cfg, order_id - 1, local)

    # ----------------------------------------------------------------------------- what is known

    def known_position(self) -> int:
        return int(self.st[0][C.S_KPOS])

    def known_status(self, order_id: int) -> OrderStatus:
        if not 1 <= order_id <= self.st[0][C.S_NORD]:
            raise KeyError(f"unknown order id {order_id}")
        return OrderStatus(int(self.st[2][order_id - 1, C.O_KSTATUS]))

    def next_order_id(self) -> int:
        return int(self.st[0][C.S_NORD]) + 1

    @property
    def n_orders(self) -> int:
        return int(self.st[0][C.S_NORD])

    @property
    def n_fills(self) -> int:
        return int(self.st[0][C.S_NFILL])

    # ----------------------------------------------------------------------------- account

    def account(self) -> dict[str, float]:
        """Exchange-side account: position, cash, realized, fees, mark (last mid), equity."""
        si, sf = self.st[0], self.st[1]
        mark = float(sf[C.F_LASTMID])
        pos = int(si[C.S_POS])
        cash = float(sf[C.F_CASH])
        return {"position": pos, "cash": cash, "realized": float(sf[C.F_REAL]), "fees": float(sf[C.F_FEES]),
                "avg_price": float(sf[C.F_AVG]), "mark": mark,
                "equity": cash + pos * (mark if np.isfinite(mark) else 0.0)}

    def order_row(self, order_id: int) -> dict[str, Any]:
        """The exchange's view of one order (status, filled, average price, fees)."""
        o = order_id - 1
        oi, of = self.st[2], self.st[3]
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
        si, fi, ff = self.st[0], self.st[6], self.st[7]
        n = int(si[C.S_NFILL])
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
        si, rp = self.st[0], self.st[5]
        n = int(si[C.S_NREP])
        ids = sorted({int(rp[k, C.P_OIDX]) + 1 for k in range(self._rep_scan, n)})
        self._rep_scan = n
        return ids
