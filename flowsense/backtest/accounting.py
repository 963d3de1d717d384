"""Compiled accounting of a backtest: cash, position, average cost, realized PnL, fees, turnover, and
the equity curve's snapshots.

The arithmetic is :func:`flowsense.trading.account.position_after_fill` /
:func:`~flowsense.trading.account.cash_after_fill`, the same functions the live worker's
:class:`~flowsense.trading.Account` runs as plain Python, so a backtest and a replay of its fills agree
bit for bit. ``multiplier`` turns price x units into currency (50 for CME ES, 1 for equities).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowsense.trading.account import cash_after_fill, position_after_fill


@njit(cache=True)
def book_fill(sim, side, qty, price, notional, fee):
    """Book one fill of ``qty`` units at ``price`` (``notional`` = price x qty, before the multiplier)."""
    mult = sim.multiplier
    sim.cash = cash_after_fill(sim.cash, side, notional, fee, mult)
    sim.fees += fee
    sim.turnover += notional * mult
    sim.pos, sim.avg, sim.realized = position_after_fill(sim.pos, sim.avg, sim.realized, side, qty, price, mult)


@njit(cache=True)
def _grow_equity(sim):
    n = sim.eq_ts.size
    ts = np.zeros(2 * n + 4, np.int64)
    ts[:n] = sim.eq_ts
    f = np.zeros((2 * n + 4, 3), np.float64)
    f[:n] = sim.eq_f
    sim.eq_ts = ts
    sim.eq_f = f


@njit(cache=True)
def snapshot(sim, t):
    """One equity-curve row at ``t``: cash, position (units), last mid."""
    n = sim.n_eq
    if n >= sim.eq_ts.size:
        _grow_equity(sim)
    sim.eq_ts[n] = t
    eq_f = sim.eq_f
    eq_f[n, 0] = sim.cash
    eq_f[n, 1] = sim.pos
    eq_f[n, 2] = sim.last_mid
    sim.n_eq = n + 1
