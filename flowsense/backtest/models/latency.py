"""Latency models: feed (exchange -> strategy), order entry (strategy -> exchange), responses (back).

Every model packs into the same shape for the core (``arrays()``: constant feed latency, order and
response samples, optional profile timestamps) and the one draw function :func:`draw_latency` reads
it, so the core has no branch per model. Adding a latency model means a dataclass here with ``arrays()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit


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


@njit(cache=True, inline="always")
def draw_latency(samples, prof, t):
    """The latency (ns) of a message sent at ``t``: the one sample; else the profile's sample at ``t``;
    else a uniform draw from the samples (the engine's seeded generator)."""
    n = samples.size
    if n == 1:
        return samples[0]
    if prof.size > 0:
        k = np.searchsorted(prof, t, side="right") - 1
        if k < 0:
            k = 0
        return samples[k]
    return samples[np.random.randint(0, n)]


@njit(cache=True, inline="always")
def session_arrival(sent, latency, last):
    """Arrival on an ordered session: ``max(sent + latency, previous arrival)`` (no overtaking)."""
    arr = sent + latency
    return last if arr < last else arr


LatencyModel = ConstantLatency | DataLatency
