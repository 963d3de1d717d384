"""What a strategy sees: the book and its own state on its latency-delayed clock.

At local time ``t`` a strategy has received exactly the events with exchange ``ts <= t - feed latency``
and the order reports due by ``t`` (the backtest engine computes this; the live worker gets it for free).
Anything in the view that would reveal a later event raises :class:`LookaheadError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from flowsense.errors import FlowSenseError
from flowsense.trading.orders import OrderStatus


class LookaheadError(FlowSenseError):
    """A strategy asked for data later than its latency-delayed clock allows."""


class GuardedTable:
    """Whole-day columns behind a clock: indices are absolute row numbers (``seq``) of the day.

    * ``table["bid_px_1"]`` - the column up to the last delivered row (read-only);
    * ``table[k]`` - row ``k`` as a dict; negative ``k`` counts from the *end of the day* (like the full
      array would), so ``table[-1]`` is the day's last row and raises unless it was delivered;
    * ``table[a:b]`` - rows as a dict of arrays; raises if the slice reaches past the delivered rows.
    """

    def __init__(self, columns: dict[str, np.ndarray], n_rows: int, delivered: Callable[[], int]) -> None:
        self._cols = columns
        self._n = n_rows
        self._delivered = delivered

    @property
    def columns(self) -> list[str]:
        return list(self._cols)

    def __len__(self) -> int:
        return self._delivered()

    def _check(self, idx: int) -> int:
        if idx < 0:
            idx += self._n
        if idx < 0 or idx >= self._n:
            raise IndexError(f"row {idx} out of range for a day of {self._n} rows")
        if idx >= self._delivered():
            raise LookaheadError(
                f"row {idx} is in the future: only rows 0..{self._delivered() - 1} have been delivered"
            )
        return idx

    def __getitem__(self, key: Any) -> Any:
        d = self._delivered()
        if isinstance(key, str):
            col = self._cols[key][:d]
            col.flags.writeable = False
            return col
        if isinstance(key, slice):
            start, stop, step = key.indices(self._n)
            last = max(start, stop - 1) if step > 0 else start
            if (stop > start if step > 0 else start > stop) and last >= d:
                raise LookaheadError(f"slice {key} reaches row {last}; only rows 0..{d - 1} delivered")
            out = {}
            for name, col in self._cols.items():
                view = col[key]
                view.flags.writeable = False
                out[name] = view
            return out
        idx = self._check(int(key))
        return {name: _scalar(col[idx]) for name, col in self._cols.items()}

    def __iter__(self):  # rows delivered so far
        for k in range(self._delivered()):
            yield self[k]


def _size(px: Any, sz: Any) -> int:
    if px is None or sz is None or px != px or sz != sz or not sz > 0:  # null / NaN / empty level
        return 0
    return int(sz)


def _scalar(x: Any) -> Any:
    return x.item() if isinstance(x, np.generic) else x


class BookView:
    """The market and our own state as the strategy knows them at its local clock.

    ``seq`` is the last delivered event; ``ts`` the strategy's local time (ns); ``book`` and ``events``
    are :class:`GuardedTable` s; ``at(seq)`` returns a past book row. ``position`` and
    ``order_status(id)`` reflect only the reports delivered so far. ``price_scale`` is the number of
    integer price units per currency unit the venue (or the engine) works in: a limit price ``p`` is
    sent as ``round(p * price_scale)`` units, so a strategy that computes in those units
    (``round(view.best_bid * view.price_scale)``) places exactly the prices it computed.
    """

    def __init__(
        self,
        book_cols: dict[str, np.ndarray],
        event_cols: dict[str, np.ndarray],
        n_rows: int,
        known_position: Callable[[], int],
        known_status: Callable[[int], OrderStatus],
        next_order_id: Callable[[], int],
        price_scale: int = 10_000,
    ) -> None:
        self.price_scale = int(price_scale)
        self._i = -1
        self._ts = 0
        self._n = n_rows
        self.book = GuardedTable(book_cols, n_rows, self._delivered)
        self.events = GuardedTable(event_cols, n_rows, self._delivered)
        self._ask_px = book_cols["ask_px_1"]
        self._bid_px = book_cols["bid_px_1"]
        self._ask_sz = book_cols["ask_sz_1"]
        self._bid_sz = book_cols["bid_sz_1"]
        self._ev_ts = event_cols["ts"]
        self._pos = known_position
        self._status = known_status
        self._next_id = next_order_id

    def _delivered(self) -> int:
        return self._i + 1

    def _advance(self, i: int, local_ts: int) -> None:
        self._i = i
        self._ts = local_ts

    @property
    def seq(self) -> int:
        return self._i

    @property
    def ts(self) -> int:
        return self._ts

    @property
    def n_events(self) -> int:
        """Events in the day (known in advance in a backtest; live, the session's expected count or -1)."""
        return self._n

    @property
    def is_last(self) -> bool:
        """True on the last event of the day/session: flatten here."""
        return self._i == self._n - 1

    def at(self, seq: int) -> dict[str, Any]:
        """The book after event ``seq``; raises :class:`LookaheadError` for ``seq`` beyond the clock."""
        if seq < 0:
            raise IndexError("seq must be >= 0")
        return self.book[seq]

    @property
    def event_ts(self) -> int:
        """Exchange timestamp (ns) of the last delivered event."""
        return int(self._ev_ts[self._i])

    @property
    def event(self) -> dict[str, Any]:
        return self.events[self._i]

    @property
    def best_bid(self) -> float:
        return float(self._bid_px[self._i])

    @property
    def best_ask(self) -> float:
        return float(self._ask_px[self._i])

    @property
    def bid_size(self) -> int:
        """Size at the best bid; 0 when that side of the book is empty (null price or size)."""
        return _size(self._bid_px[self._i], self._bid_sz[self._i])

    @property
    def ask_size(self) -> int:
        """Size at the best ask; 0 when that side of the book is empty (null price or size)."""
        return _size(self._ask_px[self._i], self._ask_sz[self._i])

    @property
    def mid(self) -> float:
        return 0.5 * (self.best_bid + self.best_ask)

    @property
    def position(self) -> int:
        return self._pos()

    def order_status(self, order_id: int) -> OrderStatus:
        return self._status(order_id)

    @property
    def next_order_id(self) -> int:
        """The id the engine will give the next order this strategy submits."""
        return self._next_id()
