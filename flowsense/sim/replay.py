"""Independent pure-Python replay of LOBSTER messages, to check an orderbook file against its messages.

The replay keeps a price-level book (price -> visible size per side, sorted price lists via ``bisect``)
starting from an empty book, applies each message (1 add, 2 partial cancel, 3 delete, 4 visible execution;
5 hidden execution and 7 halt leave the book unchanged) and compares the top ``levels`` with the
orderbook row. It also checks that visible executions happen at the best level of the resting side and
that the book is never crossed or locked. It is deliberately not shared with the simulator's Numba code.
"""

from __future__ import annotations

import bisect
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

EMPTY = 9_999_999_999


@dataclass(frozen=True, slots=True)
class ReplayReport:
    rows: int
    mismatches: int
    first_mismatch: int | None
    bad_executions: int
    crossed_or_locked: int
    negative_levels: int

    @property
    def ok(self) -> bool:
        return not (self.mismatches or self.bad_executions or self.crossed_or_locked or self.negative_levels)


def read_raw(zip_path: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Raw LOBSTER arrays from a zip: messages (n, 6) float64, orderbook (n, 4L) int64, levels L."""
    with zipfile.ZipFile(zip_path) as zf:
        names = zf.namelist()
        msg_name = next(n for n in names if "_message_" in n)
        book_name = msg_name.replace("_message_", "_orderbook_")
        msg = pl.read_csv(zf.read(msg_name), has_header=False, infer_schema_length=0)
        book = pl.read_csv(zf.read(book_name), has_header=False, infer_schema_length=0)
    msg_arr = np.column_stack(
        [msg[:, 0].cast(pl.Float64).to_numpy()] + [msg[:, k].cast(pl.Int64).to_numpy() for k in range(1, 6)]
    )
    book_arr = book.cast(pl.Int64).to_numpy()
    return msg_arr, book_arr, book_arr.shape[1] // 4


def replay(msg: np.ndarray, book: np.ndarray, levels: int) -> ReplayReport:
    """Replay ``msg`` (n, 6: time, type, id, size, price, direction) and compare with ``book``."""
    sizes: list[dict[int, int]] = [{}, {}]  # 0 bid, 1 ask
    prices: list[list[int]] = [[], []]  # ascending
    mismatches, first, bad_exec, crossed, negative = 0, None, 0, 0, 0
    types = msg[:, 1].astype(np.int64)
    sz = msg[:, 3].astype(np.int64)
    px = msg[:, 4].astype(np.int64)
    dr = msg[:, 5].astype(np.int64)
    for i in range(len(msg)):
        t = types[i]
        if t in (1, 2, 3, 4):
            s = 0 if dr[i] == 1 else 1
            p = int(px[i])
            book_s = sizes[s]
            if t == 4:
                best = (prices[s][-1] if s == 0 else prices[s][0]) if prices[s] else None
                if best != p:
                    bad_exec += 1
            if t == 1:
                if p not in book_s:
                    bisect.insort(prices[s], p)
                    book_s[p] = 0
                book_s[p] += int(sz[i])
            else:
                left = book_s.get(p, 0) - int(sz[i])
                if left < 0 or p not in book_s:
                    negative += 1
                if left <= 0:
                    if p in book_s:
                        del book_s[p]
                        prices[s].pop(bisect.bisect_left(prices[s], p))
                else:
                    book_s[p] = left
        if prices[0] and prices[1] and prices[0][-1] >= prices[1][0]:
            crossed += 1
        row = book[i]
        asks = prices[1][:levels]
        bids = prices[0][::-1][:levels]
        expect = np.empty(4 * levels, dtype=np.int64)
        for k in range(levels):
            if k < len(asks):
                expect[4 * k], expect[4 * k + 1] = asks[k], sizes[1][asks[k]]
            else:
                expect[4 * k], expect[4 * k + 1] = EMPTY, 0
            if k < len(bids):
                expect[4 * k + 2], expect[4 * k + 3] = bids[k], sizes[0][bids[k]]
            else:
                expect[4 * k + 2], expect[4 * k + 3] = -EMPTY, 0
        if not np.array_equal(expect, row):
            mismatches += 1
            if first is None:
                first = i
    return ReplayReport(len(msg), mismatches, first, bad_exec, crossed, negative)


def replay_zip(zip_path: str | Path) -> ReplayReport:
    """Replay one LOBSTER zip written by the simulator (empty book at the start of the file)."""
    msg, book, levels = read_raw(zip_path)
    return replay(msg, book, levels)
