"""Built-in strategies. Each is a frozen config that runs in the compiled loop (``numba_kind`` +
``numba_params``); ``BuyAndHold`` and ``OfiThreshold`` also implement the Python :class:`Strategy`
protocol with the same logic, so the live worker (and a contract test) can run them step by step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from flowsense.backtest._core import SK_BUY_AND_HOLD, SK_MM, SK_OFI, ofi_increment
from flowsense.backtest.orders import Fill, OrderRequest, Request
from flowsense.backtest.strategy import BookView


@dataclass(frozen=True, slots=True)
class BuyAndHold:
    """Buy ``size`` shares with a market order at the first event, sell what was bought at the last."""

    size: int = 100
    numba_kind: ClassVar[int] = SK_BUY_AND_HOLD
    _state: dict = field(default_factory=dict, repr=False, compare=False)

    def numba_params(self, price_scale: int) -> np.ndarray:
        return np.array([float(self.size)])

    def reset(self) -> None:
        self._state.clear()

    def on_book(self, view: BookView) -> Sequence[Request]:
        out: list[Request] = []
        if not self._state.get("bought"):
            self._state["bought"] = True
            out.append(OrderRequest.market(1, self.size))
        if view.is_last and not self._state.get("sold"):
            self._state["sold"] = True
            if view.position > 0:
                out.append(OrderRequest.market(-1, view.position))
        return out

    def on_fill(self, fill: Fill) -> None:
        pass


@dataclass(frozen=True, slots=True)
class OfiThreshold:
    """Rolling order-flow imbalance (Cont-Kukanov-Stoikov, best level, in shares) over ``window_ns``.

    Target position: ``+size`` when OFI > threshold, ``-size`` when OFI < -threshold, flat when OFI turns
    against the position (crosses zero), flat on the last event; clamped to ``max_position``. Trades the
    difference to the target with one market order at a time (waits for the previous one to be done).
    The window holds the events with ``ts > now - window_ns`` (exchange timestamps as delivered).
    """

    threshold: float = 400.0
    size: int = 100
    window_ns: int = 1_000_000_000
    max_position: int = 100
    numba_kind: ClassVar[int] = SK_OFI
    _state: dict = field(default_factory=dict, repr=False, compare=False)

    def numba_params(self, price_scale: int) -> np.ndarray:
        return np.array([self.threshold, float(self.size), float(self.window_ns), float(self.max_position)])

    def reset(self) -> None:
        self._state.clear()

    def on_book(self, view: BookView) -> Sequence[Request]:
        s = self._state
        i = view.seq
        if i == 0:
            s.update(e=[], ts=[], head=0, ofi=0.0, inflight=None)
            e = 0.0
        else:
            p, c = view.at(i - 1), view.at(i)
            e = ofi_increment(p["bid_px_1"], p["bid_sz_1"], p["ask_px_1"], p["ask_sz_1"],
                              c["bid_px_1"], c["bid_sz_1"], c["ask_px_1"], c["ask_sz_1"])
        now = view.events[i]["ts"]
        s["e"].append(e)
        s["ts"].append(now)
        ofi = s["ofi"] + e
        h = s["head"]
        while h < i and s["ts"][h] <= now - self.window_ns:
            ofi -= s["e"][h]
            h += 1
        s["head"], s["ofi"] = h, ofi
        if s["inflight"] is not None:
            if not view.order_status(s["inflight"]).is_done:
                return []
            s["inflight"] = None
        pos = view.position
        if view.is_last:
            tgt = 0
        elif ofi > self.threshold:
            tgt = self.size
        elif ofi < -self.threshold:
            tgt = -self.size
        elif (pos > 0 and ofi < 0) or (pos < 0 and ofi > 0):
            tgt = 0
        else:
            tgt = pos
        tgt = max(-self.max_position, min(self.max_position, tgt))
        d = tgt - pos
        if d == 0:
            return []
        s["inflight"] = view.next_order_id
        return [OrderRequest.market(1 if d > 0 else -1, abs(d))]

    def on_fill(self, fill: Fill) -> None:
        pass


@dataclass(frozen=True, slots=True)
class MarketMaker:
    """Passive quoting at the best bid and ask with ``size`` shares each (compiled path only).

    Inventory skew: both quotes move down ``skew_ticks`` ticks per ``size`` of long inventory (up when
    short), never crossing the spread; no new bid at ``+max_position``, no new ask at ``-max_position``.
    A quote whose wanted price changed is cancelled and re-placed after the cancel is confirmed. On the
    last event it cancels its quotes and flattens with a market order.
    """

    size: int = 100
    max_position: int = 500
    skew_ticks: int = 1
    tick: float = 0.01
    numba_kind: ClassVar[int] = SK_MM

    def numba_params(self, price_scale: int) -> np.ndarray:
        return np.array([float(self.size), float(self.max_position), float(self.skew_ticks),
                         float(round(self.tick * price_scale))])


STRATEGIES: dict[str, type] = {
    "buy_and_hold": BuyAndHold,
    "ofi_threshold": OfiThreshold,
    "market_maker": MarketMaker,
}
