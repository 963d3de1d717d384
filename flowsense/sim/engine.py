"""Numba kernels: the event loop with an order-level book, and the price-level book snapshots.

Prices inside the kernels are integer tick indices on a grid of ``G`` ticks (index ``i`` is the price
``(base_tick + i) * 0.01`` dollars); :mod:`flowsense.sim.core` converts them to LOBSTER units.

Assumptions of the event loop (see :class:`flowsense.sim.params.SimParams` for the model):

* one Hawkes event is one message, except a marketable order, which executes FIFO against the best
  resting level and may walk up to ``max_walk`` levels (one type-4 row per resting order touched, all with
  the same timestamp); it is immediate-or-cancel (an unfilled rest is dropped, never posted);
* a marketable order is a hidden execution (one type-5 row, book unchanged) with probability
  ``hidden_share``, priced strictly inside the spread when there is room;
* a side's last resting order is never removed (no cancel of it, executions stop before it), so the book
  is always two-sided after the opening batch; adds never lock or cross the book.
"""

from __future__ import annotations

import numpy as np
from numba import njit

DIM_ADD, DIM_CANCEL, DIM_BUY, DIM_SELL = 0, 1, 2, 3


@njit(cache=True, nogil=True)
def _sample_size(vals, cdf, tail_p, tail_mu, tail_sd):  # pragma: no cover - numba
    u = np.random.random()
    if u < 1.0 - tail_p:
        k = np.searchsorted(cdf, u * cdf[-1] / (1.0 - tail_p) if tail_p < 1.0 else u)
        if k >= vals.shape[0]:
            k = vals.shape[0] - 1
        return vals[k]
    v = int(np.exp(tail_mu + tail_sd * np.random.standard_normal()) + 0.5)
    if v < 1:
        v = 1
    if v > 100_000:
        v = 100_000
    return v


@njit(cache=True, nogil=True)
def _sample_dist(dist_cdf, tail_p, tail_mean, scale):  # pragma: no cover - numba
    u = np.random.random()
    if u < 1.0 - tail_p:
        d = float(np.searchsorted(dist_cdf, u * dist_cdf[-1] / (1.0 - tail_p)))
    else:
        d = dist_cdf.shape[0] + np.random.exponential(tail_mean)
    x = d * scale
    k = int(np.floor(x))
    if np.random.random() < x - k:  # stochastic rounding keeps the mean distance
        k += 1
    return k


@njit(cache=True, nogil=True)
def _logistic(x):  # pragma: no cover - numba
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True, inline="always")
def _add_order(o, s, px, size, o_px, o_side, o_rem, o_prev, o_next, head, tail, lvl, o_pos, alive, n_alive,
               n_side, best):  # pragma: no cover - numba
    """Rest order ``o`` at the back of its price level's FIFO queue; returns the new alive count."""
    o_px[o] = px
    o_side[o] = s
    o_rem[o] = size
    o_prev[o] = tail[s, px]
    o_next[o] = -1
    if tail[s, px] >= 0:
        o_next[tail[s, px]] = o
    else:
        head[s, px] = o
    tail[s, px] = o
    lvl[s, px] += size
    o_pos[o] = n_alive
    alive[n_alive] = o
    n_side[s] += 1
    if s == 0 and px > best[0]:
        best[0] = px
    if s == 1 and px < best[1]:
        best[1] = px
    return n_alive + 1


@njit(cache=True, inline="always")
def _remove_order(o, s, px, o_prev, o_next, head, tail, o_pos, alive, n_alive, n_side):  # pragma: no cover
    """Unlink order ``o`` from its level's queue and from the alive list; returns the new alive count."""
    if o_prev[o] >= 0:
        o_next[o_prev[o]] = o_next[o]
    else:
        head[s, px] = o_next[o]
    if o_next[o] >= 0:
        o_prev[o_next[o]] = o_prev[o]
    else:
        tail[s, px] = o_prev[o]
    last = alive[n_alive - 1]
    alive[o_pos[o]] = last
    o_pos[last] = o_pos[o]
    n_side[s] -= 1
    return n_alive - 1


@njit(cache=True, inline="always")
def _next_best(s, px, lvl, grid):  # pragma: no cover - numba
    """The best non-empty price of side ``s`` beyond ``px`` (bids downwards, asks upwards; -1 / grid if none)."""
    if s == 0:
        q = px - 1
        while q >= 0 and lvl[0, q] == 0:
            q -= 1
    else:
        q = px + 1
        while q < grid and lvl[1, q] == 0:
            q += 1
    return q


