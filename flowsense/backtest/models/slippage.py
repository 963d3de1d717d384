"""Slippage models: how a taker order consumes the recorded book and what it pays over it.

The math is :func:`taker_take` (units taken at a level) and :func:`taker_price` (the fill price over the
level's price), Numba ``inline="always"`` functions the exchange core calls without a branch of its own.
Maker fills never pay slippage. Adding a slippage model means a dataclass and a case here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit

SLIP_BPS, SLIP_BOOK, SLIP_TICKS = 0, 1, 2


@dataclass(frozen=True, slots=True)
class FixedBpsSlippage:
    """Taker fills pay ``bps`` basis points over the book price of the level they take.

    Assumptions: the order walks the recorded visible levels at its arrival time (as every taker order
    does), and on top of each level's price pays a fixed adverse ``bps`` for what the recorded book cannot
    show (quotes fading under us, hidden latency jitter, our own impact). Maker fills pay no slippage.
    With ``walk_book=False`` the whole size instead fills at the best price (depth at the touch assumed
    unlimited) plus ``bps``. A fraction of the price: fits equities; for futures use :class:`TickSlippage`.
    """

    bps: float = 1.0
    walk_book: bool = True
    kind: ClassVar[int] = SLIP_BPS

    def params(self) -> np.ndarray:
        return np.array([float(self.bps), 1.0 if self.walk_book else 0.0])


@dataclass(frozen=True, slots=True)
class BookWalkSlippage:
    """Taker orders walk the recorded visible levels by size and pay exactly those prices, no extra bp.

    Assumptions: the recorded depth at arrival is all there is (hidden liquidity is ignored, a remainder
    beyond the visible levels is cancelled for market/IOC orders), and our own earlier taker orders do not
    deplete the recorded book (each order sees the book as recorded).
    """

    kind: ClassVar[int] = SLIP_BOOK

    def params(self) -> np.ndarray:
        return np.array([0.0, 1.0])


@dataclass(frozen=True, slots=True)
class TickSlippage:
    """Taker fills pay ``ticks`` whole price increments of the instrument over each level they take.

    Assumptions: as :class:`FixedBpsSlippage` (walk the recorded levels, a fixed adverse cost for what the
    book cannot show), but the cost is in ticks, so every fill price stays on the instrument's price grid
    (a futures fill at 4,801.25 + 1 tick = 4,801.50, never 4,801.73). ``tick`` (currency) is filled in
    from the instrument by the engine when left at 0.
    """

    ticks: int = 1
    tick: float = 0.0
    walk_book: bool = True
    kind: ClassVar[int] = SLIP_TICKS

    def __post_init__(self) -> None:
        if self.ticks < 0 or self.tick < 0:
            raise ValueError("TickSlippage: ticks and tick must be >= 0")

    def params(self) -> np.ndarray:
        return np.array([float(self.ticks), 1.0 if self.walk_book else 0.0, float(self.tick)])


@njit(cache=True, inline="always")
def taker_take(p, leaves, level_qty):
    """Units taken at one visible level: all that is left (no book walk) or what the level shows."""
    return leaves if p[1] == 0 else min(leaves, level_qty)


@njit(cache=True, inline="always")
def taker_price(kind, p, side, book_px, scale):
    """Fill price (currency) of a taker fill at the level priced ``book_px`` (integer units, ``scale``
    per currency unit) for ``side`` (+1 buy pays more, -1 sell receives less)."""
    bpx = book_px / scale
    if kind == SLIP_TICKS:
        return (book_px + side * np.rint(p[0] * p[2] * scale)) / scale
    if kind == SLIP_BOOK:
        return bpx
    return bpx * (1.0 + side * p[0] * 1e-4)


SlippageModel = FixedBpsSlippage | BookWalkSlippage | TickSlippage
