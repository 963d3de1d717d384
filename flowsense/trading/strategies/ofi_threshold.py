"""``ofi_threshold``: trade towards a target position set by the rolling order-flow imbalance.

The rule is written once, as three Numba ``inline="always"`` functions: :func:`ofi_increment` (the
features' own OFI definition), :func:`ofi_window` (the rolling sum) and :func:`ofi_order` (the target
and the order to send). The compiled backtest loop inlines them; :class:`OfiThresholdStrategy` calls
their plain-Python originals (``.py_func``), so both paths give the same orders bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from numba import njit

from flowsense.features.kernels import ofi_step
from flowsense.trading.orders import OrderRequest, Request
from flowsense.trading.strategy import StrategyBase, StrategyConfig
from flowsense.trading.view import BookView


@njit(cache=True, inline="always")
def ofi_increment(pb0, qb0, pa0, qa0, pb1, qb1, pa1, qa1):
    """Cont-Kukanov-Stoikov order-flow imbalance contribution of one top-of-book change (before ``0``,
    after ``1``): the features' own definition (:func:`flowsense.features.kernels.ofi_step`), so the
    strategy trades on the feature. An empty bid is price 0, an empty ask price +inf, size 0."""
    return ofi_step(pa1, qa1, pb1, qb1, pa0, qa0, pb0, qb0)


@njit(cache=True, inline="always")
def ofi_window(incs, tss, i, head, ofi, window):
    """Rolling OFI over ``window`` ns: add increment ``incs[i]`` and drop the increments with
    ``tss[h] <= tss[i] - window`` from the ``head``. Returns ``(head, ofi)``."""
    ofi = ofi + incs[i]
    lo = tss[i] - window
    while head < i and tss[head] <= lo:
        ofi -= incs[head]
        head += 1
    return head, ofi


@njit(cache=True, inline="always")
def ofi_order(ofi, threshold, size, max_position, pos, last):
    """The ``ofi_threshold`` rule: signed units to trade towards the target position.

    Target ``+size`` when OFI > threshold, ``-size`` when OFI < -threshold, flat when OFI turns against
    the position (crosses zero), flat on the last event, else hold; clamped to ``max_position``."""
    if last:
        tgt = 0
    elif ofi > threshold:
        tgt = size
    elif ofi < -threshold:
        tgt = -size
    elif (pos > 0 and ofi < 0) or (pos < 0 and ofi > 0):
        tgt = 0
    else:
        tgt = pos
    tgt = max(-max_position, min(max_position, tgt))
    return tgt - pos


_increment = ofi_increment.py_func
_window = ofi_window.py_func
_order = ofi_order.py_func


def top_of_book(view: BookView) -> tuple[float, int, float, int]:
    """``(bid px, bid size, ask px, ask size)`` normalised as the compiled core stores them: an empty
    bid has price 0, an empty ask price +inf, both size 0."""
    bs, az = view.bid_size, view.ask_size
    return (view.best_bid if bs > 0 else 0.0, bs, view.best_ask if az > 0 else math.inf, az)


class OfiThresholdStrategy(StrategyBase):
    """Stateful side of :class:`OfiThreshold`: the window's increments and timestamps, its head and
    sum, the previous top of book and the order in flight (one market order at a time)."""

    config: OfiThreshold

    def reset(self) -> None:
        self.incs: list[float] = []
        self.tss: list[int] = []
        self.head = 0
        self.ofi = 0.0
        self.prev: tuple[float, int, float, int] | None = None
        self.inflight: int | None = None

    def on_book(self, view: BookView) -> Sequence[Request]:
        c = self.config
        i = view.seq
        cur = top_of_book(view)
        if i == 0:
            self.reset()
            e = 0.0
        else:
            p = self.prev
            assert p is not None, "on_book must be called for every event from seq 0"
            e = _increment(p[0], p[1], p[2], p[3], cur[0], cur[1], cur[2], cur[3])
        self.prev = cur
        self.incs.append(e)
        self.tss.append(view.event_ts)
        self.head, self.ofi = _window(self.incs, self.tss, i, self.head, self.ofi, c.window_ns)
        if self.inflight is not None:
            if not view.order_status(self.inflight).is_done:
                return []
            self.inflight = None
        d = _order(self.ofi, c.threshold, c.size, c.max_position, view.position, view.is_last)
        if d == 0:
            return []
        self.inflight = view.next_order_id
        return [OrderRequest.market(1 if d > 0 else -1, abs(d))]


@dataclass(frozen=True, slots=True)
class OfiThreshold(StrategyConfig):
    """Rolling order-flow imbalance (Cont-Kukanov-Stoikov, best level, in units) over ``window_ns``.

    Target position: ``+size`` when OFI > threshold, ``-size`` when OFI < -threshold, flat when OFI turns
    against the position (crosses zero), flat on the last event; clamped to ``max_position``. Trades the
    difference to the target with one market order at a time (waits for the previous one to be done).
    The window holds the events with ``ts > now - window_ns`` (exchange timestamps as delivered).
    """

    threshold: float = 400.0
    size: int = 100
    window_ns: int = 1_000_000_000
    max_position: int = 100
    name = "ofi_threshold"
    strategy_class = OfiThresholdStrategy

    def validate(self) -> None:
        self._require(self.threshold >= 0, "threshold", ">= 0")
        self._require(self.size > 0, "size", "> 0")
        self._require(self.window_ns > 0, "window_ns", "> 0 (nanoseconds)")
        self._require(self.max_position > 0, "max_position", "> 0")
