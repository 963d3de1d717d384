"""Walk-forward folds with train / validation / test windows, purged and embargoed.

Windows follow each other in time: ``train [a, a+T)``, embargo, ``val``, embargo, ``test``; the next fold
starts ``step`` later (default: the test length, so test windows tile the data without overlap).
Sizes are

* days (``int``, ``unit="days"``): counted in distinct trading days present in the data (UTC calendar
  day of the timestamps); the product plan's default is 60 days of history and a 7-day test, split here
  as ``train=53, val=7, test=7``;
* wall-clock durations (``"2h"``, ``"30m"``, ``"10s"``, ``datetime.timedelta``) for single days;
* events (``unit="events"``): row counts.

**Purging** (Lopez de Prado 2018, ch. 7): a training label is only usable if it is *known* before the
validation window starts, a validation label if known before the test window starts: rows whose
``label_end >= next window start`` get their label removed (:func:`purge`), the rows themselves stay as
history for sequence models. **Embargo**: a gap (``embargo``, same unit as the sizes) between windows,
so features built from trailing windows and autocorrelated events do not straddle two windows.

:func:`assert_not_peeking` refuses to score a model whose training window (``model.train_window``:
first training event to the last label it saw) reaches into the test window.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from flowsense.backtest.walkforward import _duration_ns
from flowsense.errors import FlowSenseError

NS_PER_DAY = 86_400_000_000_000
Size = int | str | dt.timedelta


class LeakageError(FlowSenseError):
    """A model or a fold would use information from the window it is scored on."""


def iso(ns: int) -> str:
    """ISO 8601 UTC of an int64 ns timestamp (``...Z``-free, ``+00:00``)."""
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, tz=dt.UTC).replace(
        microsecond=(ns % 1_000_000_000) // 1000).isoformat()


@dataclass(frozen=True)
class WFold:
    """Row indices of the three windows and their bounds (ns, half-open ``[start, end)``)."""

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_start: int
    train_end: int
    val_start: int
    val_end: int
    test_start: int
    test_end: int

    def describe(self) -> dict[str, Any]:
        return {"fold": self.index, "train_start": iso(self.train_start), "train_end": iso(self.train_end),
                "val_start": iso(self.val_start), "val_end": iso(self.val_end),
                "test_start": iso(self.test_start), "test_end": iso(self.test_end),
                "n_train": int(self.train.size), "n_val": int(self.val.size), "n_test": int(self.test.size)}


def make_folds(ts: np.ndarray, train: Size = 53, val: Size = 7, test: Size = 7, step: Size | None = None, *,
               embargo: Size = 0, unit: Literal["auto", "days", "time", "events"] = "auto",
               allow_partial: bool = False) -> list[WFold]:
    """Walk-forward folds over sorted int64 ns ``ts`` (see the module docstring)."""
    ts = np.asarray(ts, dtype=np.int64)
    if ts.size == 0:
        return []
    if np.any(np.diff(ts) < 0):
        raise ValueError("timestamps must be sorted ascending")
    step = test if step is None else step
    sizes = (train, val, test, step)
    if unit == "auto":
        unit = "days" if all(isinstance(x, int) and not isinstance(x, bool) for x in sizes) else "time"
    if unit == "events":
        pos = np.arange(ts.size, dtype=np.int64)
        tr, va, te, st, em = (int(x) for x in (*sizes, embargo))  # type: ignore[arg-type]
        bounds = _windows(0, ts.size, tr, va, te, st, em, allow_partial)
        return _renumber([_fold(0, ts, pos, b) for b in bounds if _nonempty(pos, b)])
    if unit == "days":
        day = ts // NS_PER_DAY
        days = np.unique(day)
        tr, va, te, st, em = (int(x) for x in (*sizes, embargo))  # type: ignore[arg-type]
        if min(tr, va, te, st) < 1 or em < 0:
            raise ValueError("train, val, test and step must be >= 1 day, embargo >= 0")
        dpos = np.searchsorted(days, day)  # day position of each row
        bounds = _windows(0, days.size, tr, va, te, st, em, allow_partial)
        out = []
        for i, b in enumerate(bounds):
            if not _nonempty(dpos, b):
                continue
            f = _fold(i, ts, dpos, b)
            mid = [(int(days[x]) if x < days.size else int(days[-1]) + 1 + x - days.size) * NS_PER_DAY for x in b]
            out.append(WFold(len(out), f.train, f.val, f.test, *mid))  # bounds at UTC midnights
        return out

    def ns(x: Size) -> int:
        return int(x) * NS_PER_DAY if isinstance(x, int) else _duration_ns(x)

    tr, va, te, st = (ns(x) for x in sizes)
    em = ns(embargo) if embargo else 0
    bounds = _windows(int(ts[0]), int(ts[-1]) + 1, tr, va, te, st, em, allow_partial)
    return _renumber([_fold(0, ts, ts, b) for b in bounds if _nonempty(ts, b)])


def _renumber(folds: list[WFold]) -> list[WFold]:
    return [WFold(i, *(getattr(f, k) for k in ("train", "val", "test", "train_start", "train_end", "val_start",
                                             "val_end", "test_start", "test_end"))) for i, f in enumerate(folds)]


def _windows(start: int, stop: int, tr: int, va: int, te: int, st: int, em: int, allow_partial: bool
             ) -> list[tuple[int, int, int, int, int, int]]:
    out = []
    a = start
    while True:
        b = a + tr
        c = b + em
        d = c + va
        e = d + em
        f = e + te
        if e >= stop or (f > stop and not allow_partial):
            break
        out.append((a, b, c, d, e, min(f, stop)))
        a += st
    return out


def _nonempty(key: np.ndarray, b: tuple[int, ...]) -> bool:
    return all(np.searchsorted(key, b[2 * k + 1], "left") > np.searchsorted(key, b[2 * k], "left") for k in range(3))


def _fold(i: int, ts: np.ndarray, key: np.ndarray, b: tuple[int, int, int, int, int, int]) -> WFold:
    idx = [np.arange(np.searchsorted(key, b[2 * k], "left"), np.searchsorted(key, b[2 * k + 1], "left"))
           for k in range(3)]
    if key is ts:
        bounds = b
    else:  # events: bounds in ns of the first row of each window and the row after the last
        def at(p: int) -> int:
            return int(ts[p]) if p < ts.size else int(ts[-1]) + 1
        bounds = tuple(at(int(np.searchsorted(key, x, "left"))) for x in b)
    return WFold(i, *idx, *bounds)  # type: ignore[arg-type]


def purge(y: np.ndarray, label_end: np.ndarray, next_start: int) -> np.ndarray:
    """A copy of ``y`` with NaN where the label is only known at or after ``next_start``."""
    out = np.array(y, dtype=np.float64, copy=True)
    out[np.asarray(label_end) >= next_start] = np.nan
    return out


def check_fold(fold: WFold, ts: np.ndarray) -> None:
    """Raise :class:`LeakageError` unless the windows are disjoint and in time order."""
    for a, b, name in ((fold.train, fold.val, "train/val"), (fold.val, fold.test, "val/test")):
        if a.size and b.size and (a.max() >= b.min() or ts[a].max() >= ts[b].min()):
            raise LeakageError(f"fold {fold.index}: {name} windows overlap")


def assert_not_peeking(model: Any, fold: WFold) -> None:
    """Refuse to score ``model`` on ``fold``'s test window if it learned from data at or after its start."""
    tw = getattr(model, "train_window", None)
    if tw is None:
        if getattr(model, "probabilistic", True) or getattr(model, "kind", "") == "majority":
            raise LeakageError(f"{getattr(model, 'kind', model)}: no training window recorded; fit it through "
                               "the walk-forward (flowsense.models.evaluate.fit_model) before scoring")
        return
    if tw[1] >= fold.test_start:
        raise LeakageError(f"{getattr(model, 'kind', model)}: trained on data up to {iso(int(tw[1]))}, which reaches "
                           f"into fold {fold.index}'s test window starting {iso(fold.test_start)}")