@njit(cache=True, nogil=True)
def simulate_messages(
    seed,
    horizon,
    open_ns,
    pstar,
    profile,
    mu,
    alpha,
    beta,
    add_vals,
    add_cdf,
    add_tail,
    mkt_vals,
    mkt_cdf,
    mkt_tail,
    dist_cdf,
    dist_tail_p,
    dist_tail_mean,
    dist_scale,
    cdist_cdf,
    cdist_tail_p,
    cdist_tail_mean,
    p_improve,
    improve_cdf,
    p_partial,
    partial_cdf,
    hidden_share,
    kappas,
    half_spread,
    n_target,
    max_walk,
    id_base,
    cap,
    grid,
):  # pragma: no cover - numba
    """Simulate one symbol-day. Returns (n, time_ns, type, order_id, size, price_index, direction)."""
    np.random.seed(seed)
    k_mkt, k_side, k_imp, k_can, k_imb = kappas[0], kappas[1], kappas[2], kappas[3], kappas[4]
    w_anchor = kappas[5]
    p_touch_only = kappas[6]
    t_out = np.empty(cap, np.int64)
    ty_out = np.empty(cap, np.int64)
    id_out = np.empty(cap, np.int64)
    sz_out = np.empty(cap, np.int64)
    px_out = np.empty(cap, np.int64)
    dr_out = np.empty(cap, np.int64)
    # price-level FIFO queues; side 0 = bid, 1 = ask
    lvl = np.zeros((2, grid), np.int64)
    head = np.full((2, grid), -1, np.int64)
    tail = np.full((2, grid), -1, np.int64)
    o_next = np.full(cap, -1, np.int64)
    o_prev = np.full(cap, -1, np.int64)
    o_px = np.zeros(cap, np.int64)
    o_side = np.zeros(cap, np.int64)
    o_rem = np.zeros(cap, np.int64)
    o_pos = np.zeros(cap, np.int64)
    alive = np.zeros(cap, np.int64)
    n_alive = 0
    n_side = np.zeros(2, np.int64)
    best = np.array([-1, grid], np.int64)  # best bid index, best ask index
    n_orders = 0
    n = 0
    last_ns = open_ns

    # ---- opening book: a batch of adds in the first nanoseconds, bests first ----
    p0 = pstar[0]
    gap = max(1, int(np.floor(2.0 * half_spread + 0.5)))
    bid0 = int(np.floor(p0 - gap / 2.0))
    ask0 = bid0 + gap
    for k in range(n_target):
        if n >= cap - 1:
            break
        s = k % 2
        if k < 2:
            px = bid0 if s == 0 else ask0
        else:
            d = _sample_dist(dist_cdf, dist_tail_p, dist_tail_mean, dist_scale)
            px = bid0 - d if s == 0 else ask0 + d
        if px < 1 or px > grid - 2:
            continue
        size = _sample_size(add_vals, add_cdf, add_tail[0], add_tail[1], add_tail[2])
        o = n_orders
        n_orders += 1
        n_alive = _add_order(o, s, px, size, o_px, o_side, o_rem, o_prev, o_next, head, tail, lvl, o_pos, alive,
                             n_alive, n_side, best)
        last_ns += 1
        t_out[n] = last_ns
        ty_out[n] = 1
        id_out[n] = id_base + o
        sz_out[n] = size
        px_out[n] = px
        dr_out[n] = 1 if s == 0 else -1
        n += 1

    # ---- Hawkes thinning loop ----
    d = mu.shape[0]
    exc = np.zeros(d)
    nb = profile.shape[0]
    s_max = profile.max()
    t = 0.0
    bound_mult = np.array([1.0, 1.5, 2.0, 2.0])  # bounds the baseline multipliers
    lam = np.zeros(d)
    while n < cap - max_walk * 64 - 8:
        lam_bar = 0.0
        for i in range(d):
            lam_bar += bound_mult[i] * (mu[i] * s_max + exc[i])
        dt = np.random.exponential(1.0 / lam_bar)
        t += dt
        if t >= horizon:
            break
        dec = np.exp(-beta * dt)
        for i in range(d):
            exc[i] *= dec
        # intraday profile: linear between the centres of the bins, flat at the ends
        x = t / horizon * nb - 0.5
        if x <= 0.0:
            sv = profile[0]
        elif x >= nb - 1:
            sv = profile[nb - 1]
        else:
            j0 = int(x)
            sv = profile[j0] + (profile[j0 + 1] - profile[j0]) * (x - j0)
        # efficient price (grid units), linear between seconds
        sec = int(t)
        ps = pstar[sec] + (pstar[sec + 1] - pstar[sec]) * (t - sec)
        mid = 0.5 * (best[0] + best[1])
        z = min(max((ps - mid) / half_spread, -4.0), 4.0)
        # queue-reactive book size control; multipliers stay small so the process remains subcritical
        c_mult = min(max(n_alive / n_target, 0.05), 1.5)
        a_mult = min(max(n_target / max(n_alive, 1), 0.3), 1.0)
        lam[0] = a_mult * (mu[0] * sv + exc[0])
        lam[1] = c_mult * (mu[1] * sv + exc[1])
        # informed immigrants: the direction of new (baseline) marketable orders leans towards the
        # efficient price; their children follow the Hawkes kernel, so cascades keep the data's size
        lam[2] = 2.0 * _logistic(k_mkt * z) * mu[2] * sv + exc[2]
        lam[3] = 2.0 * _logistic(-k_mkt * z) * mu[3] * sv + exc[3]
        tot = lam[0] + lam[1] + lam[2] + lam[3]
        u = np.random.random() * lam_bar
        if u >= tot:
            continue
        j = 0
        acc = lam[0]
        while u >= acc and j < d - 1:
            j += 1
            acc += lam[j]
        for i in range(d):
            exc[i] += beta * alpha[i, j]
        ns = open_ns + int(t * 1e9)
        if ns <= last_ns:
            ns = last_ns
        spread = best[1] - best[0]

        if j == DIM_ADD:
            imb = (n_side[0] - n_side[1]) / (n_side[0] + n_side[1] + 1.0)
            s = 0 if np.random.random() < _logistic(k_side * z - k_imb * imb) else 1
            sgn = 1.0 if s == 0 else -1.0
            px = -1
            if spread >= 2:
                # calibrated by spread in ticks at the reference price: rescale the spread to it
                si = int(np.floor(spread / dist_scale + 0.5)) if dist_scale > 0 else spread
                pi = p_improve[min(max(si, 2), p_improve.shape[0] + 1) - 2]
                pi = min(0.95, pi * (1.0 + np.tanh(k_imp * sgn * z)))
                if np.random.random() < pi:
                    kb = np.searchsorted(improve_cdf, np.random.random() * improve_cdf[-1])
                    frac = (kb + np.random.random()) / improve_cdf.shape[0]
                    imp = min(max(int(np.ceil(frac * spread)), 1), spread - 1)
                    px = best[0] + imp if s == 0 else best[1] - imp
            if px < 0:
                # reference quote: the same-side best pulled towards the efficient price +- half spread
                dd = _sample_dist(dist_cdf, dist_tail_p, dist_tail_mean, dist_scale)
                if s == 0:
                    ref = w_anchor * best[0] + (1.0 - w_anchor) * (ps - half_spread)
                    px = min(int(np.floor(ref)) - dd, best[1] - 1)
                else:
                    ref = w_anchor * best[1] + (1.0 - w_anchor) * (ps + half_spread)
                    px = max(int(np.ceil(ref)) + dd, best[0] + 1)
            if px < 1 or px > grid - 2:
                continue
            size = _sample_size(add_vals, add_cdf, add_tail[0], add_tail[1], add_tail[2])
            o = n_orders
            n_orders += 1
            n_alive = _add_order(o, s, px, size, o_px, o_side, o_rem, o_prev, o_next, head, tail, lvl, o_pos, alive,
                                 n_alive, n_side, best)
            t_out[n] = ns
            ty_out[n] = 1
            id_out[n] = id_base + o
            sz_out[n] = size
            px_out[n] = px
            dr_out[n] = 1 if s == 0 else -1
            n += 1
            last_ns = ns

        elif j == DIM_CANCEL:
            # side: stale quotes (on the wrong side of the efficient price) are cancelled first
            s = 0 if np.random.random() < _logistic(-k_can * z) else 1
            if n_side[s] <= 1:
                s = 1 - s
            if n_side[s] <= 1:
                continue
            # level: calibrated distance from the same-side best; nearest non-empty level at or beyond
            # it, else the nearest one back towards the best
            dd = _sample_dist(cdist_cdf, cdist_tail_p, cdist_tail_mean, dist_scale)
            step = -1 if s == 0 else 1
            q = best[s] + step * dd
            q = min(max(q, 0), grid - 1)
            found = -1
            for _k in range(4096):
                if q < 0 or q >= grid:
                    break
                if lvl[s, q] > 0:
                    found = q
                    break
                q += step
            if found < 0:
                q = min(max(best[s] + step * dd, 0), grid - 1)
                while lvl[s, q] == 0:
                    q -= step
                found = q
            cnt = 0
            c = head[s, found]
            while c >= 0:
                cnt += 1
                c = o_next[c]
            o = head[s, found]
            for _k in range(np.random.randint(0, cnt)):
                o = o_next[o]
            s = o_side[o]
            px = o_px[o]
            rem = o_rem[o]
            if rem >= 2 and np.random.random() < p_partial:
                kb = np.searchsorted(partial_cdf, np.random.random() * partial_cdf[-1])
                frac = (kb + np.random.random()) / partial_cdf.shape[0]
                size = min(max(int(frac * rem), 1), rem - 1)
                o_rem[o] = rem - size
                lvl[s, px] -= size
                ty_out[n] = 2
            else:
                size = rem
                ty_out[n] = 3
                lvl[s, px] -= size
                n_alive = _remove_order(o, s, px, o_prev, o_next, head, tail, o_pos, alive, n_alive, n_side)
                o_rem[o] = 0
                if lvl[s, px] == 0 and px == best[s]:
                    best[s] = _next_best(s, px, lvl, grid)
            t_out[n] = ns
            id_out[n] = id_base + o
            sz_out[n] = size
            px_out[n] = px
            dr_out[n] = 1 if s == 0 else -1
            n += 1
            last_ns = ns

        else:  # marketable order; buyer-initiated (DIM_BUY) hits the asks
            rs = 1 if j == DIM_BUY else 0
            qty = _sample_size(mkt_vals, mkt_cdf, mkt_tail[0], mkt_tail[1], mkt_tail[2])
            if np.random.random() < hidden_share:
                px = best[0] + 1 + np.random.randint(0, spread - 1) if spread >= 2 else best[rs]
                t_out[n] = ns
                ty_out[n] = 5
                id_out[n] = 0
                sz_out[n] = qty
                px_out[n] = px
                dr_out[n] = 1 if rs == 0 else -1
                n += 1
                last_ns = ns
                continue
            if np.random.random() < p_touch_only:
                # most marketable orders are limit orders at the touch: no walking beyond the best level
                qty = min(qty, lvl[rs, best[rs]])
            walked = 0
            while qty > 0 and n_side[rs] > 1 and walked < max_walk and n < cap - 1:
                px = best[rs]
                o = head[rs, px]
                ex = min(qty, o_rem[o])
                qty -= ex
                o_rem[o] -= ex
                lvl[rs, px] -= ex
                t_out[n] = ns
                ty_out[n] = 4
                id_out[n] = id_base + o
                sz_out[n] = ex
                px_out[n] = px
                dr_out[n] = 1 if rs == 0 else -1
                n += 1
                last_ns = ns
                if o_rem[o] == 0:  # o is the head of its level (FIFO)
                    n_alive = _remove_order(o, rs, px, o_prev, o_next, head, tail, o_pos, alive, n_alive, n_side)
                if lvl[rs, px] == 0:
                    walked += 1
                    best[rs] = _next_best(rs, px, lvl, grid)
    return n, t_out, ty_out, id_out, sz_out, px_out, dr_out


