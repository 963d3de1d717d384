"""The hftbacktest side of the event-engine benchmark (runs in bench/.venvs/hftbacktest, numpy < 2.3).

Usage: python hftbacktest_ofi.py INPUT.npz PARAMS_JSON  ->  prints one JSON line.

INPUT.npz holds the LOBSTER day as arrays written by bench/backtest.py: ts (ns), etype (FlowSense event
codes), eside, epx (price units of 1/10_000 $), esz, and the 10-level book after each message, apx/asz/bpx/bsz
(empty level: size 0). It is converted (numba, once, timed separately) to hftbacktest's ``event_dtype``,
``exch_ts = ts`` and ``local_ts = ts + feed latency + k``, every event flagged ``EXCH_EVENT | LOCAL_EVENT``,
where k is 0 except for the k-th of several messages stamped with the same nanosecond (up to 35 on this
day; the smallest gap between distinct stamps is 303 ns). Reason: ``wait_next_feed`` processes every
event stamped at or before the wake-up time before it returns, so messages sharing a stamp would reach
the strategy as one update, while FlowSense hands the strategy each message; the OFI increments do not
telescope over such a group (e.g. -17 per message vs +74 per group at 13:30:12.206), so without the k ns
the two engines would not compute the same signal:

* row 0: one bid/ask ``DEPTH_EVENT`` per visible level;
* each later message: a ``TRADE_EVENT`` for an execution (aggressor = opposite of the resting side), then
  per side a ``DEPTH_EVENT`` with qty 0 for every level that left the visible 10, and one for every level
  that is new or whose size changed, so hftbacktest's book after the message equals the recorded one;
* a message that changes nothing visible (an add/cancel beyond level 10) still reaches the strategy in
  FlowSense, so it becomes a no-op ``DEPTH_EVENT`` that restates the best bid (same price and size).

The strategy is FlowSense's ``ofi_threshold`` rule written against hftbacktest's API. It wakes on every
feed (= every LOBSTER message) with ``wait_next_feed`` (hftbacktest first processes every event and order
response stamped at or before that local time), computes the Cont-Kukanov-Stoikov increment from the
previous to the current best bid/ask of hftbacktest's own local book (``depth.best_bid_tick`` /
``best_bid_qty`` ...), keeps the increments of the last ``window_ns`` (exchange time of the feed event,
as ``feed_latency`` gives it) and, with no order in flight, trades to the target position (+size / -size
/ flat when OFI turns against the position / flat at the last feed, clamped to max_position) with one
marketable IOC limit order (5000 ticks through the touch: the no-partial-fill exchange fills it whole at
the best price, or it expires if that side is empty). An order is in flight until its response arrived
locally (``req == NONE`` and a terminal status); then its result is recorded and
``clear_inactive_orders`` drops it. Exchange: risk-averse queue, constant 1 ms order-entry and response
latency (``constant_order_latency``), ``trading_value_fee_model(0, taker)``, tick 0.01, lot 1. The only
cost of the k ns above: an order reacting to the k-th message of a same-stamp group reaches the exchange
(and its response the strategy) k ns later than in FlowSense, which changes a fill only if another event
falls inside those few ns (none does on this day: all 1,799 orders match).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
from hftbacktest import (
    BUY_EVENT,
    DEPTH_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
    event_dtype,
)
from hftbacktest.binding import hashmapbt_feed_latency
from hftbacktest.intrinsic import ptr_from_val, val_from_ptr
from numba import int64, njit

IOC, LIMIT = 3, 0
ST_NEW, ST_PARTIAL = 1, 5
REQ_NONE = 0
UNIT = 1e-4  # LOBSTER price unit in dollars
TICK = 0.01
THROUGH = 5000 * TICK  # marketable limit: this far through the touch
EV_EXEC, EV_HIDDEN = 3, 4


@njit(cache=True)
def _emit(out, m, ev, ts, local, px, qty):
    out[m].ev = ev
    out[m].exch_ts = ts
    out[m].local_ts = local
    out[m].px = px * UNIT
    out[m].qty = qty
    return m + 1


@njit(cache=True)
def _convert(ts, etype, eside, epx, esz, apx, asz, bpx, bsz, feed, out):
    n, levels = apx.shape
    m = 0
    base = EXCH_EVENT | LOCAL_EVENT
    k_tie = 0
    for i in range(n):
        m0 = m
        t = ts[i]
        k_tie = k_tie + 1 if i > 0 and t == ts[i - 1] else 0
        loc = t + feed + k_tie  # the k-th message stamped with the same ns is received k ns later
        if i > 0 and (etype[i] == EV_EXEC or etype[i] == EV_HIDDEN):
            m = _emit(out, m, base | TRADE_EVENT | (BUY_EVENT if eside[i] < 0 else SELL_EVENT), t, loc,
                      epx[i], float(esz[i]))
        for s in range(2):
            px = bpx if s == 0 else apx
            sz = bsz if s == 0 else asz
            flag = base | DEPTH_EVENT | (BUY_EVENT if s == 0 else SELL_EVENT)
            if i > 0:
                for kk in range(levels):  # levels that left the visible book
                    if sz[i - 1, kk] <= 0:
                        continue
                    p = px[i - 1, kk]
                    found = False
                    for k in range(levels):
                        if sz[i, k] > 0 and px[i, k] == p:
                            found = True
                            break
                    if not found:
                        m = _emit(out, m, flag, t, loc, p, 0.0)
            for k in range(levels):  # levels new or changed
                if sz[i, k] <= 0:
                    continue
                p = px[i, k]
                q_prev = 0
                if i > 0:
                    for kk in range(levels):
                        if sz[i - 1, kk] > 0 and px[i - 1, kk] == p:
                            q_prev = sz[i - 1, kk]
                            break
                if i == 0 or q_prev != sz[i, k]:
                    m = _emit(out, m, flag, t, loc, p, float(sz[i, k]))
        if m == m0:  # nothing visible changed: a no-op feed event so the strategy still wakes
            m = _noop(out, m, base, t, loc, apx[i], asz[i], bpx[i], bsz[i])
    # end marker (local only, 1 s after the last message): wait_next_feed reports the last real feed as
    # end-of-data instead of a feed when nothing follows it, so the strategy would miss its last step
    end = ts[n - 1] + 1_000_000_000
    return _noop(out, m, LOCAL_EVENT, end, end + feed, apx[n - 1], asz[n - 1], bpx[n - 1], bsz[n - 1])


@njit(cache=True)
def _noop(out, m, flags, t, local, apx, asz, bpx, bsz):
    """A depth event that restates the best bid (or ask): changes nothing, wakes the strategy."""
    if bsz[0] > 0:
        return _emit(out, m, flags | DEPTH_EVENT | BUY_EVENT, t, local, bpx[0], float(bsz[0]))
    return _emit(out, m, flags | DEPTH_EVENT | SELL_EVENT, t, local, apx[0], float(asz[0]))


@njit
def _exch_ts(hbt, default):
    """Exchange timestamp of the last feed event: ``hbt.feed_latency(0)[0]``, written like hftbacktest's
    own binding of it (its Optional-tuple return does not compile inside a numba loop)."""
    exch_ts = int64(0)
    local_ts = int64(0)
    exch_ptr = ptr_from_val(exch_ts)
    local_ptr = ptr_from_val(local_ts)
    if hashmapbt_feed_latency(hbt.ptr, 0, exch_ptr, local_ptr):
        return val_from_ptr(exch_ptr)
    return default


@njit
def _ofi_strategy(hbt, thr, size, window, maxpos, feed, last_local, rec):
    cap = rec.shape[0]
    e_buf = np.zeros(1 << 20)
    t_buf = np.zeros(1 << 20, np.int64)
    n = 0
    head = 0
    ofi = 0.0
    pb0 = qb0 = pa0 = qa0 = 0.0
    inflight = -1
    sent_at = 0
    next_id = 1
    nrec = 0
    while True:
        r = hbt.wait_next_feed(False, 1_000_000_000_000_000)
        if r == 1:
            break
        if r != 2:
            continue
        now_local = hbt.current_timestamp
        if now_local > last_local:  # the end marker
            break
        now = _exch_ts(hbt, now_local - feed)  # exchange ts of the last feed event
        depth = hbt.depth(0)
        pb1 = float(depth.best_bid_tick)
        qb1 = depth.best_bid_qty
        pa1 = float(depth.best_ask_tick)
        qa1 = depth.best_ask_qty
        e = 0.0
        if n > 0:
            if pb1 >= pb0:
                e += qb1
            if pb1 <= pb0:
                e -= qb0
            if pa1 <= pa0:
                e -= qa1
            if pa1 >= pa0:
                e += qa0
        pb0, qb0, pa0, qa0 = pb1, qb1, pa1, qa1
        if n >= e_buf.size:
            e_buf = np.concatenate((e_buf, np.zeros(e_buf.size)))
            t_buf = np.concatenate((t_buf, np.zeros(t_buf.size, np.int64)))
        e_buf[n] = e
        t_buf[n] = now
        ofi += e
        n += 1
        while head < n - 1 and t_buf[head] <= now - window:
            ofi -= e_buf[head]
            head += 1
        if inflight >= 0:
            o = hbt.orders(0).get(inflight)
            if o.req != REQ_NONE or o.status == ST_NEW or o.status == ST_PARTIAL:
                continue  # response not here yet, or still working
            if nrec < cap:
                rec[nrec, 0] = sent_at
                rec[nrec, 1] = o.side
                rec[nrec, 2] = round(o.qty)
                rec[nrec, 3] = round(o.exec_qty)
                rec[nrec, 4] = o.exec_price_tick
                rec[nrec, 5] = o.status
                nrec += 1
            hbt.clear_inactive_orders(0)
            inflight = -1
        pos = hbt.position(0)
        if now_local >= last_local:
            tgt = 0.0
        elif ofi > thr:
            tgt = size
        elif ofi < -thr:
            tgt = -size
        elif (pos > 0 and ofi < 0) or (pos < 0 and ofi > 0):
            tgt = 0.0
        else:
            tgt = pos
        tgt = max(-maxpos, min(maxpos, tgt))
        d = tgt - pos
        if d != 0.0:
            if d > 0:
                hbt.submit_buy_order(0, next_id, depth.best_ask + THROUGH, d, IOC, LIMIT, False)
            else:
                hbt.submit_sell_order(0, next_id, depth.best_bid - THROUGH, -d, IOC, LIMIT, False)
            inflight = next_id
            sent_at = now  # exchange timestamp of the message the order reacts to
            next_id += 1
    if inflight >= 0:  # answered before the end marker (1 s after the last feed)
        o = hbt.orders(0).get(inflight)
        if nrec < cap and o.req == REQ_NONE:
            rec[nrec, 0] = sent_at
            rec[nrec, 1] = o.side
            rec[nrec, 2] = round(o.qty)
            rec[nrec, 3] = round(o.exec_qty)
            rec[nrec, 4] = o.exec_price_tick
            rec[nrec, 5] = o.status
            nrec += 1
    return nrec, n


def main() -> None:
    src, params = sys.argv[1], json.loads(sys.argv[2])
    d = np.load(src)
    # row-major copies (the converter reads one book row at a time); part of the timed conversion below
    keys = ("ts", "etype", "eside", "epx", "esz", "apx", "asz", "bpx", "bsz")
    feed, order_lat, resp_lat = int(params["feed_ns"]), int(params["order_ns"]), int(params["response_ns"])
    # warm-up: load/compile the converter on a slice (cache=True), not timed
    _convert(*[np.ascontiguousarray(d[k][:50]) for k in keys], feed, np.zeros(50 * 50, event_dtype))
    t0 = time.perf_counter()
    arrays = [np.ascontiguousarray(d[k]) for k in keys]
    n = arrays[0].size
    levels = arrays[5].shape[1]
    out = np.zeros(n * (4 * levels + 2) + 1, event_dtype)
    m = _convert(*arrays, feed, out)
    data = out[:m].copy()
    convert_s = time.perf_counter() - t0
    last_local = int(data["local_ts"][m - 2])  # the last message (data[m - 1] is the end marker)

    def asset():
        return (
            BacktestAsset()
            .data([data])
            .linear_asset(1.0)
            .constant_order_latency(order_lat, resp_lat)
            .risk_adverse_queue_model()
            .no_partial_fill_exchange()
            .trading_value_fee_model(0.0, float(params["taker_fee"]))
            .tick_size(TICK)
            .lot_size(1.0)
            .last_trades_capacity(0)
        )

    rec = np.zeros((200_000, 6), np.int64)
    args = (float(params["threshold"]), float(params["size"]), int(params["window_ns"]),
            float(params["max_position"]), feed, last_local)
    # warm-up run on a slice: compiles the strategy for this backtest type (not timed)
    hbt = HashMapMarketDepthBacktest([asset().data([data[:2000].copy()])])
    _ofi_strategy(hbt, *args, rec)
    hbt.close()
    runs, build = [], []
    nrec = n_wake = 0
    sv = None
    for _ in range(max(int(params.get("repeat", 1)), 1)):
        t1 = time.perf_counter()
        hbt = HashMapMarketDepthBacktest([asset()])
        t2 = time.perf_counter()
        nrec, n_wake = _ofi_strategy(hbt, *args, rec)
        t3 = time.perf_counter()
        s = hbt.state_values(0)
        sv = (s.position, s.balance, s.fee, s.num_trades, s.trading_volume, s.trading_value)
        hbt.close()
        build.append(t2 - t1)
        runs.append(t3 - t2)
    r = rec[:nrec]
    filled = r[r[:, 3] > 0]
    buy, sell = filled[filled[:, 1] > 0], filled[filled[:, 1] < 0]
    pos, balance, fee, ntr, vol, val = sv

    def vwap(x):
        return float((x[:, 3] * x[:, 4]).sum() * TICK / x[:, 3].sum()) if x.shape[0] else None

    print(json.dumps({
        "ok": True,
        "n_messages": int(n),
        "n_hbt_events": int(m),
        "n_wakeups": int(n_wake),
        "convert_s": convert_s,
        "build_s": min(build),
        "run_s": min(runs),
        "runs_s": runs,
        "n_orders": int(nrec),
        "n_filled_orders": int(filled.shape[0]),
        "buy_orders": int(buy.shape[0]),
        "sell_orders": int(sell.shape[0]),
        "buy_qty": int(buy[:, 3].sum()),
        "sell_qty": int(sell[:, 3].sum()),
        "avg_buy_px": float(buy[:, 4].mean() * TICK) if buy.shape[0] else None,
        "avg_sell_px": float(sell[:, 4].mean() * TICK) if sell.shape[0] else None,
        "vwap_buy": vwap(buy),
        "vwap_sell": vwap(sell),
        "num_trades": int(ntr),
        "trading_volume": float(vol),
        "trading_value": float(val),
        "fees": float(fee),
        "final_position": float(pos),
        "balance": float(balance),
        # per order: exchange ts of the message it reacts to, side, qty, executed qty, executed price
        # (ticks of 0.01), status
        "orders": [[int(x[0]), int(x[1]), int(x[2]), int(x[3]), int(x[4]), int(x[5])] for x in r],
    }))


if __name__ == "__main__":
    main()
