"""Numba exchange core of the event-driven engine: the simulation state and the matching.

All of one run lives in a single :class:`Sim` (a Numba structref: named, mutable fields, passed to
compiled code as one pointer): the market data (prices in integer units, ``scale`` per currency unit),
the run's settings and execution-model parameters, and the mutable state (scalars and the order,
request, report, fill, resting-order and equity tables, which grow inside the core when full).

Two clocks: the exchange applies market event ``j`` at ``ts[j]``; the strategy receives event ``i`` at
local time ``ts[i] + feed``. Before delivering event ``i`` the exchange is advanced to
``ts[i] + feed - min(response latency)`` so every report that can reach the strategy by then exists
(:func:`flowsense.backtest.builtins.run_events`, the one loop both the compiled path and the Python
driver call). An order arriving at
exchange time ``a`` is processed after every market event with ``ts <= a``.

The execution models' math lives in :mod:`flowsense.backtest.models` (``queue``, ``latency``, ``fees``,
``slippage``); this module only calls their functions. Cash and position are
:mod:`flowsense.backtest.accounting`.
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.experimental import structref

from flowsense.backtest.accounting import book_fill, snapshot
from flowsense.backtest.models.fees import fill_fee
from flowsense.backtest.models.latency import draw_latency, session_arrival
from flowsense.backtest.models.queue import queue_on_cancel, queue_on_execution
from flowsense.backtest.models.slippage import taker_price, taker_take

INF = np.int64(2**62)

# event codes
EV_ADD, EV_CANCEL, EV_DELETE, EV_EXEC, EV_HIDDEN, EV_OTHER = 0, 1, 2, 3, 4, 5

# order table: integer columns (oi) and float columns (of)
(O_SIDE, O_TYPE, O_PX, O_SIZE, O_LEAVES, O_STATUS, O_TSSUB, O_TSEX, O_TSDONE, O_REASON, O_KSTATUS,
 O_FILLED) = range(12)
OI_COLS = 12
OF_FRONT, OF_NOTIONAL, OF_FEES, OF_FRONT0 = range(4)
OF_COLS = 4
# requests on the order-entry session (rq)
R_ARR, R_KIND, R_OIDX, R_SENT = range(4)
RQ_COLS = 4
# reports to the strategy (rp)
P_DLV, P_KIND, P_OIDX, P_QTY, P_FIDX, P_TSX, P_REASON, P_STATUS, P_FILLED, P_LEAVES = range(10)
RP_COLS = 10
# fills: integer (fi) and float (ff) columns
FI_TS, FI_OIDX, FI_SIDE, FI_QTY, FI_LIQ, FI_BOOKPX = range(6)
FI_COLS = 6
FF_PX, FF_FEE, FF_SLIP = range(3)
FF_COLS = 3

# order types / statuses / reasons / report kinds (mirror flowsense.trading.orders)
T_MARKET, T_LIMIT, T_IOC = 0, 1, 2
ST_NEW, ST_ACKED, ST_PARTIAL, ST_FILLED, ST_CANCELLED, ST_REJECTED = 0, 1, 2, 3, 4, 5
RS_NONE, RS_MAXPOS, RS_NOBOOK, RS_UNKNOWN, RS_NOLIQ, RS_BADPX, RS_CLOSED = 0, 1, 2, 3, 4, 5, 6
K_ACK, K_FILL, K_REJECTED, K_CANCELLED, K_CANCEL_REJECTED = 0, 1, 2, 3, 4


# --------------------------------------------------------------------------------------- the state


@structref.register
class SimType(types.StructRef):
    def preprocess_fields(self, fields):
        return tuple((name, types.unliteral(typ)) for name, typ in fields)


class Sim(structref.StructRefProxy):
    """One run's market data, settings and state (see the module docstring). Build with :func:`new_sim`."""