@njit(cache=True, nogil=True)
def book_snapshots(ty, sz, px, dr, levels, grid, base_units, tick_units, empty):  # pragma: no cover
    """Replay messages on a price-level book; row i = top ``levels`` after message i, LOBSTER layout."""
    n = ty.shape[0]
    out = np.empty((n, 4 * levels), np.int64)
    lvl = np.zeros((2, grid), np.int64)
    cnt = np.zeros(2, np.int64)  # non-empty levels per side
    best = np.array([-1, grid], np.int64)
    for i in range(n):
        t = ty[i]
        if t != 5 and t != 7:
            s = 0 if dr[i] == 1 else 1
            p = px[i]
            if t == 1:
                if lvl[s, p] == 0:
                    cnt[s] += 1
                lvl[s, p] += sz[i]
                if s == 0 and p > best[0]:
                    best[0] = p
                if s == 1 and p < best[1]:
                    best[1] = p
            else:
                lvl[s, p] -= sz[i]
                if lvl[s, p] == 0:
                    cnt[s] -= 1
                    if p == best[s]:
                        if s == 0:
                            q = p - 1
                            while q >= 0 and lvl[0, q] == 0:
                                q -= 1
                            best[0] = q
                        else:
                            q = p + 1
                            while q < grid and lvl[1, q] == 0:
                                q += 1
                            best[1] = q
        # snapshot
        k = 0
        q = best[1]
        while k < levels and k < cnt[1]:
            while lvl[1, q] == 0:
                q += 1
            out[i, 4 * k] = base_units + q * tick_units
            out[i, 4 * k + 1] = lvl[1, q]
            k += 1
            q += 1
        while k < levels:
            out[i, 4 * k] = empty
            out[i, 4 * k + 1] = 0
            k += 1
        k = 0
        q = best[0]
        while k < levels and k < cnt[0]:
            while lvl[0, q] == 0:
                q -= 1
            out[i, 4 * k + 2] = base_units + q * tick_units
            out[i, 4 * k + 3] = lvl[0, q]
            k += 1
            q -= 1
        while k < levels:
            out[i, 4 * k + 2] = -empty
            out[i, 4 * k + 3] = 0
            k += 1
    return out
