"""The hftbacktest side of the event-engine benchmark (runs in bench/.venvs/hftbacktest, numpy < 2.3).

Usage: python hftbacktest_ofi.py INPUT.npz PARAMS_JSON  ->  prints one JSON line.

INPUT.npz holds the LOBSTER day as arrays (ts, etype, eside, epx, esz, apx, asz, bpx, bsz; prices in
dollars) written by bench/backtest.py. It is converted to hftbacktest's ``event_dtype``: a depth event per
changed price level (from consecutive 10-level book rows; row 0 as a snapshot of every level) and a trade
event per execution (aggressor = opposite of the resting side), exch_ts = LOBSTER ts and
local_ts = ts + feed latency. The strategy is the same 1-second OFI threshold rule as FlowSense's
``ofi_threshold`` (IOC limit orders far through the touch as market orders, one order in flight).
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
from numba import njit

IOC, LIMIT = 3, 0
ORD_NEW, ORD_PARTIAL = 1, 5


@njit(cache=True)
def _convert(ts, etype, eside, epx, esz, apx, asz, bpx, bsz, feed, out):
    n, levels = apx.shape
    m = 0
    flags = EXCH_EVENT | LOCAL_EVENT
    for i in range(n):
        if etype[i] == 3 or etype[i] == 4:  # executions -> trade prints
            out[m].ev = flags | TRADE_EVENT | (BUY_EVENT if eside[i] < 0 else SELL_EVENT)
            out[m].exch_ts = ts[i]
            out[m].local_ts = ts[i] + feed
            out[m].px = epx[i]
            out[m].qty = esz[i]
            m += 1
        for s in range(2):
            px = bpx if s == 0 else apx
            sz = bsz if s == 0 else asz
            sflag = BUY_EVENT if s == 0 else SELL_EVENT
            for k in range(levels):  # levels new or changed
                p = px[i, k]
                if not (sz[i, k] > 0):
                    continue
                q_prev = 0.0
                if i > 0:
                    for kk in range(levels):
                        if px[i - 1, kk] == p and sz[i - 1, kk] > 0:
                            q_prev = sz[i - 1, kk]
                if i == 0 or q_prev != sz[i, k]:
                    out[m].ev = flags | DEPTH_EVENT | sflag
                    out[m].exch_ts = ts[i]
                    out[m].local_ts = ts[i] + feed
                    out[m].px = p
                    out[m].qty = sz[i, k]
                    m += 1
            if i > 0:  # levels gone
                for kk in range(levels):
                    p = px[i - 1, kk]
                    if not (sz[i - 1, kk] > 0):
                        continue
                    found = False
                    for k in range(levels):
                        if px[i, k] == p and sz[i, k] > 0:
                            found = True
                    if not found:
                        out[m].ev = flags | DEPTH_EVENT | sflag
                        out[m].exch_ts = ts[i]
                        out[m].local_ts = ts[i] + feed
                        out[m].px = p
                        out[m].qty = 0.0
                        m += 1
    return m


@njit
def _ofi_strategy(hbt, thr, size, window, maxpos, feed, cap, rec):
    e_buf = np.zeros(cap)
    t_buf = np.zeros(cap, np.int64)
    n = 0
    head = 0
    ofi = 0.0
    pb0 = np.nan
    qb0 = 0.0
    pa0 = np.nan
    qa0 = 0.0
    inflight = -1
    next_id = 1
    nrec = 0
    while True:
        r = hbt.wait_next_feed(False, 1_000_000_000_000)
        if r == 1:
            break
        if r != 2:
            continue
        depth = hbt.depth(0)
        pb1 = depth.best_bid
        qb1 = depth.best_bid_qty
        pa1 = depth.best_ask
        qa1 = depth.best_ask_qty
        now = hbt.current_timestamp - feed
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
        if n >= cap:
            break
        e_buf[n] = e
        t_buf[n] = now
        ofi += e
        n += 1
        while head < n - 1 and t_buf[head] <= now - window:
            ofi -= e_buf[head]
            head += 1
        if inflight >= 0:
            o = hbt.orders(0).get(inflight)
            if o is None or o.status == ORD_NEW or o.status == ORD_PARTIAL:
                continue  # not yet acknowledged locally, or still working
            if nrec < rec.shape[0]:
                rec[nrec, 0] = o.side
                rec[nrec, 1] = o.qty - o.leaves_qty
                rec[nrec, 2] = o.exec_price
                nrec += 1
            hbt.clear_inactive_orders(0)
            inflight = -1
        pos = hbt.position(0)
        if ofi > thr:
            tgt = size
        elif ofi < -thr:
            tgt = -size
        elif (pos > 0 and ofi < 0) or (pos < 0 and ofi > 0):
            tgt = 0.0
        else:
            tgt = pos
        tgt = max(-maxpos, min(maxpos, tgt))
        d = tgt - pos
        if d > 0:
            hbt.submit_buy_order(0, next_id, pa1 + 50.0, d, IOC, LIMIT, False)
            inflight = next_id
            next_id += 1
        elif d < 0:
            hbt.submit_sell_order(0, next_id, pb1 - 50.0, -d, IOC, LIMIT, False)
            inflight = next_id
            next_id += 1
    return nrec, n


def main() -> None:
    src, params = sys.argv[1], json.loads(sys.argv[2])
    d = np.load(src)
    feed, order_lat, resp_lat = params["feed_ns"], params["order_ns"], params["response_ns"]
    t0 = time.perf_counter()
    n = d["ts"].size
    out = np.zeros(n * 8 + 1000, event_dtype)
    m = _convert(d["ts"], d["etype"], d["eside"], d["epx"], d["esz"],
                 d["apx"], d["asz"], d["bpx"], d["bsz"], feed, out)
    data = out[:m].copy()
    convert_s = time.perf_counter() - t0
    asset = (
        BacktestAsset()
        .data([data])
        .linear_asset(1.0)
        .constant_order_latency(order_lat, resp_lat)
        .risk_adverse_queue_model()
        .partial_fill_exchange()
        .trading_value_fee_model(0.0, params["taker_fee"])
        .tick_size(0.01)
        .lot_size(1.0)
        .last_trades_capacity(0)
    )
    rec = np.zeros((200_000, 3))
    runs = []
    nrec = n_wake = 0
    for _ in range(params.get("repeat", 1)):
        t1 = time.perf_counter()
        hbt = HashMapMarketDepthBacktest([asset])
        nrec, n_wake = _ofi_strategy(hbt, float(params["threshold"]), float(params["size"]),
                                     int(params["window_ns"]), float(params["max_position"]), feed,
                                     n * 8, rec)
        sv = hbt.state_values(0)
        pos, balance, fee, ntr, vol, val = (sv.position, sv.balance, sv.fee, sv.num_trades,
                                            sv.trading_volume, sv.trading_value)
        hbt.close()
        runs.append(time.perf_counter() - t1)
    r = rec[:nrec]
    filled = r[r[:, 1] > 0]
    out_json = {
        "ok": True,
        "n_messages": int(n),
        "n_hbt_events": int(m),
        "n_wakeups": int(n_wake),
        "convert_s": convert_s,
        "run_s": min(runs),
        "runs_s": runs,
        "n_orders": int(nrec),
        "n_filled_orders": int(filled.shape[0]),
        "buy_orders": int((filled[:, 0] > 0).sum()),
        "sell_orders": int((filled[:, 0] < 0).sum()),
        "buy_qty": float(filled[filled[:, 0] > 0, 1].sum()),
        "sell_qty": float(filled[filled[:, 0] < 0, 1].sum()),
        "avg_buy_exec_px": float(np.average(filled[filled[:, 0] > 0, 2])) if (filled[:, 0] > 0).any() else None,
        "avg_sell_exec_px": float(np.average(filled[filled[:, 0] < 0, 2])) if (filled[:, 0] < 0).any() else None,
        "num_trades": int(ntr),
        "trading_volume": float(vol),
        "trading_value": float(val),
        "fee": float(fee),
        "final_position": float(pos),
        "balance": float(balance),
    }
    print(json.dumps(out_json))


if __name__ == "__main__":
    main()
