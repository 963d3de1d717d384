"""Order, fill and report value objects shared by the backtest engine and the live worker.

Everything here is a small frozen value object (NautilusTrader style) plus the integer codes the Numba
core uses for the same concepts. Sides are +1 buy / -1 sell (:class:`Side`), prices are in the
instrument's currency per unit, sizes are in units (shares, contracts, coins at the instrument's size scale).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Side(IntEnum):
    """``BUY = +1``, ``SELL = -1``: the sign a fill applies to the position."""

    BUY = 1
    SELL = -1


class OrderType(IntEnum):
    """``MARKET`` walks the book and cancels any remainder; ``LIMIT`` is good-till-cancel (a marketable
    limit takes what it can up to its price and rests the rest); ``IOC`` is a limit that never rests."""

    MARKET = 0
    LIMIT = 1
    IOC = 2


class OrderStatus(IntEnum):
    NEW = 0  # sent by the strategy, not yet at the exchange
    ACKED = 1
    PARTIALLY_FILLED = 2
    FILLED = 3
    CANCELLED = 4
    REJECTED = 5

    @property
    def is_done(self) -> bool:
        return self >= OrderStatus.FILLED


class RejectReason(IntEnum):
    NONE = 0
    MAX_POSITION = 1  # would exceed the inventory limit (position + open orders on that side)
    NO_BOOK = 2  # arrived before the first market event
    UNKNOWN_ORDER = 3  # cancel of an order that is already done (too late)
    NO_LIQUIDITY = 4  # market/IOC remainder cancelled (visible depth exhausted or limit reached)
    BAD_PRICE = 5  # limit order without a positive price
    MARKET_CLOSED = 6  # arrived outside the instrument's trading sessions


class ReportKind(IntEnum):
    ACK = 0
    FILL = 1
    REJECTED = 2
    CANCELLED = 3
    CANCEL_REJECTED = 4


class Liquidity(IntEnum):
    MAKER = 0
    TAKER = 1


ORDER_TYPE_NAMES = {int(t): t.name.lower() for t in OrderType}
STATUS_NAMES = {int(s): s.name.lower() for s in OrderStatus}
REASON_NAMES = {int(r): r.name.lower() for r in RejectReason}
LIQUIDITY_NAMES = {0: "maker", 1: "taker"}


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What a strategy asks for. Build with :meth:`market`, :meth:`limit` or :meth:`ioc`.

    The engine (or the live broker adapter) assigns the order id; ids are 1, 2, 3, ... in submission order,
    so a strategy can learn its ids from ``view.next_order_id`` or from the reports it receives.
    """

    side: int
    size: int
    type: OrderType = OrderType.MARKET
    price: float | None = None

    def __post_init__(self) -> None:
        if self.side not in (1, -1):
            raise ValueError(f"side must be +1 (buy) or -1 (sell), got {self.side!r}")
        if int(self.size) != self.size or self.size <= 0:
            raise ValueError(f"size must be a positive integer, got {self.size!r}")
        if self.type != OrderType.MARKET and (self.price is None or not self.price > 0):
            raise ValueError(f"{OrderType(self.type).name} order needs a positive price, got {self.price!r}")

    @classmethod
    def market(cls, side: int, size: int) -> OrderRequest:
        return cls(side, size, OrderType.MARKET, None)

    @classmethod
    def limit(cls, side: int, size: int, price: float) -> OrderRequest:
        return cls(side, size, OrderType.LIMIT, price)

    @classmethod
    def ioc(cls, side: int, size: int, price: float) -> OrderRequest:
        return cls(side, size, OrderType.IOC, price)


@dataclass(frozen=True, slots=True)
class CancelRequest:
    """Cancel a resting order by id. Too late (already filled) comes back as ``CANCEL_REJECTED``."""

    order_id: int


Request = OrderRequest | CancelRequest


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of one of our orders, as the strategy receives it.

    ``ts`` is when the strategy learns of it (exchange time + response latency); ``ts_exchange`` is when
    it happened. ``fee`` is positive for a cost, negative for a rebate; ``slippage`` is the dollar cost the
    slippage model added over the book price (0 for maker fills).
    """

    ts: int
    ts_exchange: int
    order_id: int
    side: int
    price: float
    size: int
    fee: float
    liquidity: str
    slippage: float


@dataclass(frozen=True, slots=True)
class OrderReport:
    """A state change of one of our orders (ack, reject, cancel, cancel-reject, fill), as delivered."""

    ts: int
    ts_exchange: int
    order_id: int
    kind: ReportKind
    status: OrderStatus
    filled: int
    leaves: int
    reason: RejectReason = RejectReason.NONE
