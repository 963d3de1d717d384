"""Per-key rate limiting: a token bucket per key id (in memory, per API process).

Each key may make ``rate`` requests per second on average, with bursts up to ``burst`` requests
(default: two seconds' worth). A request over the limit gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import threading
import time


class TokenBuckets:
    def __init__(self, default_rate: float, burst_s: float = 2.0) -> None:
        if not default_rate > 0:
            raise ValueError("rate limit must be > 0 requests/s")
        self.default_rate = float(default_rate)
        self.burst_s = burst_s
        self._buckets: dict[str, list[float]] = {}  # key -> [tokens, last refill (monotonic)]
        self._lock = threading.Lock()

    def take(self, key: str, rate: float | None = None) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds to wait before retrying."""
        r = float(rate or self.default_rate)
        cap = max(1.0, r * self.burst_s)
        now = time.monotonic()
        with self._lock:
            b = self._buckets.get(key)
            if b is None:
                b = self._buckets[key] = [cap, now]
            tokens = min(cap, b[0] + (now - b[1]) * r)
            b[1] = now
            if tokens >= 1.0:
                b[0] = tokens - 1.0
                return 0.0
            b[0] = tokens
            return (1.0 - tokens) / r
