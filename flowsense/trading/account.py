"""Positions and the account: average-cost accounting shared by the compiled backtest and Python callers.

The arithmetic exists once, in :func:`position_after_fill` and :func:`cash_after_fill` (Numba
``inline="always"`` functions): the backtest's compiled accounting calls them, and :class:`Account`
(used by the live worker and by tests that reconcile a run) calls their plain-Python originals
(``.py_func``), so both give the same floats bit for bit.

Conventions: ``side`` +1 buy / -1 sell; ``qty`` in units (shares, contracts); ``price`` in currency per
unit; ``multiplier`` = currency per unit of price per unit held (1 for equities, 50 for CME ES);
``fee`` in currency, positive for a cost, negative for a rebate.
"""

from __future__ import annotations

from dataclasses import dataclass

from numba import njit

from flowsense.trading.orders import Fill


@njit(cache=True, inline="always")
def position_after_fill(pos, avg, realized, side, qty, price, multiplier):
    """Average-cost position update for one fill: returns ``(position, avg_price, realized_pnl)``.

    Adding to (or opening) a position moves the average price; reducing realizes
    ``(price - avg) * closed * sign(position) * multiplier``; flipping through zero opens the remainder
    at ``price``; closing exactly resets the average to 0."""
    if pos == 0 or (pos > 0) == (side > 0):
        apos = abs(pos)
        avg = (avg * apos + price * qty) / (apos + qty)
    else:
        close = min(qty, abs(pos))
        sgn = 1.0 if pos > 0 else -1.0
        realized += (price - avg) * close * sgn * multiplier
        if qty > close:
            avg = price
        elif close == abs(pos):
            avg = 0.0
    return pos + side * qty, avg, realized


@njit(cache=True, inline="always")
def cash_after_fill(cash, side, notional, fee, multiplier):
    """Cash after paying (buy) or receiving (sell) ``notional * multiplier`` and paying ``fee``."""
    return cash - (side * notional * multiplier + fee)


@dataclass(frozen=True, slots=True)
class Position:
    """A position snapshot: ``quantity`` in units (signed), ``avg_price`` (0 when flat), realized PnL."""

    symbol: str
    quantity: int
    avg_price: float
    realized_pnl: float
    multiplier: float = 1.0

    def unrealized_pnl(self, mark: float) -> float:
        return (mark - self.avg_price) * self.quantity * self.multiplier if self.quantity else 0.0

    def notional(self, mark: float) -> float:
        return mark * self.quantity * self.multiplier


class Account:
    """Cash, position, fees and turnover of one instrument, updated fill by fill (stateful, not frozen)."""

    def __init__(self, symbol: str = "", cash: float = 0.0, multiplier: float = 1.0) -> None:
        self.symbol = symbol
        self.initial_cash = float(cash)
        self.multiplier = float(multiplier)
        self.cash = float(cash)
        self.quantity = 0
        self.avg_price = 0.0
        self.realized_pnl = 0.0
        self.fees = 0.0
        self.turnover = 0.0
        self.n_fills = 0

    def apply(self, fill: Fill) -> Position:
        """Book one fill; returns the position after it."""
        notional = fill.price * fill.size
        self.cash = cash_after_fill.py_func(self.cash, fill.side, notional, fill.fee, self.multiplier)
        self.fees += fill.fee
        self.turnover += notional * self.multiplier
        self.quantity, self.avg_price, self.realized_pnl = position_after_fill.py_func(
            self.quantity, self.avg_price, self.realized_pnl, fill.side, fill.size, fill.price, self.multiplier)
        self.n_fills += 1
        return self.position

    @property
    def position(self) -> Position:
        return Position(self.symbol, self.quantity, self.avg_price, self.realized_pnl, self.multiplier)

    def equity(self, mark: float) -> float:
        """Cash plus the marked value of the position (``mark`` = mid or last price)."""
        return self.cash + self.quantity * mark * self.multiplier if self.quantity else self.cash

    def pnl(self, mark: float) -> float:
        """Net PnL since the start (after fees), in currency."""
        return self.equity(mark) - self.initial_cash
