"""Data-quality checks of one symbol x day, reported with counts.

Every check counts offending rows; none of them drops or fixes data. Which counts are fatal is the
caller's policy (the Dagster asset checks use :data:`SEVERITY`). Checks:

* ``non_monotonic_ts`` - events whose timestamp is earlier than the previous event's.
* ``crossed_book`` / ``locked_book`` - book rows with best ask < best bid / best ask == best bid, counted
  only where the book is meant to be consistent: at the end of an event (DBN records flagged ``F_LAST``;
  every row for other sources, ``DayTables.book_check``) and inside the instrument's trading sessions
  (a pre-open auction book is genuinely crossed). Rows left out of the check are counted in
  ``crossed_book_excluded`` (informational).
* ``non_positive_size`` / ``non_positive_price`` - order events (not halts/clears) with size or price <= 0.
* ``nan_values`` - NaN or null where a value is required (ts, price of orders, sizes).
* ``event_book_mismatch`` - book rows != event rows, plus book transitions that contradict their event:
  for an add/cancel/delete/visible execution at a price visible in the book before and after, the size
  at that price must change by exactly +size (add) or -size (others).
* ``duplicate_add_order_ids`` - adds whose order id was already added earlier that day.
* ``halts`` - trading-halt events (informational).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from flowsense.data.day import DayTables
from flowsense.data.schemas import book_level_columns, book_levels
from flowsense.errors import PartitionNotOkError

if TYPE_CHECKING:
    from flowsense.data.instruments import Instrument
    from flowsense.data.lake import Lake, Partition

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
# Reported beside the checks, not a check: crossed book rows left out (mid-event or outside the sessions).
INFO_COUNTS = ("crossed_book_excluded",)

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
    crossed_book_excluded: int = 0

    def counts(self) -> dict[str, int]:
        return {k: getattr(self, k) for k in SEVERITY}

    def problems(self, severity: str = "error") -> dict[str, int]:
        return {k: v for k, v in self.counts().items() if v and SEVERITY[k] == severity}

    @property
    def ok(self) -> bool:
        return not self.problems("error")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _transition_loop(
    kind: np.ndarray, side: np.ndarray, price: np.ndarray, size: np.ndarray, book: np.ndarray
) -> int:
    """Count book transitions that contradict their event (see module docstring): the reference loop,
    compiled with Numba for large books (:func:`_numba_loop`).

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



# rows x levels up to which the vectorized NumPy count is used when Numba is not loaded yet: below it NumPy
# takes less than the ~0.7 s that importing Numba and loading the compiled loop costs a fresh process
# (``flowsense ingest`` of a LOBSTER day then starts no JIT at all); above it, or in a process that has
# Numba loaded anyway (Dagster, features), the compiled loop is used. Both count the same (tested).
NUMPY_MAX_CELLS = 2_000_000
_numba_compiled: list[Any] = []


def _numba_loop() -> Any:
    if not _numba_compiled:
        import numba as nb

        _numba_compiled.append(nb.njit(cache=True)(_transition_loop))
    return _numba_compiled[0]


def _transition_numpy(
    kind: np.ndarray, side: np.ndarray, price: np.ndarray, size: np.ndarray, book: np.ndarray,
    chunk: int = 65_536,
) -> int:
    """Count book transitions that contradict their event (see module docstring).

    ``kind``: 1 add, -1 remove (cancel/delete/visible execution), 0 not checked. ``book``: (rows, 4*levels)
    float array in LOBSTER column order (ask_px, ask_sz, bid_px, bid_sz per level), NaN where empty.

    Vectorized NumPy (no Numba: ingesting a LOBSTER file then starts no JIT), the same count as
    :func:`_transition_loop`. For each checked row i: the size at the event's price on the event's side in
    row i-1 (before) and row i (after), 0 when the price is not there; the price is visible unless it lies
    beyond the deepest level of either row; a visible transition must change the size by exactly
    ``kind * size``. Works column-major (polars hands out column-major arrays: no transposing copy), in
    chunks of rows so memory stays bounded.
    """
    levels = book.shape[1] // 4
    cols = np.asfortranarray(book).T  # (4 * levels, rows), C-contiguous: one row per book column
    checked = np.flatnonzero(kind[1:] != 0) + 1
    bad = 0
    # a buy order (+1) rests on the bid (offset 2), a sell order (-1) on the ask (offset 0)
    for off in (0, 2):
        px_all, sz_all = cols[off::4], cols[off + 1::4]  # (levels, rows) views
        rows = checked[(side[checked] == 1) == (off == 2)]
        for start in range(0, rows.size, chunk):
            i = rows[start:start + chunk]
            p = price[i]
            at = np.arange(i.size)
            qty: list[np.ndarray] = []
            visible = np.ones(i.size, dtype=bool)
            for r in (i - 1, i):
                px = px_all.take(r, axis=1)  # (levels, m)
                with np.errstate(invalid="ignore"):  # NaN (empty level, no price): never beyond, no match
                    beyond = (p < px[levels - 1] - 1e-9) if off == 2 else (p > px[levels - 1] + 1e-9)
                    match = np.abs(px - p) < 1e-9
                first = match.argmax(axis=0)
                qty.append(np.where(match[first, at], sz_all[first, r], 0.0))
                visible &= ~beyond
            with np.errstate(invalid="ignore"):
                bad += int(np.count_nonzero(visible & (qty[1] != qty[0] + kind[i] * size[i])))
    return bad