SIM_FIELDS = (
    # market data: ts, event type/side/price/size of each event, the book after it ((n, levels) arrays);
    # the first n_ev rows are the data (all of them in a backtest; the ticks so far in the paper broker)
    "ts", "etype", "eside", "epx", "esz", "apx", "asz", "bpx", "bsz", "n_ev",
    # settings
    "feed", "resp_min", "eq_interval", "max_pos", "scale", "multiplier", "sessions",
    # execution models (kind codes + parameters; see flowsense.backtest.models)
    "queue_kind", "queue_p", "fee_kind", "fee_p", "slip_kind", "slip_p", "lat_order", "lat_resp", "lat_prof",
    # cursors and counters: next market event, next event to deliver, table fill levels, session clocks
    "j", "i", "n_ord", "n_req", "req_cur", "n_rep", "rep_cur", "n_fill", "n_rest", "n_eq", "last_arr",
    "last_dlv", "done",
    # accounting: position (exchange truth), position as known to the strategy, cash, fees, ...
    "pos", "kpos", "cash", "realized", "avg", "fees", "turnover", "last_mid",
    # tables
    "oi", "of", "rq", "rp", "fi", "ff", "rest", "eq_ts", "eq_f",
    # built-in strategy state (named slots in flowsense.backtest.builtins) and per-event scratch
    "sti", "stf", "scratch",
)
structref.define_proxy(Sim, SimType, list(SIM_FIELDS))


@njit(cache=True)
def _grown(a):
    """``a`` with twice the rows (the first rows copied, the rest zero)."""
    b = np.zeros((a.shape[0] * 2,) + a.shape[1:], a.dtype)  # noqa: RUF005 (Numba: no starred tuple displays)
    b[: a.shape[0]] = a
    return b


@njit(cache=True)
def book_arrays(ask_px, ask_sz, bid_px, bid_sz, scale):
    """Per-level book columns -> ask/bid price units and sizes, each an (n, levels) int64 array.

    Inputs: tuples of ``levels`` columns, prices float64 (NaN = null), sizes int64 (null = 0). A level is
    empty when its price is null or its size <= 0: empty asks get price ``INF`` (so "best ask <= x" is
    never true), empty bids price 0, both size 0. Units are ``round(price * scale)``, half to even (as
    Polars' ``round``). The outputs are column-major (Fortran order): every pass here streams, and the
    engine's per-event reads of the best level (column 0) are contiguous."""
    levels = len(ask_px)
    n = ask_px[0].size
    apx = np.empty((levels, n), np.int64).T
    asz = np.empty((levels, n), np.int64).T
    bpx = np.empty((levels, n), np.int64).T
    bsz = np.empty((levels, n), np.int64).T
    for k in range(levels):
        p, q = ask_px[k], ask_sz[k]
        for r in range(n):
            if np.isnan(p[r]) or q[r] <= 0:
                apx[r, k] = INF
                asz[r, k] = 0
            else:
                apx[r, k] = np.int64(np.rint(p[r] * scale))
                asz[r, k] = q[r]
        p, q = bid_px[k], bid_sz[k]
        for r in range(n):
            if np.isnan(p[r]) or q[r] <= 0:
                bpx[r, k] = 0
                bsz[r, k] = 0
            else:
                bpx[r, k] = np.int64(np.rint(p[r] * scale))
                bsz[r, k] = q[r]
    return apx, asz, bpx, bsz


# ------------------------------------------------------------------------------------------ helpers


@njit(cache=True, inline="always")
def _level_qty(pxrow, szrow, px):
    for k in range(pxrow.size):
        if szrow[k] > 0 and pxrow[k] == px:
            return szrow[k]
    return 0


@njit(cache=True, inline="always")
def is_open(sessions, t):
    """True when ``t`` is inside one of the ``[start, end)`` pairs of ``sessions`` (flat, sorted); always
    true without sessions."""
    if sessions.size == 0:
        return True
    k = np.searchsorted(sessions, t, side="right")
    return k % 2 == 1


@njit(cache=True)
def _report(sim, tsx, kind, o, qty, fidx, reason):
    n = sim.n_rep
    if n >= sim.rp.shape[0]:
        sim.rp = _grown(sim.rp)
    rp = sim.rp
    oi = sim.oi
    dlv = session_arrival(tsx, draw_latency(sim.lat_resp, sim.lat_prof, tsx), sim.last_dlv)
    sim.last_dlv = dlv
    rp[n, P_DLV] = dlv
    rp[n, P_KIND] = kind
    rp[n, P_OIDX] = o
    rp[n, P_QTY] = qty
    rp[n, P_FIDX] = fidx
    rp[n, P_TSX] = tsx
    rp[n, P_REASON] = reason
    rp[n, P_STATUS] = oi[o, O_STATUS]
    rp[n, P_FILLED] = oi[o, O_FILLED]
    rp[n, P_LEAVES] = oi[o, O_LEAVES]
    sim.n_rep = n + 1


