"""Numba core of the event-driven engine: exchange simulation, accounting and built-in strategies.

All state lives in plain arrays bundled in three tuples so that a run can stop (to grow a buffer, or to
hand control to a Python strategy) and resume exactly where it stopped:

* ``md``  = (ts, etype, eside, epx, esz, apx, asz, bpx, bsz) - market data, prices in integer ticks;
* ``st``  = (si, sf, oi, of, rq, rp, fi, ff, rest, eq_ts, eq_f) - mutable simulation state;
* ``cfg`` = (cfg_i, cfg_f, lat_order, lat_resp, lat_prof) - model codes and parameters.

Two clocks: the exchange applies market event ``j`` at ``ts[j]``; the strategy receives event ``i`` at
local time ``ts[i] + feed``. Before delivering event ``i`` the exchange is advanced to
``ts[i] + feed - min(response latency)`` so every report that can reach the strategy by then exists. An
order arriving at exchange time ``a`` is processed after every market event with ``ts <= a``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowsense.trading.strategies.market_maker import mm_quotes
from flowsense.trading.strategies.ofi_threshold import ofi_increment, ofi_order, ofi_window

INF = np.int64(2**62)

# event codes
EV_ADD, EV_CANCEL, EV_DELETE, EV_EXEC, EV_HIDDEN, EV_OTHER = 0, 1, 2, 3, 4, 5

# si: integer scalars
(S_J, S_NORD, S_NFILL, S_NREQ, S_REQCUR, S_NREP, S_REPCUR, S_POS, S_NREST, S_NEQ, S_I, S_LASTARR,
 S_LASTDLV, S_KPOS, S_DONE) = range(15)
SI_SIZE = 16
# sf: float scalars
F_CASH, F_REAL, F_AVG, F_FEES, F_TURN, F_LASTMID = range(6)
SF_SIZE = 8
# oi: order integer columns
(O_SIDE, O_TYPE, O_PX, O_SIZE, O_LEAVES, O_STATUS, O_TSSUB, O_TSEX, O_TSDONE, O_REASON, O_KSTATUS,
 O_FILLED) = range(12)
OI_COLS = 12
# of: order float columns
OF_FRONT, OF_NOTIONAL, OF_FEES, OF_FRONT0 = range(4)
OF_COLS = 4
# rq: requests on the order-entry session
R_ARR, R_KIND, R_OIDX, R_SENT = range(4)
RQ_COLS = 4
# rp: reports to the strategy
P_DLV, P_KIND, P_OIDX, P_QTY, P_FIDX, P_TSX, P_REASON, P_STATUS, P_FILLED, P_LEAVES = range(10)
RP_COLS = 10
# fi / ff: fills
FI_TS, FI_OIDX, FI_SIDE, FI_QTY, FI_LIQ, FI_BOOKPX = range(6)
FI_COLS = 6
FF_PX, FF_FEE, FF_SLIP = range(3)
FF_COLS = 3
# cfg_i / cfg_f
C_QUEUE, C_FEE, C_MAXPOS, C_FEED, C_RESPMIN, C_EQINT, C_WALK, C_SEED = range(8)
CI_SIZE = 8
CF_QPOW, CF_QSTOCH, CF_FMAKER, CF_FTAKER, CF_BPS, CF_SCALE = range(6)
CF_SIZE = 6

# order types / statuses / reasons / report kinds (mirror orders.py)
T_MARKET, T_LIMIT, T_IOC = 0, 1, 2
ST_NEW, ST_ACKED, ST_PARTIAL, ST_FILLED, ST_CANCELLED, ST_REJECTED = 0, 1, 2, 3, 4, 5
RS_NONE, RS_MAXPOS, RS_NOBOOK, RS_UNKNOWN, RS_NOLIQ, RS_BADPX = 0, 1, 2, 3, 4, 5
K_ACK, K_FILL, K_REJECTED, K_CANCELLED, K_CANCEL_REJECTED = 0, 1, 2, 3, 4

HEADROOM = 64


@njit(cache=True)
def book_arrays(ask_px, ask_sz, bid_px, bid_sz, scale):
    """Per-level book columns -> ask/bid price ticks and sizes, each an (n, levels) int64 array.

    Inputs: tuples of ``levels`` columns, prices float64 (NaN = null), sizes int64 (null = 0). A level is
    empty when its price is null or its size <= 0: empty asks get price ``INF`` (so "best ask <= x" is
    never true), empty bids price 0, both size 0. Ticks are ``round(price * scale)``, half to even (as
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


@njit(cache=True)
def _draw(samples, prof, t):
    n = samples.size
    if n == 1:
        return samples[0]
    if prof.size > 0:
        k = np.searchsorted(prof, t, side="right") - 1
        if k < 0:
            k = 0
        return samples[k]
    return samples[np.random.randint(0, n)]


@njit(cache=True)
def _level_qty(pxrow, szrow, px):
    for k in range(pxrow.size):
        if szrow[k] > 0 and pxrow[k] == px:
            return szrow[k]
    return 0


@njit(cache=True)
def _report(st, cfg, tsx, kind, o, qty, fidx, reason):
    si, rp, oi = st[0], st[5], st[2]
    n = si[S_NREP]
    if n >= rp.shape[0]:
        raise RuntimeError("report buffer full")
    dlv = tsx + _draw(cfg[3], cfg[4], tsx)
    if dlv < si[S_LASTDLV]:
        dlv = si[S_LASTDLV]
    si[S_LASTDLV] = dlv
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
    si[S_NREP] = n + 1


@njit(cache=True)
def _fill(st, cfg, o, qty, book_px, liq, tsx):
    si, sf, oi, of, fi, ff = st[0], st[1], st[2], st[3], st[6], st[7]
    cfg_i, cfg_f = cfg[0], cfg[1]
    side = oi[o, O_SIDE]
    bpx = book_px / cfg_f[CF_SCALE]
    if liq == 1:
        fpx = bpx * (1.0 + side * cfg_f[CF_BPS] * 1e-4)
        slip = (fpx - bpx) * side * qty
    else:
        fpx = bpx
        slip = 0.0
    notional = fpx * qty
    rate = cfg_f[CF_FTAKER] if liq == 1 else cfg_f[CF_FMAKER]
    fee = rate * notional if cfg_i[C_FEE] == 0 else rate * qty
    sf[F_CASH] -= side * notional + fee
    sf[F_FEES] += fee
    sf[F_TURN] += notional
    pos = si[S_POS]
    if pos == 0 or (pos > 0) == (side > 0):
        apos = abs(pos)
        sf[F_AVG] = (sf[F_AVG] * apos + fpx * qty) / (apos + qty)
    else:
        close = min(qty, abs(pos))
        sgn = 1.0 if pos > 0 else -1.0
        sf[F_REAL] += (fpx - sf[F_AVG]) * close * sgn
        if qty > close:
            sf[F_AVG] = fpx
        elif close == abs(pos):
            sf[F_AVG] = 0.0
    si[S_POS] = pos + side * qty
    oi[o, O_LEAVES] -= qty
    oi[o, O_FILLED] += qty
    of[o, OF_NOTIONAL] += notional
    of[o, OF_FEES] += fee
    if oi[o, O_LEAVES] == 0:
        oi[o, O_STATUS] = ST_FILLED
        oi[o, O_TSDONE] = tsx
    else:
        oi[o, O_STATUS] = ST_PARTIAL
    n = si[S_NFILL]
    if n >= fi.shape[0]:
        raise RuntimeError("fill buffer full")
    fi[n, FI_TS] = tsx
    fi[n, FI_OIDX] = o
    fi[n, FI_SIDE] = side
    fi[n, FI_QTY] = qty
    fi[n, FI_LIQ] = liq
    fi[n, FI_BOOKPX] = book_px
    ff[n, FF_PX] = fpx
    ff[n, FF_FEE] = fee
    ff[n, FF_SLIP] = slip
    si[S_NFILL] = n + 1
    _report(st, cfg, tsx, K_FILL, o, qty, n, RS_NONE)


@njit(cache=True)
def _finish(st, cfg, o, status, reason, tsx, kind):
    oi = st[2]
    oi[o, O_STATUS] = status
    oi[o, O_REASON] = reason
    oi[o, O_TSDONE] = tsx
    _report(st, cfg, tsx, kind, o, 0, -1, reason)


@njit(cache=True)
def _remove_rest(st, o):
    si, rest = st[0], st[8]
    n = si[S_NREST]
    for k in range(n):
        if rest[k] == o:
            rest[k] = rest[n - 1]
            si[S_NREST] = n - 1
            return True
    return False


@njit(cache=True)
def _arrive(md, st, cfg, r):
    """Process request ``r`` (new order or cancel) at its exchange arrival time."""
    _ts, apx, asz, bpx, bsz = md[0], md[5], md[6], md[7], md[8]
    si, oi, of, rq, rest = st[0], st[2], st[3], st[4], st[8]
    cfg_i = cfg[0]
    a = rq[r, R_ARR]
    o = rq[r, R_OIDX]
    j = si[S_J]
    if rq[r, R_KIND] == 1:  # cancel
        if (oi[o, O_STATUS] == ST_ACKED or oi[o, O_STATUS] == ST_PARTIAL) and _remove_rest(st, o):
            _finish(st, cfg, o, ST_CANCELLED, RS_NONE, a, K_CANCELLED)
            return
        _report(st, cfg, a, K_CANCEL_REJECTED, o, 0, -1, RS_UNKNOWN)
        return
    oi[o, O_TSEX] = a
    if j == 0:
        _finish(st, cfg, o, ST_REJECTED, RS_NOBOOK, a, K_REJECTED)
        return
    row = j - 1
    side = oi[o, O_SIDE]
    size = oi[o, O_SIZE]
    typ = oi[o, O_TYPE]
    lim = oi[o, O_PX]
    if typ != T_MARKET and lim <= 0:
        _finish(st, cfg, o, ST_REJECTED, RS_BADPX, a, K_REJECTED)
        return
    # inventory limit: worst case if every open order on that side fills
    open_same = 0
    for k in range(si[S_NREST]):
        q = rest[k]
        if oi[q, O_SIDE] == side:
            open_same += oi[q, O_LEAVES]
    pos = si[S_POS]
    maxpos = cfg_i[C_MAXPOS]
    if (side > 0 and pos + open_same + size > maxpos) or (side < 0 and pos - open_same - size < -maxpos):
        _finish(st, cfg, o, ST_REJECTED, RS_MAXPOS, a, K_REJECTED)
        return
    oi[o, O_STATUS] = ST_ACKED
    _report(st, cfg, a, K_ACK, o, 0, -1, RS_NONE)
    if side > 0:
        opx, osz = apx[row], asz[row]
    else:
        opx, osz = bpx[row], bsz[row]
    walk = cfg_i[C_WALK]
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
        take = leaves if walk == 0 else min(leaves, q)
        _fill(st, cfg, o, take, p, 1, a)
        if walk == 0:
            break
    if oi[o, O_LEAVES] > 0:
        if typ == T_LIMIT:
            front = _level_qty(bpx[row], bsz[row], lim) if side > 0 else _level_qty(apx[row], asz[row], lim)
            of[o, OF_FRONT] = front
            of[o, OF_FRONT0] = front
            n = si[S_NREST]
            rest[n] = o
            si[S_NREST] = n + 1
        else:
            _finish(st, cfg, o, ST_CANCELLED, RS_NOLIQ, a, K_CANCELLED)


@njit(cache=True)
def _apply_event(md, st, cfg, j):
    """Apply market event ``j`` to our resting orders (queue, fills), then record equity."""
    ts, etype, eside, epx, esz, apx, asz, bpx, bsz = md
    si, sf, oi, of, rest, _eq_ts, _eq_f = st[0], st[1], st[2], st[3], st[8], st[9], st[10]
    cfg_i, cfg_f = cfg[0], cfg[1]
    et = etype[j]
    es = eside[j]
    ep = epx[j]
    ez = esz[j]
    t = ts[j]
    k = si[S_NREST] - 1
    while k >= 0:
        o = rest[k]
        side = oi[o, O_SIDE]
        p = oi[o, O_PX]
        if es == side:
            through = (side > 0 and ep < p) or (side < 0 and ep > p)
            if et == EV_EXEC:
                if ep == p:
                    front = of[o, OF_FRONT]
                    if front >= ez:
                        of[o, OF_FRONT] = front - ez
                    else:
                        of[o, OF_FRONT] = 0.0
                        avail = np.int64(np.floor(ez - front))
                        q = min(oi[o, O_LEAVES], avail)
                        if q > 0:
                            _fill(st, cfg, o, q, p, 0, t)
                elif through:
                    _fill(st, cfg, o, oi[o, O_LEAVES], p, 0, t)
            elif et == EV_HIDDEN:
                if through:
                    _fill(st, cfg, o, oi[o, O_LEAVES], p, 0, t)
            elif (et in (EV_CANCEL, EV_DELETE)) and ep == p:
                newq = _level_qty(bpx[j], bsz[j], p) if side > 0 else _level_qty(apx[j], asz[j], p)
                front = of[o, OF_FRONT]
                if cfg_i[C_QUEUE] == 1:
                    prevq = newq + ez
                    back = max(prevq - front, 0.0)
                    n_pow = cfg_f[CF_QPOW]
                    fb = back**n_pow
                    denom = fb + front**n_pow
                    prob = fb / denom if denom > 0 else 1.0
                    if cfg_f[CF_QSTOCH] > 0:
                        if np.random.random() >= prob:
                            front = max(front - ez, 0.0)
                    else:
                        front = front - (1.0 - prob) * ez + min(back - prob * ez, 0.0)
                        front = max(front, 0.0)
                front = min(front, float(newq))
                of[o, OF_FRONT] = front
        if oi[o, O_LEAVES] > 0:
            if side > 0:
                if asz[j, 0] > 0 and apx[j, 0] <= p:
                    _fill(st, cfg, o, oi[o, O_LEAVES], p, 0, t)
            elif bsz[j, 0] > 0 and bpx[j, 0] >= p:
                _fill(st, cfg, o, oi[o, O_LEAVES], p, 0, t)
        if oi[o, O_LEAVES] == 0:
            n = si[S_NREST]
            rest[k] = rest[n - 1]
            si[S_NREST] = n - 1
        k -= 1
    if asz[j, 0] > 0 and bsz[j, 0] > 0:
        sf[F_LASTMID] = 0.5 * (apx[j, 0] + bpx[j, 0]) / cfg_f[CF_SCALE]
    si[S_J] = j + 1
    interval = cfg_i[C_EQINT]
    n_ev = ts.size
    if j == n_ev - 1 or interval <= 0 or ts[j + 1] // interval != t // interval:
        _snapshot(st, t)


@njit(cache=True)
def _snapshot(st, t):
    si, sf, eq_ts, eq_f = st[0], st[1], st[9], st[10]
    n = si[S_NEQ]
    if n >= eq_ts.size:
        raise RuntimeError("equity buffer full")
    eq_ts[n] = t
    eq_f[n, 0] = sf[F_CASH]
    eq_f[n, 1] = si[S_POS]
    eq_f[n, 2] = sf[F_LASTMID]
    si[S_NEQ] = n + 1


@njit(cache=True)
def _room(st):
    si, oi, rq, rp, fi = st[0], st[2], st[4], st[5], st[6]
    need = si[S_NREST] * 2 + HEADROOM
    return (
        oi.shape[0] - si[S_NORD] >= HEADROOM
        and rq.shape[0] - si[S_NREQ] >= HEADROOM
        and rp.shape[0] - si[S_NREP] >= 2 * need
        and fi.shape[0] - si[S_NFILL] >= need
        and st[8].shape[0] - si[S_NREST] >= HEADROOM
    )


@njit(cache=True)
def _advance(md, st, cfg, bound):
    """Run the exchange through every market event and order arrival up to ``bound`` (inclusive).

    Returns 1 if it stopped early because a buffer needs to grow, else 0."""
    ts = md[0]
    si, rq = st[0], st[4]
    n_ev = ts.size
    while True:
        if not _room(st):
            return 1
        j = si[S_J]
        nm = ts[j] if j < n_ev else INF
        r = si[S_REQCUR]
        na = rq[r, R_ARR] if r < si[S_NREQ] else INF
        if na < nm:
            if na > bound:
                return 0
            si[S_REQCUR] = r + 1
            _arrive(md, st, cfg, r)
        else:
            if nm >= INF or nm > bound:
                return 0
            _apply_event(md, st, cfg, j)


@njit(cache=True)
def _deliver(st, t):
    """Deliver every report due by local time ``t``; update what the strategy knows. Returns the count."""
    si, oi, rp = st[0], st[2], st[5]
    c = 0
    while si[S_REPCUR] < si[S_NREP] and rp[si[S_REPCUR], P_DLV] <= t:
        k = si[S_REPCUR]
        o = rp[k, P_OIDX]
        if rp[k, P_KIND] == K_FILL:
            si[S_KPOS] += oi[o, O_SIDE] * rp[k, P_QTY]
        if rp[k, P_KIND] != K_CANCEL_REJECTED:
            oi[o, O_KSTATUS] = rp[k, P_STATUS]
        si[S_REPCUR] = k + 1
        c += 1
    return c


@njit(cache=True)
def _submit(st, cfg, side, typ, px, size, sent):
    """Queue a new order on the order-entry session; returns its index (order id = index + 1)."""
    si, oi, of, _rq = st[0], st[2], st[3], st[4]
    o = si[S_NORD]
    if o >= oi.shape[0]:
        raise RuntimeError("order buffer full")
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
    si[S_NORD] = o + 1
    _request(st, cfg, 0, o, sent)
    return o


@njit(cache=True)
def _cancel(st, cfg, o, sent):
    _request(st, cfg, 1, o, sent)


@njit(cache=True)
def _request(st, cfg, kind, o, sent):
    si, rq = st[0], st[4]
    r = si[S_NREQ]
    if r >= rq.shape[0]:
        raise RuntimeError("request buffer full")
    arr = sent + _draw(cfg[2], cfg[4], sent)
    if arr < si[S_LASTARR]:
        arr = si[S_LASTARR]
    si[S_LASTARR] = arr
    rq[r, R_ARR] = arr
    rq[r, R_KIND] = kind
    rq[r, R_OIDX] = o
    rq[r, R_SENT] = sent
    si[S_NREQ] = r + 1


@njit(cache=True)
def _seed(seed):
    np.random.seed(seed)


@njit(cache=True)
def _step_to(md, st, cfg, i):
    """Bring the simulation to the moment event ``i`` reaches the strategy: advance the exchange, deliver
    due reports. Returns -1 if a buffer must grow first, else the number of reports delivered."""
    local = md[0][i] + cfg[0][C_FEED]
    if _advance(md, st, cfg, local - cfg[0][C_RESPMIN]) == 1:
        return -1
    return _deliver(st, local)


@njit(cache=True)
def _finish_run(md, st, cfg):
    """After the last strategy step: run the exchange to the end, snapshot, deliver everything."""
    if _advance(md, st, cfg, INF - 1) == 1:
        return -1
    si = st[0]
    if si[S_DONE] == 0:
        last = max(md[0][md[0].size - 1], si[S_LASTARR])
        _snapshot(st, last)
        si[S_DONE] = 1
    return _deliver(st, INF)


# ------------------------------------------------------------------------------- built-in strategies

SK_BUY_AND_HOLD, SK_OFI, SK_MM = 0, 1, 2


@njit(cache=True, inline="always")
def _terminal(status):
    return status >= ST_FILLED


@njit(cache=True)
def _strat_buy_and_hold(md, st, cfg, sp, sti, i, local):
    # sp = [size]; sti[0] = phase
    si = st[0]
    n_ev = md[0].size
    if sti[0] == 0:
        _submit(st, cfg, 1, T_MARKET, 0, np.int64(sp[0]), local)
        sti[0] = 1
    if i == n_ev - 1 and sti[0] == 1:
        pos = si[S_KPOS]
        if pos > 0:
            _submit(st, cfg, -1, T_MARKET, 0, pos, local)
        sti[0] = 2


@njit(cache=True)
def _strat_mm(md, st, cfg, sp, sti, i, local):
    # sp = [size, max_position, skew_ticks_per_lot, tick]
    # sti: 0 bid idx, 1 bid px, 2 bid cancel sent, 3 ask idx, 4 ask px, 5 ask cancel sent, 6 init, 7 flat
    apx, asz, bpx, bsz = md[5], md[6], md[7], md[8]
    si, oi = st[0], st[2]
    n_ev = md[0].size
    if sti[6] == 0:
        sti[0] = -1
        sti[3] = -1
        sti[6] = 1
    size = np.int64(sp[0])
    maxpos = np.int64(sp[1])
    tick = np.int64(sp[3])
    pos = si[S_KPOS]
    last = i == n_ev - 1
    for s in range(2):
        base = 0 if s == 0 else 3
        o = sti[base]
        if o >= 0 and _terminal(oi[o, O_KSTATUS]):
            sti[base] = -1
            o = -1
        if last and o >= 0 and sti[base + 2] == 0:
            _cancel(st, cfg, o, local)
            sti[base + 2] = 1
    if last:
        if pos != 0 and sti[7] == 0:
            _submit(st, cfg, -1 if pos > 0 else 1, T_MARKET, 0, abs(pos), local)
            sti[7] = 1
        return
    if asz[i, 0] <= 0 or bsz[i, 0] <= 0:
        return
    want_bid, want_ask = mm_quotes(bpx[i, 0], apx[i, 0], pos, size, np.int64(sp[2]), tick)
    for s in range(2):
        base = 0 if s == 0 else 3
        side = 1 if s == 0 else -1
        want = want_bid if s == 0 else want_ask
        o = sti[base]
        if o < 0:
            if (side > 0 and pos + size <= maxpos) or (side < 0 and pos - size >= -maxpos):
                sti[base] = _submit(st, cfg, side, T_LIMIT, want, size, local)
                sti[base + 1] = want
                sti[base + 2] = 0
        elif sti[base + 1] != want and sti[base + 2] == 0:
            _cancel(st, cfg, o, local)
            sti[base + 2] = 1


@njit(cache=True, inline="always")
def _room_ok(n_ord, n_req, n_rep, n_fill, n_rest, cap_ord, cap_req, cap_rep, cap_fill, cap_rest):
    """``_room`` on scalars (hot loop: passing arrays to a helper costs reference-count updates)."""
    need = n_rest * 2 + HEADROOM
    return (
        cap_ord - n_ord >= HEADROOM
        and cap_req - n_req >= HEADROOM
        and cap_rep - n_rep >= 2 * need
        and cap_fill - n_fill >= need
        and cap_rest - n_rest >= HEADROOM
    )


@njit(cache=True)
def run_builtin(md, st, cfg, kind, sp, sti, stf, scratch, i_stop):
    """The whole backtest for a built-in strategy in one compiled loop, up to event ``i_stop``.

    Returns 1 when a buffer must grow (call again after growing; it resumes), 2 when it stopped at
    ``i_stop`` (call again with a later stop), 0 when done.

    Per event it does exactly what ``_step_to`` + the strategy do (the Python driver's sequence, so both
    give the same results), but with every array unpacked once up front: Numba updates reference counts
    on each array handed to a helper, which cost more than the simulation itself when done per event. So
    a market event that meets no resting order (the common case) is applied inline, the exchange/report
    helpers (``_arrive``, ``_apply_event``, ``_deliver``, ``_submit``) are only called when they have
    work, and the OFI rule runs inline (``flowsense.trading.strategies.ofi_threshold``'s functions).
    """
    ts, apx, asz, bpx, bsz = md[0], md[5], md[6], md[7], md[8]
    si, sf, oi, rq, rp, fi, rest, eq_ts, eq_f = st[0], st[1], st[2], st[4], st[5], st[6], st[8], st[9], st[10]
    cfg_i, cfg_f = cfg[0], cfg[1]
    cap_ord, cap_req, cap_rep, cap_fill, cap_rest = oi.shape[0], rq.shape[0], rp.shape[0], fi.shape[0], rest.shape[0]
    n_ev = ts.size
    feed = cfg_i[C_FEED]
    respmin = cfg_i[C_RESPMIN]
    interval = cfg_i[C_EQINT]
    scale = cfg_f[CF_SCALE]
    if kind == SK_OFI:
        thr = sp[0]
        size = np.int64(sp[1])
        window = np.int64(sp[2])
        maxpos = np.int64(sp[3])
    else:
        thr = 0.0
        size = window = maxpos = np.int64(0)
    i = si[S_I]
    while i < i_stop:
        # ---- _step_to(i): run the exchange to local - min response latency, deliver due reports
        if not _room_ok(si[S_NORD], si[S_NREQ], si[S_NREP], si[S_NFILL], si[S_NREST],
                        cap_ord, cap_req, cap_rep, cap_fill, cap_rest):
            return 1
        local = ts[i] + feed
        bound = local - respmin
        while True:
            j = si[S_J]
            nm = ts[j] if j < n_ev else INF
            r = si[S_REQCUR]
            na = rq[r, R_ARR] if r < si[S_NREQ] else INF
            if na < nm:
                if na > bound:
                    break
                if not _room_ok(si[S_NORD], si[S_NREQ], si[S_NREP], si[S_NFILL], si[S_NREST],
                                cap_ord, cap_req, cap_rep, cap_fill, cap_rest):
                    return 1
                si[S_REQCUR] = r + 1
                _arrive(md, st, cfg, r)
            else:
                if nm >= INF or nm > bound:
                    break
                if si[S_NREST] > 0:
                    if not _room_ok(si[S_NORD], si[S_NREQ], si[S_NREP], si[S_NFILL], si[S_NREST],
                                    cap_ord, cap_req, cap_rep, cap_fill, cap_rest):
                        return 1
                    _apply_event(md, st, cfg, j)
                else:  # _apply_event with no resting order: mid, cursor, equity snapshot
                    if asz[j, 0] > 0 and bsz[j, 0] > 0:
                        sf[F_LASTMID] = 0.5 * (apx[j, 0] + bpx[j, 0]) / scale
                    si[S_J] = j + 1
                    t = ts[j]
                    if j == n_ev - 1 or interval <= 0 or ts[j + 1] // interval != t // interval:
                        n = si[S_NEQ]
                        if n >= eq_ts.size:
                            raise RuntimeError("equity buffer full")
                        eq_ts[n] = t
                        eq_f[n, 0] = sf[F_CASH]
                        eq_f[n, 1] = si[S_POS]
                        eq_f[n, 2] = sf[F_LASTMID]
                        si[S_NEQ] = n + 1
        k = si[S_REPCUR]
        if k < si[S_NREP] and rp[k, P_DLV] <= local:
            _deliver(st, local)
        # ---- the strategy
        if kind == SK_OFI:
            # sti: 0 window head, 1 in-flight order index (-1 none); stf: 0 rolling OFI; scratch: increments
            if i == 0:
                e = 0.0
                sti[1] = -1
            else:
                e = ofi_increment(bpx[i - 1, 0], bsz[i - 1, 0], apx[i - 1, 0], asz[i - 1, 0],
                                  bpx[i, 0], bsz[i, 0], apx[i, 0], asz[i, 0])
            scratch[i] = e
            h, ofi = ofi_window(scratch, ts, i, sti[0], stf[0], window)
            sti[0] = h
            stf[0] = ofi
            inflight = sti[1]
            if inflight >= 0 and _terminal(oi[inflight, O_KSTATUS]):
                sti[1] = inflight = -1
            if inflight < 0:
                d = ofi_order(ofi, thr, size, maxpos, si[S_KPOS], i == n_ev - 1)
                if d != 0:
                    sti[1] = _submit(st, cfg, 1 if d > 0 else -1, T_MARKET, 0, abs(d), local)
        elif kind == SK_BUY_AND_HOLD:
            if sti[0] == 0 or i == n_ev - 1:  # it only acts on these events
                _strat_buy_and_hold(md, st, cfg, sp, sti, i, local)
        else:
            _strat_mm(md, st, cfg, sp, sti, i, local)
        i += 1
        si[S_I] = i
    if i < n_ev:
        return 2
    if _finish_run(md, st, cfg) < 0:
        return 1
    return 0
