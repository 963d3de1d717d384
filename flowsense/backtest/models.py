"""Swappable execution models: queue position, latency, fees and slippage.

Each model is a frozen dataclass with a ``kind`` code and a ``params()`` packing that the Numba core
dispatches on (hftbacktest style: small pieces, one assumption each, written down in the docstring).
Add a model by giving it a new ``kind`` and a branch in ``flowsense/backtest/_core.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

# ---------------------------------------------------------------------------------------------- queue


@dataclass(frozen=True, slots=True)
class RiskAverseQueue:
    """Queue position that only ever moves on executions at our price (hftbacktest's RiskAdverseQueueModel).

    Assumptions:
    * on arrival our limit order joins the back of the visible queue at its price (front = visible size at
      that price in the book as of arrival; 0 for a new or non-visible level);
    * an execution of ``s`` shares at our price and side first consumes the queue ahead; what is left of
      ``s`` fills us (partial fills allowed);
    * cancels are always assumed to come from *behind* us: they never move us ahead, except that the queue
      ahead can never be larger than the visible size at the price (front = min(front, level size));
    * a trade through our price (an execution at a worse price on our side) or the opposite best quote
      reaching our price fills all our remaining size at our price, as maker.
    """

    kind: ClassVar[int] = 0

    def params(self) -> np.ndarray:
        return np.array([0.0, 0.0])


@dataclass(frozen=True, slots=True)
class ProbabilisticQueue:
    """Cancels move us ahead with a probability that depends on the queue ahead and behind us.

    For a cancel of ``c`` shares at our level, with ``F`` shares ahead and ``B`` behind (B = level size
    before the cancel - F), the probability that the cancel comes from behind is
    ``p = B**n / (B**n + F**n)`` (hftbacktest's PowerProbQueueFunc with ``n = power``; n=2 is its
    common default). Then, as in hftbacktest's ProbQueueModel,
    ``F <- min(F - (1 - p) * c + min(B - p * c, 0), level size after the cancel)``.

    With ``stochastic=True`` the cancel instead comes wholly from ahead with probability ``1 - p``
    (``F <- max(F - c, 0)``), drawn from the engine's seeded generator (deterministic given the seed).
    Executions, trade-throughs and crossing quotes are handled exactly as in :class:`RiskAverseQueue`.
    """

    power: float = 2.0
    stochastic: bool = False
    kind: ClassVar[int] = 1

    def params(self) -> np.ndarray:
        return np.array([float(self.power), 1.0 if self.stochastic else 0.0])


# -------------------------------------------------------------------------------------------- latency


@dataclass(frozen=True, slots=True)
class ConstantLatency:
    """Fixed latencies in nanoseconds.

    * ``feed_ns``: exchange -> strategy market data. At local time ``t`` the strategy has seen exactly the
      events with exchange ``ts <= t - feed_ns``.
    * ``order_ns``: strategy -> exchange. An order sent at local ``t`` is matched at exchange time
      ``t + order_ns`` against the book after every event with ``ts <= t + order_ns``.
    * ``response_ns``: exchange -> strategy order reports (acks, fills, cancels, rejects).
    """

    feed_ns: int = 1_000_000
    order_ns: int = 1_000_000
    response_ns: int = 1_000_000
    kind: ClassVar[int] = 0

    def __post_init__(self) -> None:
        if min(self.feed_ns, self.order_ns, self.response_ns) < 0:
            raise ValueError("latencies must be >= 0")

    def arrays(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """(feed_ns, order samples, response samples, profile timestamps) for the Numba core."""
        return (
            int(self.feed_ns),
            np.array([self.order_ns], dtype=np.int64),
            np.array([self.response_ns], dtype=np.int64),
            np.zeros(0, dtype=np.int64),
        )


def _as_i64_tuple(values: object) -> tuple[int, ...]:
    arr = np.asarray(values, dtype=np.int64).ravel()
    return tuple(int(v) for v in arr)


@dataclass(frozen=True, slots=True)
class DataLatency:
    """Order-entry and response latencies taken from measured values (e.g. an intraday profile).

    * ``order_ns`` / ``response_ns``: measured samples (ns). ``response_ns`` defaults to ``order_ns``.
    * without ``ts_ns``: each message draws one sample uniformly at random (i.i.d.), from the engine's
      generator seeded with ``BacktestConfig.seed`` (the same seed gives the same run);
    * with ``ts_ns`` (same length as the samples, ascending exchange timestamps): an intraday profile, the
      latency of a message sent at ``t`` is the sample of the last profile timestamp ``<= t`` (the first
      one before the profile starts); no randomness.
    * ``feed_ns`` is constant (a variable feed latency would reorder market data).
    * the order-entry session is one ordered stream (like a TCP session): a message never overtakes the
      previous one, so its arrival is ``max(sent + draw, previous arrival)``; the same for reports.
    """

    order_ns: tuple[int, ...]
    response_ns: tuple[int, ...] | None = None
    feed_ns: int = 1_000_000
    ts_ns: tuple[int, ...] | None = None
    kind: ClassVar[int] = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "order_ns", _as_i64_tuple(self.order_ns))
        if self.response_ns is not None:
            object.__setattr__(self, "response_ns", _as_i64_tuple(self.response_ns))
        if self.ts_ns is not None:
            object.__setattr__(self, "ts_ns", _as_i64_tuple(self.ts_ns))
        if not self.order_ns:
            raise ValueError("DataLatency needs at least one order latency sample")
        resp = self.response_ns if self.response_ns is not None else self.order_ns
        if min(self.order_ns) < 0 or min(resp) < 0 or self.feed_ns < 0:
            raise ValueError("latencies must be >= 0")
        if self.ts_ns is not None:
            if len(self.ts_ns) != len(self.order_ns) or len(resp) != len(self.ts_ns):
                raise ValueError("ts_ns must have one timestamp per order/response sample")
            if any(b < a for a, b in zip(self.ts_ns, self.ts_ns[1:], strict=False)):
                raise ValueError("ts_ns must be ascending")

    def arrays(self) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        resp = self.response_ns if self.response_ns is not None else self.order_ns
        prof = np.asarray(self.ts_ns if self.ts_ns is not None else (), dtype=np.int64)
        return (
            int(self.feed_ns),
            np.asarray(self.order_ns, dtype=np.int64),
            np.asarray(resp, dtype=np.int64),
            prof,
        )


# ----------------------------------------------------------------------------------------------- fees


@dataclass(frozen=True, slots=True)
class MakerTakerFees:
    """Fee = rate x fill price x shares, by liquidity flag. A negative ``maker_rate`` is a rebate.

    Default taker 0.08% (8 bp of notional), maker 0. The fill price includes slippage.
    """

    maker_rate: float = 0.0
    taker_rate: float = 0.0008
    kind: ClassVar[int] = 0

    def params(self) -> np.ndarray:
        return np.array([float(self.maker_rate), float(self.taker_rate)])


@dataclass(frozen=True, slots=True)
class PerShareFees:
    """Fee = dollars per share x shares, by liquidity flag (e.g. taker 0.003, maker -0.002 rebate)."""

    maker: float = 0.0
    taker: float = 0.003
    kind: ClassVar[int] = 1

    def params(self) -> np.ndarray:
        return np.array([float(self.maker), float(self.taker)])


# ------------------------------------------------------------------------------------------- slippage


@dataclass(frozen=True, slots=True)
class FixedBpsSlippage:
    """Taker fills pay ``bps`` basis points over the book price of the level they take.

    Assumptions: the order walks the recorded visible levels at its arrival time (as every taker order
    does), and on top of each level's price pays a fixed adverse ``bps`` for what the recorded book cannot
    show (quotes fading under us, hidden latency jitter, our own impact). Maker fills pay no slippage.
    With ``walk_book=False`` the whole size instead fills at the best price (depth at the touch assumed
    unlimited) plus ``bps``.
    """

    bps: float = 1.0
    walk_book: bool = True
    kind: ClassVar[int] = 0

    def params(self) -> np.ndarray:
        return np.array([float(self.bps), 1.0 if self.walk_book else 0.0])


@dataclass(frozen=True, slots=True)
class BookWalkSlippage:
    """Taker orders walk the recorded visible levels by size and pay exactly those prices, no extra bp.

    Assumptions: the recorded depth at arrival is all there is (hidden liquidity is ignored, a remainder
    beyond the visible levels is cancelled for market/IOC orders), and our own earlier taker orders do not
    deplete the recorded book (each order sees the book as recorded).
    """

    kind: ClassVar[int] = 1

    def params(self) -> np.ndarray:
        return np.array([0.0, 1.0])


QueueModel = RiskAverseQueue | ProbabilisticQueue
LatencyModel = ConstantLatency | DataLatency
FeeModel = MakerTakerFees | PerShareFees
SlippageModel = FixedBpsSlippage | BookWalkSlippage