@njit(cache=True)
def _fill(sim, o, qty, book_px, liq, tsx):
    """Fill ``qty`` of order ``o`` at the level priced ``book_px`` (units); ``liq`` 0 maker / 1 taker."""
    oi, of = sim.oi, sim.of
    side = oi[o, O_SIDE]
    scale = sim.scale
    if liq == 1:
        fpx = taker_price(sim.slip_kind, sim.slip_p, side, book_px, scale)
        slip = (fpx - book_px / scale) * side * qty * sim.multiplier
    else:
        fpx = book_px / scale
        slip = 0.0
    notional = fpx * qty
    fee = fill_fee(sim.fee_kind, sim.fee_p, liq, notional * sim.multiplier, qty)
    book_fill(sim, side, qty, fpx, notional, fee)
    oi[o, O_LEAVES] -= qty
    oi[o, O_FILLED] += qty
    of[o, OF_NOTIONAL] += notional
    of[o, OF_FEES] += fee
    if oi[o, O_LEAVES] == 0:
        oi[o, O_STATUS] = ST_FILLED
        oi[o, O_TSDONE] = tsx
    else:
        oi[o, O_STATUS] = ST_PARTIAL
    n = sim.n_fill
    if n >= sim.fi.shape[0]:
        sim.fi = _grown(sim.fi)
        sim.ff = _grown(sim.ff)
    fi, ff = sim.fi, sim.ff
    fi[n, FI_TS] = tsx
    fi[n, FI_OIDX] = o
    fi[n, FI_SIDE] = side
    fi[n, FI_QTY] = qty
    fi[n, FI_LIQ] = liq
    fi[n, FI_BOOKPX] = book_px
    ff[n, FF_PX] = fpx
    ff[n, FF_FEE] = fee
    ff[n, FF_SLIP] = slip
    sim.n_fill = n + 1
    _report(sim, tsx, K_FILL, o, qty, n, RS_NONE)


@njit(cache=True)
def _finish(sim, o, status, reason, tsx, kind):
    oi = sim.oi
    oi[o, O_STATUS] = status
    oi[o, O_REASON] = reason
    oi[o, O_TSDONE] = tsx
    _report(sim, tsx, kind, o, 0, -1, reason)


@njit(cache=True)
def _remove_rest(sim, o):
    rest = sim.rest
    n = sim.n_rest
    for k in range(n):
        if rest[k] == o:
            rest[k] = rest[n - 1]
            sim.n_rest = n - 1
            return True
    return False


# --------------------------------------------------------------------------------------- matching


@njit(cache=True)
def _arrive(sim, r):
    """Process request ``r`` (new order or cancel) at its exchange arrival time."""
    apx, asz, bpx, bsz = sim.apx, sim.asz, sim.bpx, sim.bsz
    oi, of, rq = sim.oi, sim.of, sim.rq
    a = rq[r, R_ARR]
    o = rq[r, R_OIDX]
    j = sim.j
    if rq[r, R_KIND] == 1:  # cancel
        if (oi[o, O_STATUS] == ST_ACKED or oi[o, O_STATUS] == ST_PARTIAL) and _remove_rest(sim, o):
            _finish(sim, o, ST_CANCELLED, RS_NONE, a, K_CANCELLED)
            return
        _report(sim, a, K_CANCEL_REJECTED, o, 0, -1, RS_UNKNOWN)
        return
    oi[o, O_TSEX] = a
    if j == 0:
        _finish(sim, o, ST_REJECTED, RS_NOBOOK, a, K_REJECTED)
        return
    if not is_open(sim.sessions, a):
        _finish(sim, o, ST_REJECTED, RS_CLOSED, a, K_REJECTED)
        return
    row = j - 1
    side = oi[o, O_SIDE]
    size = oi[o, O_SIZE]
    typ = oi[o, O_TYPE]
    lim = oi[o, O_PX]
    if typ != T_MARKET and lim <= 0:
        _finish(sim, o, ST_REJECTED, RS_BADPX, a, K_REJECTED)
        return
    # inventory limit: worst case if every open order on that side fills
    rest = sim.rest
    open_same = 0
    for k in range(sim.n_rest):
        q = rest[k]
        if oi[q, O_SIDE] == side:
            open_same += oi[q, O_LEAVES]
    pos = sim.pos
    maxpos = sim.max_pos
    if (side > 0 and pos + open_same + size > maxpos) or (side < 0 and pos - open_same - size < -maxpos):
        _finish(sim, o, ST_REJECTED, RS_MAXPOS, a, K_REJECTED)
        return
    oi[o, O_STATUS] = ST_ACKED
    _report(sim, a, K_ACK, o, 0, -1, RS_NONE)
    if side > 0:
        opx, osz = apx[row], asz[row]
    else:
        opx, osz = bpx[row], bsz[row]
    walk = sim.slip_p[1]
    for k in range(opx.size):
        leaves = oi[o, O_LEAVES]
        if leaves == 0:
            break
        p = opx[k]
        q = osz[k]
        if q <= 0:
            break
        if typ != T_MARKET and ((side > 0 and p > lim) or (side < 0 and p < lim)):
            break
        _fill(sim, o, taker_take(sim.slip_p, leaves, q), p, 1, a)
        if walk == 0:
            break
    if oi[o, O_LEAVES] > 0:
        if typ == T_LIMIT:
            front = _level_qty(bpx[row], bsz[row], lim) if side > 0 else _level_qty(apx[row], asz[row], lim)
            of[o, OF_FRONT] = front
            of[o, OF_FRONT0] = front
            n = sim.n_rest
            if n >= sim.rest.shape[0]:
                sim.rest = _grown(sim.rest)
            sim.rest[n] = o
            sim.n_rest = n + 1
        else:
            _finish(sim, o, ST_CANCELLED, RS_NOLIQ, a, K_CANCELLED)


