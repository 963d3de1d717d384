"""Queue-position models: where our resting limit order stands in the queue at its price.

Each model is a frozen dataclass (its assumptions in the docstring) with a ``kind`` code and a
``params()`` packing; the math is in this module's Numba ``inline="always"`` functions, which the
exchange core calls without knowing which model runs (:func:`queue_on_execution`,
:func:`queue_on_cancel`). Adding a queue model means a dataclass and a case here, not in the core.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit

QUEUE_RISK_AVERSE, QUEUE_PROBABILISTIC = 0, 1


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

    kind: ClassVar[int] = QUEUE_RISK_AVERSE

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
    kind: ClassVar[int] = QUEUE_PROBABILISTIC

    def params(self) -> np.ndarray:
        return np.array([float(self.power), 1.0 if self.stochastic else 0.0])


@njit(cache=True, inline="always")
def queue_on_execution(front, executed):
    """An execution of ``executed`` units at our price and side: returns ``(queue ahead after, units
    left over for us)``. The queue ahead is consumed first (every model)."""
    if front >= executed:
        return front - executed, np.int64(0)
    return 0.0, np.int64(np.floor(executed - front))


@njit(cache=True, inline="always")
def _probabilistic_cancel(p, front, level_after, cancelled):
    prevq = level_after + cancelled
    back = max(prevq - front, 0.0)
    n_pow = p[0]
    fb = back**n_pow
    denom = fb + front**n_pow
    prob = fb / denom if denom > 0 else 1.0
    if p[1] > 0:
        if np.random.random() >= prob:
            front = max(front - cancelled, 0.0)
    else:
        front = front - (1.0 - prob) * cancelled + min(back - prob * cancelled, 0.0)
        front = max(front, 0.0)
    return front


@njit(cache=True, inline="always")
def queue_on_cancel(kind, p, front, level_after, cancelled):
    """A cancel (or delete) of ``cancelled`` units at our price and side, leaving ``level_after`` visible:
    returns the queue ahead of us after it (never more than the level)."""
    if kind == QUEUE_PROBABILISTIC:
        front = _probabilistic_cancel(p, front, level_after, cancelled)
    return min(front, float(level_after))


QueueModel = RiskAverseQueue | ProbabilisticQueue