def _book_transition_mismatches(
    kind: np.ndarray, side: np.ndarray, price: np.ndarray, size: np.ndarray, book: np.ndarray
) -> int:
    if book.shape[0] * max(1, book.shape[1] // 4) <= NUMPY_MAX_CELLS and "numba" not in sys.modules:
        return _transition_numpy(kind, side, price, size, book)  # a fresh process: no JIT start-up
    return int(_numba_loop()(kind, side, price, size, np.ascontiguousarray(book)))


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


def book_check_mask(day: DayTables, instrument: Instrument | None = None) -> np.ndarray | None:
    """Rows where the book must be uncrossed: event ends (``day.book_check``) inside the instrument's
    sessions. None = every row."""
    if day.book is None:
        return None
    mask = None if day.book_check is None else np.asarray(day.book_check, dtype=bool)
    if instrument is not None and not instrument.always_open and day.book.height:
        open_ = instrument.open_mask(day.book["ts"].dt.epoch("ns").to_numpy())
        mask = open_ if mask is None else mask & open_
    return mask


def validate_day(
    day: DayTables, *, check_transitions: bool | None = None, instrument: Instrument | None = None
) -> ValidationReport:
    """Run every check on one day.

    A book aligned with the events row by row (LOBSTER, MBO-rebuilt) also has its transitions checked
    unless ``check_transitions`` is False; a book of another length counts the row difference.
    ``instrument`` (default: :func:`~flowsense.data.instruments.builtin_instrument` of the symbol) limits the
    crossed/locked checks to its trading sessions.
    """
    if instrument is None:
        from flowsense.data.instruments import builtin_instrument

        instrument = builtin_instrument(day.symbol)
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

    crossed = locked = mismatch = excluded = 0
    book_rows = 0
    if day.book is not None:
        b = day.book
        book_rows = b.height
        ask, bid = b["ask_px_1"], b["bid_px_1"]
        both = (ask.is_not_null() & bid.is_not_null()).to_numpy()
        is_crossed = ((ask < bid).fill_null(False).to_numpy()) & both
        is_locked = ((ask == bid).fill_null(False).to_numpy()) & both
        mask = book_check_mask(day, instrument)
        if mask is not None:
            excluded = int((is_crossed & ~mask).sum())
            is_crossed &= mask
            is_locked &= mask
        crossed = int(is_crossed.sum())
        locked = int(is_locked.sum())
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
        crossed_book_excluded=excluded,
    )


def report_status(report: Mapping[str, Any] | None) -> tuple[bool | None, str]:
    """(ok, one-line reason) of a stored validation report; ok is None without a report.

    ``ok`` is recomputed from the counts with today's :data:`SEVERITY` (a report written before a check
    existed counts that check as 0)."""
    if not report:
        return None, "no validation record (not ingested, or ingested by an older FlowSense)"
    errors = {k: int(report.get(k) or 0) for k, sev in SEVERITY.items() if sev == "error"}
    failed = {k: v for k, v in errors.items() if v}
    if failed:
        detail = ", ".join(f"{k}={v:,}" for k, v in failed.items())
        return False, f"validation failed ({detail})"
    warns = {k: int(report.get(k) or 0) for k, sev in SEVERITY.items() if sev == "warn" and report.get(k)}
    note = f" (warnings: {', '.join(f'{k}={v:,}' for k, v in warns.items())})" if warns else ""
    return True, f"ok{note}"


def partition_ok(lake: Lake, part: Partition) -> tuple[bool, str]:
    """Whether ``part`` may feed features/backtests, with a one-line reason naming the partition.

    False when its validation has ERROR-severity failures or it has no validation record."""
    ok, reason = report_status(lake.read_report(part))
    where = f"{part.symbol} {part.date.isoformat()}"
    if ok is None:
        if not lake.exists("events", part) and not lake.exists("book", part):
            return False, f"{where}: not in the lake"
        return False, f"{where}: {reason}"
    return bool(ok), f"{where}: {reason}"


def require_ok(lake: Lake, part: Partition, *, override: bool = False) -> str:
    """Raise :class:`~flowsense.errors.PartitionNotOkError` unless ``part`` passed validation (or
    ``override``); returns the reason line."""
    ok, reason = partition_ok(lake, part)
    if not ok and not override:
        raise PartitionNotOkError(f"{reason}; refusing it (pass the override flag to use it anyway)")
    return reason