@njit(cache=True)
def _match_resting(sim, j):
    """Market event ``j`` against our resting orders: queue updates and maker fills."""
    apx, asz, bpx, bsz = sim.apx, sim.asz, sim.bpx, sim.bsz
    oi, of, rest = sim.oi, sim.of, sim.rest
    et = sim.etype[j]
    es = sim.eside[j]
    ep = sim.epx[j]
    ez = sim.esz[j]
    t = sim.ts[j]
    k = sim.n_rest - 1
    while k >= 0:
        o = rest[k]
        side = oi[o, O_SIDE]
        p = oi[o, O_PX]
        if es == side:
            through = (side > 0 and ep < p) or (side < 0 and ep > p)
            if et == EV_EXEC:
                if ep == p:
                    front, avail = queue_on_execution(of[o, OF_FRONT], ez)
                    of[o, OF_FRONT] = front
                    q = min(oi[o, O_LEAVES], avail)
                    if q > 0:
                        _fill(sim, o, q, p, 0, t)
                elif through:
                    _fill(sim, o, oi[o, O_LEAVES], p, 0, t)
            elif et == EV_HIDDEN:
                if through:
                    _fill(sim, o, oi[o, O_LEAVES], p, 0, t)
            elif et in (EV_CANCEL, EV_DELETE) and ep == p:
                newq = _level_qty(bpx[j], bsz[j], p) if side > 0 else _level_qty(apx[j], asz[j], p)
                of[o, OF_FRONT] = queue_on_cancel(sim.queue_kind, sim.queue_p, of[o, OF_FRONT], newq, ez)
        if oi[o, O_LEAVES] > 0:
            if side > 0:
                if asz[j, 0] > 0 and apx[j, 0] <= p:
                    _fill(sim, o, oi[o, O_LEAVES], p, 0, t)
            elif bsz[j, 0] > 0 and bpx[j, 0] >= p:
                _fill(sim, o, oi[o, O_LEAVES], p, 0, t)
        if oi[o, O_LEAVES] == 0:
            n = sim.n_rest
            rest[k] = rest[n - 1]
            sim.n_rest = n - 1
        k -= 1


