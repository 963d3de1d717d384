"""Interactive Brokers market data as a worker source (``--source ib``), through ``ib_async``.

Level-2 depth (``reqMktDepth``, ``levels`` rows a side) and tick-by-tick trades (``reqTickByTickData``
``AllLast``) of one stock; every depth update or trade becomes one wire record (``flowsense.live.ticks``)
with the book after it, stamped with the local receive time (ns) and a running ``seq``. A live session
has no known length (``n = -1``) and no replay: after a restart the worker starts from the current
book (``replay_upto`` yields nothing), so use it with ``--broker ib``, whose state comes from the
gateway sync. Written against the ib_async 2.1 API; not exercised by the tests (no gateway here).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from flowsense.live.ticks import EV_INDEX, tick_dtype


class IBSource:
    finite = False

    def __init__(self, ib: Any, symbol: str, *, levels: int = 10, exchange: str = "SMART", currency: str = "USD",
                 poll_s: float = 0.05) -> None:
        from ib_async import Stock

        self.ib = ib
        self.symbol = symbol
        self.date = dt.datetime.now(dt.UTC).date().isoformat()
        self.levels = levels
        self.n = -1
        self.poll_s = poll_s
        self._dtype = tick_dtype(levels)
        self._buf: list[np.void] = []
        self._ids: list[str] = []
        self._seq = 0
        self._trades_seen = 0
        contract = Stock(symbol, exchange, currency)
        ib.qualifyContracts(contract)
        self.depth = ib.reqMktDepth(contract, numRows=levels, isSmartDepth=exchange == "SMART")
        self.trades = ib.reqTickByTickData(contract, "AllLast")
        self.depth.updateEvent += self._on_depth
        self.trades.updateEvent += self._on_trade

    @classmethod
    def connect(cls, symbol: str, *, host: str = "127.0.0.1", port: int = 4002, client_id: int = 18,
                **kw: Any) -> IBSource:
        from ib_async import IB

        ib = IB()
        ib.connect(host, port, clientId=client_id, timeout=10, readonly=True)
        return cls(ib, symbol, **kw)

    @staticmethod
    def id_key(entry_id: str) -> tuple[int, int]:
        return int(entry_id), 0

    def _record(self, ev: str, price: float, size: float, side: int, agg: int) -> None:
        r = np.zeros((), dtype=self._dtype)
        r["ts"] = time.time_ns()
        r["seq"] = self._seq
        r["n"] = -1
        r["ev"] = EV_INDEX[ev]
        r["side"] = side
        r["agg"] = agg
        r["price"] = price
        r["size"] = int(size)
        book = np.zeros(4 * self.levels)
        book[0::2] = np.nan
        book[1::2] = 0.0
        for k, lvl in enumerate(self.depth.domAsks[: self.levels]):
            book[4 * k], book[4 * k + 1] = lvl.price, lvl.size
        for k, lvl in enumerate(self.depth.domBids[: self.levels]):
            book[4 * k + 2], book[4 * k + 3] = lvl.price, lvl.size
        r["book"] = book
        self._buf.append(r)
        self._ids.append(str(self._seq))
        self._seq += 1

    def _on_depth(self, ticker: Any) -> None:
        self._record("quote", math.nan, 0, 0, 0)

    def _on_trade(self, ticker: Any) -> None:
        new = ticker.tickByTicks[self._trades_seen:] if len(ticker.tickByTicks) > self._trades_seen else []
        self._trades_seen = len(ticker.tickByTicks)
        for t in new:
            bid = self.depth.domBids[0].price if self.depth.domBids else math.nan
            ask = self.depth.domAsks[0].price if self.depth.domAsks else math.nan
            agg = 1 if t.price >= ask else (-1 if t.price <= bid else 0)
            self._record("trade", float(t.price), float(t.size), 0, agg)

    def replay_upto(self, last_id: str) -> Iterator[tuple[list[str], np.ndarray]]:
        return iter(())

    def read(self) -> tuple[list[str], np.ndarray] | None:
        self.ib.sleep(self.poll_s)
        if not self._buf:
            return None
        rec = np.array(self._buf, dtype=self._dtype)
        ids, self._buf, self._ids = self._ids, [], []
        return ids, rec

    def ack(self, ids: list[str]) -> None:
        pass

    def close(self) -> None:
        self.ib.cancelMktDepth(self.depth.contract)
        self.ib.disconnect()
