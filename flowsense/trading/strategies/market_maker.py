"""``market_maker``: passive quotes at the best bid and ask with an inventory skew.

The quote prices are written once (:func:`mm_quotes`, a Numba ``inline="always"`` function the compiled
loop inlines and :class:`MarketMakerStrategy` calls as plain Python); the quote/cancel state machine is
the same on both paths (tested order for order on the real GOOG day). Prices are computed in the
venue's integer units (``view.price_scale`` per currency unit) so both paths place identical prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from numba import njit

from flowsense.trading.orders import CancelRequest, OrderRequest, Request
from flowsense.trading.strategy import StrategyBase, StrategyConfig
from flowsense.trading.view import BookView


@njit(cache=True, inline="always")
def mm_quotes(best_bid, best_ask, pos, size, skew_ticks, tick):
    """Wanted bid and ask (integer price units): the best quotes moved down ``skew_ticks`` ticks per
    ``size`` of long inventory (up when short), never crossing the spread."""
    skew = (pos // size) * skew_ticks * tick if size > 0 else 0
    want_bid = best_bid - skew
    want_ask = best_ask - skew
    if want_bid >= best_ask:
        want_bid = best_ask - tick
    if want_ask <= best_bid:
        want_ask = best_bid + tick
    return want_bid, want_ask


_quotes = mm_quotes.py_func


class MarketMakerStrategy(StrategyBase):
    """Stateful side of :class:`MarketMaker`: per side the live quote's id (or None), its price and
    whether its cancel was sent; whether the final flattening order was sent."""

    config: MarketMaker

    def reset(self) -> None:
        self.quote: list[int | None] = [None, None]  # bid, ask order ids
        self.price = [0, 0]
        self.cancel_sent = [False, False]
        self.flattened = False

    def on_book(self, view: BookView) -> Sequence[Request]:
        c = self.config
        out: list[Request] = []
        next_id = view.next_order_id
        pos = view.position
        last = view.is_last
        for s in (0, 1):
            o = self.quote[s]
            if o is not None and view.order_status(o).is_done:
                self.quote[s] = o = None
            if last and o is not None and not self.cancel_sent[s]:
                out.append(CancelRequest(o))
                self.cancel_sent[s] = True
        if last:
            if pos != 0 and not self.flattened:
                out.append(OrderRequest.market(-1 if pos > 0 else 1, abs(pos)))
                self.flattened = True
            return out
        if view.ask_size <= 0 or view.bid_size <= 0:
            return out
        scale = view.price_scale
        tick = round(c.tick * scale)
        bb, ba = round(view.best_bid * scale), round(view.best_ask * scale)
        wants = _quotes(bb, ba, pos, c.size, c.skew_ticks, tick)
        for s in (0, 1):
            side = 1 if s == 0 else -1
            want = wants[s]
            o = self.quote[s]
            if o is None:
                if (side > 0 and pos + c.size <= c.max_position) or (side < 0 and pos - c.size >= -c.max_position):
                    self.quote[s] = next_id
                    next_id += 1
                    out.append(OrderRequest.limit(side, c.size, want / scale))
                    self.price[s] = want
                    self.cancel_sent[s] = False
            elif self.price[s] != want and not self.cancel_sent[s]:
                out.append(CancelRequest(o))
                self.cancel_sent[s] = True
        return out


@dataclass(frozen=True, slots=True)
class MarketMaker(StrategyConfig):
    """Passive quoting at the best bid and ask with ``size`` units each.

    Inventory skew: both quotes move down ``skew_ticks`` ticks per ``size`` of long inventory (up when
    short), never crossing the spread; no new bid at ``+max_position``, no new ask at ``-max_position``.
    A quote whose wanted price changed is cancelled and re-placed after the cancel is confirmed. On the
    last event it cancels its quotes and flattens with a market order.
    """

    size: int = 100
    max_position: int = 500
    skew_ticks: int = 1
    tick: float = 0.01
    name = "market_maker"
    strategy_class = MarketMakerStrategy

    def validate(self) -> None:
        self._require(self.size > 0, "size", "> 0")
        self._require(self.max_position > 0, "max_position", "> 0")
        self._require(self.skew_ticks >= 0, "skew_ticks", ">= 0")
        self._require(self.tick > 0, "tick", "> 0 (a price increment)")