@njit(cache=True)
def _advance(sim, bound):
    """Run the exchange through every market event and order arrival up to ``bound`` (inclusive): the
    end-of-run counterpart of the per-event step in :func:`flowsense.backtest.builtins.run_events`."""
    ts, apx, asz, bpx, bsz = sim.ts, sim.apx, sim.asz, sim.bpx, sim.bsz
    n_ev = sim.n_ev
    interval = sim.eq_interval
    while True:
        j = sim.j
        nm = ts[j] if j < n_ev else INF
        r = sim.req_cur
        na = sim.rq[r, R_ARR] if r < sim.n_req else INF
        if na < nm:
            if na > bound:
                return
            sim.req_cur = r + 1
            _arrive(sim, r)
        else:
            if nm >= INF or nm > bound:
                return
            t = ts[j]
            if sim.n_rest > 0 and is_open(sim.sessions, t):
                _match_resting(sim, j)
            if asz[j, 0] > 0 and bsz[j, 0] > 0:
                sim.last_mid = 0.5 * (apx[j, 0] + bpx[j, 0]) / sim.scale
            sim.j = j + 1
            if j == n_ev - 1 or interval <= 0 or ts[j + 1] // interval != t // interval:
                snapshot(sim, t)


@njit(cache=True)
def _deliver_due(sim, t):
    rp, oi = sim.rp, sim.oi
    c = 0
    while sim.rep_cur < sim.n_rep and rp[sim.rep_cur, P_DLV] <= t:
        k = sim.rep_cur
        o = rp[k, P_OIDX]
        if rp[k, P_KIND] == K_FILL:
            sim.kpos += oi[o, O_SIDE] * rp[k, P_QTY]
        if rp[k, P_KIND] != K_CANCEL_REJECTED:
            oi[o, O_KSTATUS] = rp[k, P_STATUS]
        sim.rep_cur = k + 1
        c += 1
    return c


@njit(cache=True)
def _request(sim, kind, o, sent):
    r = sim.n_req
    if r >= sim.rq.shape[0]:
        sim.rq = _grown(sim.rq)
    rq = sim.rq
    arr = session_arrival(sent, draw_latency(sim.lat_order, sim.lat_prof, sent), sim.last_arr)
    sim.last_arr = arr
    rq[r, R_ARR] = arr
    rq[r, R_KIND] = kind
    rq[r, R_OIDX] = o
    rq[r, R_SENT] = sent
    sim.n_req = r + 1


@njit(cache=True)
def submit(sim, side, typ, px, size, sent):
    """Queue a new order on the order-entry session; returns its index (order id = index + 1)."""
    o = sim.n_ord
    if o >= sim.oi.shape[0]:
        sim.oi = _grown(sim.oi)
        sim.of = _grown(sim.of)
    oi, of = sim.oi, sim.of
    oi[o, O_SIDE] = side
    oi[o, O_TYPE] = typ
    oi[o, O_PX] = px
    oi[o, O_SIZE] = size
    oi[o, O_LEAVES] = size
    oi[o, O_STATUS] = ST_NEW
    oi[o, O_TSSUB] = sent
    oi[o, O_TSEX] = -1
    oi[o, O_TSDONE] = -1
    oi[o, O_REASON] = RS_NONE
    oi[o, O_KSTATUS] = ST_NEW
    oi[o, O_FILLED] = 0
    of[o, OF_FRONT] = 0.0
    of[o, OF_NOTIONAL] = 0.0
    of[o, OF_FEES] = 0.0
    of[o, OF_FRONT0] = -1.0
    sim.n_ord = o + 1
    _request(sim, 0, o, sent)
    return o


@njit(cache=True)
def cancel(sim, o, sent):
    """Queue a cancel of order index ``o`` on the order-entry session."""
    _request(sim, 1, o, sent)


@njit(cache=True)
def finish_run(sim):
    """After the last strategy step: run the exchange to the end, snapshot, deliver everything."""
    _advance(sim, INF - 1)
    if sim.done == 0:
        last = max(sim.ts[sim.n_ev - 1], sim.last_arr)
        snapshot(sim, last)
        sim.done = 1
    return _deliver_due(sim, INF)


# ------------------------------------------------------------ entry points for the Python driver


@njit(cache=True)
def known(sim):
    """``(position as known to the strategy, number of orders, report cursor)``."""
    return sim.kpos, sim.n_ord, sim.rep_cur


@njit(cache=True)
def known_status(sim, o):
    return sim.oi[o, O_KSTATUS]


@njit(cache=True)
def set_market(sim, ts, etype, eside, epx, esz, apx, asz, bpx, bsz, n_ev):
    """Point ``sim`` at (larger) market-data arrays holding ``n_ev`` rows (the paper broker's ticks)."""
    sim.ts, sim.etype, sim.eside, sim.epx, sim.esz = ts, etype, eside, epx, esz
    sim.apx, sim.asz, sim.bpx, sim.bsz = apx, asz, bpx, bsz
    sim.n_ev = n_ev


