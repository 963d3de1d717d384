"""The built-in strategies compiled into the backtest loop, and that loop.

:func:`run_events` is the one boundary between Python and the compiled core: the compiled path calls
it once per run (or once per progress chunk), the Python driver once per event (one step, then its
Python strategy); the exchange step is the same code for both, and the tables grow inside the core.

The rules are the ones in :mod:`flowsense.trading.strategies` (their Numba ``inline="always"``
functions are inlined here); the state of each lives in named slots of ``sim.sti`` / ``sim.stf``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from flowsense.backtest.accounting import snapshot
from flowsense.backtest.exchange import (
    INF,
    O_KSTATUS,
    P_DLV,
    R_ARR,
    ST_FILLED,
    T_LIMIT,
    T_MARKET,
    _arrive,
    _deliver_due,
    _match_resting,
    cancel,
    finish_run,
    is_open,
    submit,
)
from flowsense.trading.strategies.market_maker import mm_quotes
from flowsense.trading.strategies.ofi_threshold import ofi_increment, ofi_order, ofi_window

SK_BUY_AND_HOLD, SK_OFI, SK_MM = 0, 1, 2

# buy_and_hold: sti slot
BH_PHASE = 0  # 0 nothing sent, 1 bought, 2 sold
# ofi_threshold: sti / stf slots (sim.scratch holds the per-event increments)
OFI_HEAD, OFI_INFLIGHT = 0, 1  # window head; order index in flight (-1 none)
OFI_SUM = 0  # rolling OFI
# market_maker: sti slots, per side (bid at MM_BID, ask at MM_ASK): order index (-1 none), price, cancel sent
MM_BID, MM_ASK = 0, 3
MM_ORDER, MM_PRICE, MM_CANCEL_SENT = 0, 1, 2
MM_INIT, MM_FLAT = 6, 7


@njit(cache=True, inline="always")
def _terminal(status):
    return status >= ST_FILLED


@njit(cache=True)
def _buy_and_hold(sim, sp, i, local):
    # sp = [size]
    sti = sim.sti
    if sti[BH_PHASE] == 0:
        submit(sim, 1, T_MARKET, 0, np.int64(sp[0]), local)
        sti[BH_PHASE] = 1
    if i == sim.n_ev - 1 and sti[BH_PHASE] == 1:
        pos = sim.kpos
        if pos > 0:
            submit(sim, -1, T_MARKET, 0, pos, local)
        sti[BH_PHASE] = 2


@njit(cache=True)
def _market_maker(sim, sp, i, local):
    # sp = [size, max_position, skew_ticks_per_lot, tick (price units)]
    apx, asz, bpx, bsz = sim.apx, sim.asz, sim.bpx, sim.bsz
    sti = sim.sti
    if sti[MM_INIT] == 0:
        sti[MM_BID + MM_ORDER] = -1
        sti[MM_ASK + MM_ORDER] = -1
        sti[MM_INIT] = 1
    size = np.int64(sp[0])
    maxpos = np.int64(sp[1])
    tick = np.int64(sp[3])
    pos = sim.kpos
    last = i == sim.n_ev - 1
    for s in range(2):
        base = MM_BID if s == 0 else MM_ASK
        o = sti[base + MM_ORDER]
        if o >= 0 and _terminal(sim.oi[o, O_KSTATUS]):
            sti[base + MM_ORDER] = -1
            o = -1
        if last and o >= 0 and sti[base + MM_CANCEL_SENT] == 0:
            cancel(sim, o, local)
            sti[base + MM_CANCEL_SENT] = 1
    if last:
        if pos != 0 and sti[MM_FLAT] == 0:
            submit(sim, -1 if pos > 0 else 1, T_MARKET, 0, abs(pos), local)
            sti[MM_FLAT] = 1
        return
    if asz[i, 0] <= 0 or bsz[i, 0] <= 0:
        return
    want_bid, want_ask = mm_quotes(bpx[i, 0], apx[i, 0], pos, size, np.int64(sp[2]), tick)
    for s in range(2):
        base = MM_BID if s == 0 else MM_ASK
        side = 1 if s == 0 else -1
        want = want_bid if s == 0 else want_ask
        o = sti[base + MM_ORDER]
        if o < 0:
            if (side > 0 and pos + size <= maxpos) or (side < 0 and pos - size >= -maxpos):
                sti[base + MM_ORDER] = submit(sim, side, T_LIMIT, want, size, local)
                sti[base + MM_PRICE] = want
                sti[base + MM_CANCEL_SENT] = 0
        elif sti[base + MM_PRICE] != want and sti[base + MM_CANCEL_SENT] == 0:
            cancel(sim, o, local)
            sti[base + MM_CANCEL_SENT] = 1


SK_EXTERNAL = -1  # no compiled strategy: the Python driver runs one step, then its strategy


@njit(cache=True)
def run_events(sim, kind, sp, i_stop, finish):
    """THE loop of a run, for both drivers: from event ``sim.i`` up to (not including) ``i_stop``, per
    event bring the exchange to the moment the event reaches the strategy (run the exchange to ``local -
    min response latency``, deliver due reports), then run the compiled strategy ``kind`` (none for
    :data:`SK_EXTERNAL`: the Python driver calls this for one event, then its strategy). With ``finish``,
    at the end of the data also run the exchange to the end (:func:`finish_run`).

    Returns the number of reports delivered (the Python driver dispatches them). The tables grow inside
    the core. The step is written inline here on purpose: handing arrays or the state to a helper per
    event costs reference-count updates that outweigh the simulation itself, so the helpers
    (``_arrive``, ``_match_resting``, ``snapshot``, ``_deliver_due``, strategies) are only called when they
    have work, and the per-event reads go through locals (the market data never changes size).
    """
    ts, apx, asz, bpx, bsz = sim.ts, sim.apx, sim.asz, sim.bpx, sim.bsz
    sti, stf, scratch = sim.sti, sim.stf, sim.scratch
    n_ev = sim.n_ev
    feed = sim.feed
    respmin = sim.resp_min
    interval = sim.eq_interval
    scale = sim.scale
    open_always = sim.sessions.size == 0
    delivered = 0
    i = sim.i
    while i < i_stop:
        # ---- the exchange up to local - min response latency (market events and order arrivals in time order)
        local = ts[i] + feed
        bound = local - respmin
        while True:
            j = sim.j
            nm = ts[j] if j < n_ev else INF
            r = sim.req_cur
            na = sim.rq[r, R_ARR] if r < sim.n_req else INF
            if na < nm:
                if na > bound:
                    break
                sim.req_cur = r + 1
                _arrive(sim, r)
            else:
                if nm >= INF or nm > bound:
                    break
                t = ts[j]
                if sim.n_rest > 0 and (open_always or is_open(sim.sessions, t)):
                    _match_resting(sim, j)
                if asz[j, 0] > 0 and bsz[j, 0] > 0:
                    sim.last_mid = 0.5 * (apx[j, 0] + bpx[j, 0]) / scale
                sim.j = j + 1
                if j == n_ev - 1 or interval <= 0 or ts[j + 1] // interval != t // interval:
                    snapshot(sim, t)
        # ---- reports due by local time
        k = sim.rep_cur
        if k < sim.n_rep and sim.rp[k, P_DLV] <= local:
            delivered += _deliver_due(sim, local)
        # ---- the strategy
        if kind == SK_OFI:
            if i == 0:
                e = 0.0
                sti[OFI_INFLIGHT] = -1
            else:
                e = ofi_increment(bpx[i - 1, 0], bsz[i - 1, 0], apx[i - 1, 0], asz[i - 1, 0],
                                  bpx[i, 0], bsz[i, 0], apx[i, 0], asz[i, 0])
            scratch[i] = e
            h, ofi = ofi_window(scratch, ts, i, sti[OFI_HEAD], stf[OFI_SUM], np.int64(sp[2]))
            sti[OFI_HEAD] = h
            stf[OFI_SUM] = ofi
            inflight = sti[OFI_INFLIGHT]
            if inflight >= 0 and _terminal(sim.oi[inflight, O_KSTATUS]):
                sti[OFI_INFLIGHT] = inflight = -1
            if inflight < 0:
                d = ofi_order(ofi, sp[0], np.int64(sp[1]), np.int64(sp[3]), sim.kpos, i == n_ev - 1)
                if d != 0:
                    sti[OFI_INFLIGHT] = submit(sim, 1 if d > 0 else -1, T_MARKET, 0, abs(d), local)
        elif kind == SK_BUY_AND_HOLD:
            if sti[BH_PHASE] == 0 or i == n_ev - 1:  # it only acts on these events
                _buy_and_hold(sim, sp, i, local)
        elif kind == SK_MM:
            _market_maker(sim, sp, i, local)
        i += 1
        sim.i = i
    if finish and i >= n_ev:
        delivered += finish_run(sim)
    return delivered


def run_builtin(sim, kind: int, sp: np.ndarray, i_stop: int) -> int:
    """Run built-in strategy ``kind`` up to event ``i_stop`` (the end: also finish). Returns 2 when it
    stopped before the end (call again with a later stop), 0 when done."""
    run_events(sim, kind, sp, i_stop, True)
    return 0 if i_stop >= sim_len(sim) else 2


@njit(cache=True)
def sim_len(sim):
    return sim.n_ev
