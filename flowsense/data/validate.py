"""Data-quality checks of one symbol x day, reported with counts.

Every check counts offending rows; none of them drops or fixes data. Which counts are fatal is the
caller's policy (the Dagster asset checks use :data:`SEVERITY`). Checks:

* ``non_monotonic_ts`` - events whose timestamp is earlier than the previous event's.
* ``crossed_book`` / ``locked_book`` - book rows with best ask < best bid / best ask == best bid.
* ``non_positive_size`` / ``non_positive_price`` - order events (not halts/clears) with size or price <= 0.
* ``nan_values`` - NaN or null where a value is required (ts, price of orders, sizes).
* ``event_book_mismatch`` - book rows != event rows, plus book transitions that contradict their event:
  for an add/cancel/delete/visible execution at a price visible in the book before and after, the size
  at that price must change by exactly +size (add) or -size (others).
* ``duplicate_add_order_ids`` - adds whose order id was already added earlier that day.
* ``halts`` - trading-halt events (informational).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numba as nb
import numpy as np
import polars as pl

from flowsense.data.day import DayTables
from flowsense.data.schemas import book_level_columns, book_levels

SEVERITY = {
    "non_monotonic_ts": "error",
    "crossed_book": "error",
    "locked_book": "warn",
    "non_positive_size": "error",
    "non_positive_price": "error",
    "nan_values": "error",
    "event_book_mismatch": "error",
    "duplicate_add_order_ids": "warn",
    "halts": "info",
}

ORDER_EVENTS = ("add", "cancel", "delete", "modify", "execute_visible", "execute_hidden", "trade", "fill", "cross")


@dataclass(frozen=True, slots=True)
class ValidationReport:
    symbol: str
    date: str
    events: int
    book_rows: int
    trades: int
    levels: int
    non_monotonic_ts: int
    crossed_book: int
    locked_book: int
    non_positive_size: int
    non_positive_price: int
    nan_values: int
    event_book_mismatch: int
    duplicate_add_order_ids: int
    halts: int

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in SEVERITY}

    def problems(self, severity: str = "error") -> dict[str, int]:
        return {k: v for k, v in self.counts().items() if v and SEVERITY[k] == severity}

    @property
    def ok(self) -> bool:
        return not self.problems("error")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@nb.njit(cache=True)
def _book_transition_mismatches(
    kind: np.ndarray, side: np.ndarray, price: np.ndarray, size: np.ndarray, book: np.ndarray
) -> int:
    """Count book transitions that contradict their event (see module docstring).

    ``kind``: 1 add, -1 remove (cancel/delete/visible execution), 0 not checked. ``book``: (rows, 4*levels)
    float array in LOBSTER column order (ask_px, ask_sz, bid_px, bid_sz per level), NaN where empty.
    """
    n, width = book.shape
    levels = width // 4
    bad = 0
    for i in range(1, n):
        k = kind[i]
        if k == 0:
            continue
        # a buy order (+1) rests on the bid (offset 2), a sell order (-1) on the ask (offset 0)
        off = 2 if side[i] == 1 else 0
        p = price[i]
        visible = True
        before = 0.0
        after = 0.0
        for r in range(2):
            row = i - 1 + r
            deepest = book[row, 4 * (levels - 1) + off]
            if not np.isnan(deepest):
                if off == 0 and p > deepest + 1e-9:
                    visible = False
                if off == 2 and p < deepest - 1e-9:
                    visible = False
            q = 0.0
            for lv in range(levels):
                if abs(book[row, 4 * lv + off] - p) < 1e-9:
                    q = book[row, 4 * lv + off + 1]
                    break
            if r == 0:
                before = q
            else:
                after = q
        if visible and after != before + k * size[i]:
            bad += 1
    return bad


def event_book_mismatches(events: pl.DataFrame, book: pl.DataFrame) -> int:
    """Row-count difference plus contradicting transitions (LOBSTER-style aligned books only)."""
    if events.height != book.height:
        return abs(events.height - book.height)
    levels = book_levels(book.columns)
    et = events["event_type"].cast(pl.String)
    kind = (
        pl.select(
            pl.when(et == "add").then(1).when(et.is_in(["cancel", "delete", "execute_visible"])).then(-1).otherwise(0)
        )
        .to_series()
        .to_numpy()
        .astype(np.int64)
    )
    cols = book_level_columns(levels)
    arr = book.select(pl.col(cols).cast(pl.Float64)).to_numpy()
    return int(
        _book_transition_mismatches(
            kind,
            events["side"].fill_null(0).to_numpy().astype(np.int64),
            events["price"].fill_null(np.nan).to_numpy(),
            events["size"].fill_null(0).to_numpy().astype(np.float64),
            arr,
        )
    )


def validate_day(day: DayTables, *, check_transitions: bool | None = None) -> ValidationReport:
    """Run every check on one day.

    A book aligned with the events row by row (LOBSTER, MBO-rebuilt) also has its transitions checked
    unless ``check_transitions`` is False; a book of another length counts the row difference.
    """
    ev = day.events
    et = ev["event_type"].cast(pl.String)
    is_order = et.is_in(list(ORDER_EVENTS))
    ts_i = ev["ts"].dt.epoch("ns")
    non_mono = int((ts_i.diff() < 0).sum() or 0)
    sizes = ev["size"]
    prices = ev["price"]
    non_pos_size = int(((sizes <= 0) & is_order).sum() or 0)
    non_pos_price = int(((prices <= 0) & is_order).sum() or 0)
    nan_values = int(
        ev["ts"].is_null().sum()
        + ((prices.is_null() | prices.is_nan()) & is_order & (et != "cross")).sum()
        + (sizes.is_null() & is_order).sum()
    )
    adds = ev.filter(et == "add")["order_id"]
    dup_adds = int(adds.len() - adds.n_unique()) if adds.len() else 0
    halts = int((et == "halt").sum() or 0)

    crossed = locked = mismatch = 0
    book_rows = 0
    if day.book is not None:
        b = day.book
        book_rows = b.height
        ask, bid = b["ask_px_1"], b["bid_px_1"]
        both = ask.is_not_null() & bid.is_not_null()
        crossed = int(((ask < bid) & both).sum() or 0)
        locked = int(((ask == bid) & both).sum() or 0)
        if b.height != ev.height:
            mismatch = abs(b.height - ev.height)
        elif check_transitions is not False:
            mismatch = event_book_mismatches(ev, b)
    return ValidationReport(
        symbol=day.symbol,
        date=day.date.isoformat(),
        events=ev.height,
        book_rows=book_rows,
        trades=day.trades.height,
        levels=day.levels,
        non_monotonic_ts=non_mono,
        crossed_book=crossed,
        locked_book=locked,
        non_positive_size=non_pos_size,
        non_positive_price=non_pos_price,
        nan_values=nan_values,
        event_book_mismatch=mismatch,
        duplicate_add_order_ids=dup_adds,
        halts=halts,
    )