@njit(cache=True)
def set_rows(sim, n_ev):
    """The market data now holds ``n_ev`` rows."""
    sim.n_ev = n_ev


@njit(cache=True)
def account(sim):
    """Exchange-side ``(position, cash, realized, fees, avg_price, last mid, n_fill, n_rep, n_eq)``."""
    return (sim.pos, sim.cash, sim.realized, sim.fees, sim.avg, sim.last_mid, sim.n_fill, sim.n_rep, sim.n_eq)


@njit(cache=True)
def keep_last_equity_row(sim):
    """Drop all but the last equity row (a long-running paper session keeps memory bounded)."""
    n = sim.n_eq
    if n > 1:
        sim.eq_ts[0] = sim.eq_ts[n - 1]
        sim.eq_f[0] = sim.eq_f[n - 1]
        sim.n_eq = 1


@njit(cache=True)
def reject_local(sim, side, typ, px, size, local):
    """Record an order refused before it was sent (risk checks): REJECTED at once, known as such.
    Returns its index (order id = index + 1)."""
    o = sim.n_ord
    if o >= sim.oi.shape[0]:
        sim.oi = _grown(sim.oi)
        sim.of = _grown(sim.of)
    oi, of = sim.oi, sim.of
    oi[o, :] = 0
    oi[o, O_SIDE] = side
    oi[o, O_TYPE] = typ
    oi[o, O_PX] = px
    oi[o, O_SIZE] = size
    oi[o, O_STATUS] = ST_REJECTED
    oi[o, O_KSTATUS] = ST_REJECTED
    oi[o, O_TSSUB] = local
    oi[o, O_TSEX] = -1
    oi[o, O_TSDONE] = local
    of[o, :] = 0.0
    of[o, OF_FRONT0] = -1.0
    sim.n_ord = o + 1
    return o


@njit(cache=True)
def set_cursor(sim, i):
    """The next event the strategy is to receive."""
    sim.i = i


@njit(cache=True)
def seed(value):
    np.random.seed(value)


@njit(cache=True)
def tables(sim):
    """The filled part of every table plus the realized PnL, for the result frames."""
    return (sim.oi[: sim.n_ord], sim.of[: sim.n_ord], sim.rp[: sim.n_rep], sim.fi[: sim.n_fill],
            sim.ff[: sim.n_fill], sim.eq_ts[: sim.n_eq], sim.eq_f[: sim.n_eq], sim.realized)


@njit(cache=True)
def new_sim(ts, etype, eside, epx, esz, apx, asz, bpx, bsz, feed, resp_min, eq_interval, max_pos, scale,
            multiplier, sessions, queue_kind, queue_p, fee_kind, fee_p, slip_kind, slip_p, lat_order, lat_resp,
            lat_prof, cash, n_eq, n_buf):
    """A fresh :class:`Sim` (empty tables of ``n_buf`` rows; ``n_eq`` equity rows)."""
    z = np.int64(0)
    return Sim(ts, etype, eside, epx, esz, apx, asz, bpx, bsz, np.int64(ts.size),
               np.int64(feed), np.int64(resp_min), np.int64(eq_interval), np.int64(max_pos), np.float64(scale),
               np.float64(multiplier), sessions,
               np.int64(queue_kind), queue_p, np.int64(fee_kind), fee_p, np.int64(slip_kind), slip_p,
               lat_order, lat_resp, lat_prof,
               z, z, z, z, z, z, z, z, z, z, z, z, z,
               z, z, np.float64(cash), 0.0, 0.0, 0.0, 0.0, np.nan,
               np.zeros((n_buf, OI_COLS), np.int64), np.zeros((n_buf, OF_COLS), np.float64),
               np.zeros((n_buf, RQ_COLS), np.int64), np.zeros((4 * n_buf, RP_COLS), np.int64),
               np.zeros((2 * n_buf, FI_COLS), np.int64), np.zeros((2 * n_buf, FF_COLS), np.float64),
               np.zeros(n_buf, np.int64), np.zeros(n_eq, np.int64), np.zeros((n_eq, 3), np.float64),
               np.zeros(16, np.int64), np.zeros(16, np.float64), np.zeros(ts.size, np.float64))
