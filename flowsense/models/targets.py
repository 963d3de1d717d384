"""Prediction targets: direction of the next mid-price move and at fixed horizons.

Every target is a float array with ``1.0`` (up), ``0.0`` (down) or ``NaN`` (not scored), one value per
book event, plus the time (ns) at which the label becomes known (``label_end``), used by the walk-forward
to purge training rows whose label overlaps a later window.

* ``next_move``: for event ``t`` with mid ``m_t`` (after the event), the sign of ``m_j - m_t`` where ``j``
  is the first later event whose mid differs from ``m_t``. Events with no later change are not scored.
  ``label_end = ts[j]``.
* time horizon ``h`` (``100ms``, ``500ms``, ``1s``, ``10s``): sign of ``m(t + h) - m_t`` with the as-of mid
  of :func:`flowsense.features.labels.label_arrays`; scored only when the mid moved (return != 0) and
  ``t + h`` is within the day. ``label_end = ts_t + h``.
* event horizon ``k`` (``10ev``, ``100ev``): sign of ``m_{t+k} - m_t``, scored when it moved;
  ``label_end = ts[t + k]``.

A missing mid (one side of the book empty) is carried forward from the last defined one for the future
side of the comparison; an event whose own mid is missing is never scored.
"""

from __future__ import annotations

import numpy as np

from flowsense.features.labels import LabelParams, horizon_ns, label_arrays

HORIZONS: tuple[str, ...] = ("next_move", "100ms", "500ms", "1s", "10s", "10ev", "100ev")
"""Every target name, in report order."""


def _ffill(x: np.ndarray) -> np.ndarray:
    ok = np.isfinite(x)
    idx = np.where(ok, np.arange(x.size), 0)
    np.maximum.accumulate(idx, out=idx)
    out = x[idx]
    if x.size and not ok[0]:
        first = np.argmax(ok) if ok.any() else x.size
        out[:first] = np.nan
    return out


def next_move(ts: np.ndarray, mid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(y, label_end)`` of the next-move target (see the module docstring), vectorized."""
    ts = np.asarray(ts, dtype=np.int64)
    m = _ffill(np.asarray(mid, dtype=np.float64))
    n = m.size
    y = np.full(n, np.nan)
    end = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    if n < 2:
        return y, end
    with np.errstate(invalid="ignore"):
        changed = np.flatnonzero(np.isfinite(m[1:]) & np.isfinite(m[:-1]) & (m[1:] != m[:-1])) + 1
    k = np.searchsorted(changed, np.arange(n), side="right")
    has = k < changed.size
    j = changed[np.minimum(k, max(changed.size - 1, 0))] if changed.size else np.zeros(n, dtype=np.int64)
    own = np.isfinite(np.asarray(mid, dtype=np.float64))
    ok = has & own
    y[ok] = (m[j[ok]] > m[ok]).astype(np.float64)
    end[ok] = ts[j[ok]]
    return y, end


def targets(ts: np.ndarray, mid: np.ndarray, horizons: tuple[str, ...] = HORIZONS
            ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{horizon: (y, label_end)}`` for one day's events sorted by ``seq`` (``ts`` int64 ns)."""
    ts = np.asarray(ts, dtype=np.int64)
    mid = np.asarray(mid, dtype=np.float64)
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    time_h = tuple(h for h in horizons if h not in ("next_move",) and not h.endswith("ev"))
    ev_h = tuple(int(h[:-2]) for h in horizons if h.endswith("ev"))
    rets = label_arrays(ts, _ffill(mid), LabelParams(time_horizons=time_h, event_horizons=ev_h)) if ts.size else {}
    own = np.isfinite(mid)
    n = ts.size
    for h in horizons:
        if h == "next_move":
            out[h] = next_move(ts, mid)
            continue
        r = rets.get(h, np.full(n, np.nan))
        ok = np.isfinite(r) & (r != 0) & own
        y = np.where(ok, (r > 0).astype(np.float64), np.nan)
        end = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
        if h.endswith("ev"):
            k = int(h[:-2])
            end[: max(n - k, 0)] = ts[k:]
        else:
            end = ts + horizon_ns(h)
        end[~ok] = np.iinfo(np.int64).max
        out[h] = (y, end)
    return out


def horizon_kind(h: str) -> str:
    """``"next_move"``, ``"time"`` or ``"events"``."""
    if h == "next_move":
        return h
    return "events" if h.endswith("ev") else "time"
