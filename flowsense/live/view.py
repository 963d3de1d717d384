"""The strategy's view of a live session: the backtest's :class:`BookView` over growing columns.

Strategies from the backtest run unchanged: they get the same ``BookView`` API (``book``, ``events``,
``at(seq)``, ``best_bid``, ``position``, ``order_status``, ``next_order_id``, ``is_last``) with the same
lookahead guard; only the columns grow as ticks arrive. ``n_events`` is the session's expected event count
when the source knows it (a replayed day), else -1 (``is_last`` is then never true).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from flowsense.data.schemas import EVENT_TYPES, book_level_columns
from flowsense.trading import BookView, GuardedTable, OrderStatus

EVENT_NAMES = np.array(list(EVENT_TYPES), dtype=object)
UNKNOWN_ROWS = 2**62


class SessionColumns:
    """Book and event columns of the session so far (capacity doubles as needed)."""

    def __init__(self, levels: int, capacity: int = 1 << 16) -> None:
        self.levels = levels
        self.book_names = book_level_columns(levels)
        self.n = 0
        self.cap = 0
        self.book: dict[str, np.ndarray] = {}
        self.events: dict[str, np.ndarray] = {}
        self.mat = np.zeros((0, 4 * levels))  # book rows, contiguous (the feature engine's input)
        self.ev = np.zeros(0, np.int8)  # event type index
        self.agg = np.zeros(0, np.int8)  # aggressor side
        self._grow(capacity)

    def _grow(self, cap: int) -> None:
        def grown(old: np.ndarray | None, dtype: object) -> np.ndarray:
            a = np.zeros(cap, dtype=dtype)
            if old is not None:
                a[: self.n] = old[: self.n]
            return a

        for name in ("ts", "seq"):
            self.book[name] = grown(self.book.get(name), np.int64)
        for name in self.book_names:
            self.book[name] = grown(self.book.get(name), np.float64)
        for name, dtype in (("ts", np.int64), ("seq", np.int64), ("event_type", object), ("side", np.int64),
                            ("price", np.float64), ("size", np.int64)):
            self.events[name] = grown(self.events.get(name), dtype)
        mat = np.zeros((cap, 4 * self.levels))
        mat[: self.n] = self.mat[: self.n]
        self.mat = mat
        self.ev = grown(self.ev, np.int8)
        self.agg = grown(self.agg, np.int8)
        self.cap = cap

    def append(self, rec: np.ndarray) -> bool:
        """Add records; returns True when the arrays were reallocated (views must rebind)."""
        m = rec.shape[0]
        grew = False
        if self.n + m > self.cap:
            self._grow(max(2 * self.cap, self.n + m))
            grew = True
        s, e = self.n, self.n + m
        b, ev = self.book, self.events
        b["ts"][s:e] = rec["ts"]
        b["seq"][s:e] = rec["seq"]
        book = rec["book"]
        self.mat[s:e] = book
        self.ev[s:e] = rec["ev"]
        self.agg[s:e] = rec["agg"]
        for k, name in enumerate(self.book_names):
            b[name][s:e] = book[:, k]
        ev["ts"][s:e] = rec["ts"]
        ev["seq"][s:e] = rec["seq"]
        ev["event_type"][s:e] = EVENT_NAMES[rec["ev"]]
        ev["side"][s:e] = rec["side"]
        ev["price"][s:e] = rec["price"]
        ev["size"][s:e] = rec["size"]
        self.n = e
        return grew


class _BookTable(GuardedTable):
    """Row access built from the contiguous book matrix (one ``tolist`` instead of 4L scalar reads);
    everything else (columns, slices, the lookahead guard) is :class:`GuardedTable`'s."""

    def __init__(self, cols: SessionColumns, n_rows: int, delivered: Callable[[], int]) -> None:
        super().__init__(cols.book, n_rows, delivered)
        self._sc = cols

    def __getitem__(self, key: object) -> object:
        if isinstance(key, (int, np.integer)):
            idx = self._check(int(key))
            c = self._sc
            row = dict(zip(c.book_names, c.mat[idx].tolist(), strict=True))
            row["ts"] = int(c.book["ts"][idx])
            row["seq"] = int(c.book["seq"][idx])
            return row
        return super().__getitem__(key)


class LiveBookView(BookView):
    """:class:`BookView` over :class:`SessionColumns`; call :meth:`rebind` after the columns grew."""

    def __init__(self, cols: SessionColumns, n_expected: int, known_position: Callable[[], int],
                 known_status: Callable[[int], OrderStatus], next_order_id: Callable[[], int]) -> None:
        rows = n_expected if n_expected > 0 else UNKNOWN_ROWS
        super().__init__(cols.book, cols.events, rows, known_position, known_status, next_order_id)
        self._n = n_expected if n_expected > 0 else -1
        self._cols = cols
        self.book = _BookTable(cols, rows, self._delivered)

    def rebind(self) -> None:
        b = self._cols.book
        self._ask_px, self._bid_px = b["ask_px_1"], b["bid_px_1"]
        self._ask_sz, self._bid_sz = b["ask_sz_1"], b["bid_sz_1"]
        self._ev_ts = self._cols.events["ts"]

    def set_expected(self, n_expected: int) -> None:
        self._n = n_expected if n_expected > 0 else -1
        rows = n_expected if n_expected > 0 else UNKNOWN_ROWS
        self.book._n = rows
        self.events._n = rows

    @property
    def is_last(self) -> bool:
        """True on the day's last event (by its ``seq``: a skipped bad tick does not shift it)."""
        return self._n > 0 and self._i >= 0 and int(self._cols.book["seq"][self._i]) == self._n - 1
