"""Numba step functions: the ONE definition of every stateful feature, shared by batch and streaming.

Each feature family is an incremental state machine over two flat state arrays (``fst`` float64 and
``ist`` int64, timestamps are kept as int64 ns so they stay exact) and a float64 parameter vector.
The batch pass (:func:`features_batch` = tick + every bar clock in one loop) is an ``@njit`` loop that
calls the very same step functions (:func:`tick_step`,
:func:`bar_event`), with the same argument types (so each is compiled once), that the streaming engines in
:mod:`flowsense.features.streaming` call once per event, so both paths perform the same floating-point
operations in the same order and agree to the last bit.

Conventions (see also :mod:`flowsense.features.registry`):

* book rows use the LOBSTER layout ``ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ask_px_2, ...`` as float64;
  an empty level has price NaN (null in the lake) and size 0 (NaN is read as 0).
* For OFI an empty bid level is a level at price -inf with size 0, an empty ask level one at +inf with
  size 0, so a level appearing contributes its full size and a level vanishing its full previous size.
* Event type codes: see ``ET_*`` below. Trades carry their aggressor side ``agg`` (+1 buy, -1 sell,
  0 unknown) and ``size``; ``signed volume = agg * size``.

References:
    Cont, Kukanov & Stoikov (2014), "The price impact of order book events", J. Fin. Econometrics 12(1).
    Cont, Cucuringu & Zhang (2023), "Cross-impact of order flow imbalance in equity markets", Quant. Fin.
    Easley, Lopez de Prado & O'Hara (2012), "Flow toxicity and liquidity in a high-frequency world", RFS.
    Kyle (1985), "Continuous auctions and insider trading", Econometrica.
    Wilder (1978), "New Concepts in Technical Trading Systems" (RSI, ADX).
    Kaufman (1995), "Smarter Trading" (efficiency ratio).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# ---- event type codes ------------------------------------------------------------------------------
ET_OTHER = 0
ET_ADD = 1
ET_CANCEL = 2  # partial cancel or full delete
ET_TRADE = 3  # any execution / trade print / fill / cross
ET_MODIFY = 4

# ---- tick parameter vector ------------------------------------------------------------------------
TP_L = 0  # book levels used
TP_ND = 1  # number of depth-imbalance depths (<= 4)
TP_DEPTHS = 2  # 4 slots
TP_TFI_N1 = 6  # short trade-flow-imbalance window (events)
TP_TFI_N2 = 7  # long trade-flow-imbalance window (events), >= N1
TP_ROLL_N = 8  # rolling OFI window (events)
TP_TAU_NS = 9  # decay time constant of the arrival-rate intensities (ns)
TP_VPIN_V = 10  # VPIN bucket volume (shares)
TP_VPIN_N = 11  # VPIN buckets averaged
TP_W = 12  # L integrated-OFI weights follow

# ---- tick float state -------------------------------------------------------------------------------
TS_OFI1CUM = 0
TS_OFIINTCUM = 1
TS_TFI1_SV = 2
TS_TFI1_V = 3
TS_TFI2_SV = 4
TS_TFI2_V = 5
TS_ROLL = 6
TS_R_EV = 7
TS_R_TR = 8
TS_R_ADD = 9
TS_R_CXL = 10
TS_VP_B = 11
TS_VP_S = 12
TS_VP_SUM = 13
TS_PREV_MID = 14
TS_HDR = 16
# tick int state
TI_N = 0  # events seen
TI_PREV_TS = 1
TI_LAST_TRADE_TS = 2
TI_HAS_TRADE = 3
TI_VP_NB = 4  # completed VPIN buckets
TI_POS2 = 5  # ring position of event n in the trade-flow rings (n % n2, kept as a counter: no integer division)
TI_POS1 = 6  # ring position of event n - n1 ((n - n1) % n2)
TI_RPOS = 7  # ring position of event n in the rolling-OFI ring (n % rn)
TI_HDR = 8


def tick_ncols(levels: int, ndepth: int) -> int:
    """Number of float columns the tick step writes (see :func:`flowsense.features.tick.tick_columns`)."""
    return 8 + levels + ndepth + 18


@njit(cache=True, inline="always")
def _tick_base(L: int, nd: int) -> int:
    return 8 + L + nd


def tick_state_sizes(p: np.ndarray) -> tuple[int, int]:
    """(float, int) state lengths for tick parameters ``p``."""
    L = int(p[TP_L])
    return TS_HDR + 4 * L + 2 * int(p[TP_TFI_N2]) + int(p[TP_ROLL_N]) + int(p[TP_VPIN_N]), TI_HDR


@njit(cache=True, inline="always")
def top_step(a1, as1, b1, bs1):
    """Level 1 -> (mid, spread, microprice, ask size, bid size), sizes 0 where a side is empty: the one
    definition, used by :func:`tick_step` and the core set."""
    nan = np.nan
    if as1 != as1 or a1 != a1:
        as1 = 0.0
    if bs1 != bs1 or b1 != b1:
        bs1 = 0.0
    if a1 == a1 and b1 == b1:
        mid = 0.5 * (a1 + b1)
        spread = a1 - b1
    else:
        mid = nan
        spread = nan
    micro = (b1 * as1 + a1 * bs1) / (as1 + bs1) if a1 == a1 and b1 == b1 and as1 + bs1 > 0.0 else nan
    return mid, spread, micro, as1, bs1


@njit(cache=True, inline="always")
def norm_level(ap, asz, bp, bsz):
    """One raw book level -> OFI convention: empty ask at +inf / size 0, empty bid at -inf / size 0,
    NaN sizes 0."""
    if ap != ap:
        ap = np.inf
        asz = 0.0
    elif asz != asz:
        asz = 0.0
    if bp != bp:
        bp = -np.inf
        bsz = 0.0
    elif bsz != bsz:
        bsz = 0.0
    return ap, float(asz), bp, float(bsz)


@njit(cache=True, inline="always")
def ofi_step(ap, asz, bp, bsz, pap, pas, pbp, pbs):
    """Cont-Kukanov-Stoikov ``e_n`` of one level from the normalised level now and before (same operations,
    same order used by :func:`tick_step`, the core set and the backtest's OFI strategy)."""
    e = 0.0
    if bp >= pbp:
        e += bsz
    if bp <= pbp:
        e -= pbs
    if ap <= pap:
        e -= asz
    if ap >= pap:
        e += pas
    return e


@njit(cache=True)
def tick_step(fst, ist, p, ts, etype, size, price, agg, row, out):
    """Process one event (the book ``row`` after it) and write the tick feature row into ``out``.

    ``fst``/``ist`` hold the state (initialised by :func:`flowsense.features.tick.TickParams.new_state`).
    """
    L = int(p[TP_L])
    nd = int(p[TP_ND])
    n1 = int(p[TP_TFI_N1])
    n2 = int(p[TP_TFI_N2])
    rn = int(p[TP_ROLL_N])
    vpv = p[TP_VPIN_V]
    vpn = int(p[TP_VPIN_N])
    o_prev = TS_HDR
    o_sv = o_prev + 4 * L
    o_v = o_sv + n2
    o_roll = o_v + n2
    o_vp = o_roll + rn
    n = ist[TI_N]
    first = n == 0
    nan = np.nan

    # ---- level 1 prices ---------------------------------------------------------------------------
    mid, spread, micro, as1, bs1 = top_step(row[0], row[1], row[2], row[3])
    out[0] = mid
    out[1] = spread
    out[2] = micro
    out[3] = micro - mid
    pm = fst[TS_PREV_MID]
    out[4] = nan if first else mid - pm
    fst[TS_PREV_MID] = mid

    # ---- OFI per level (Cont-Kukanov-Stoikov e_n at every level, Cont-Cucuringu-Zhang) ------------------
    ofi_int = 0.0
    cb = 0.0
    ca = 0.0
    nbl = 0.0
    nal = 0.0
    di = 0
    for k in range(L):
        ap = row[4 * k]
        asz = row[4 * k + 1]
        bp = row[4 * k + 2]
        bsz = row[4 * k + 3]
        if ap != ap:
            ap = np.inf
            asz = 0.0
        else:
            nal += 1.0
            if asz != asz:
                asz = 0.0
        if bp != bp:
            bp = -np.inf
            bsz = 0.0
        else:
            nbl += 1.0
            if bsz != bsz:
                bsz = 0.0
        j = o_prev + 4 * k
        e = 0.0
        if not first:
            e = ofi_step(ap, asz, bp, bsz, fst[j], fst[j + 1], fst[j + 2], fst[j + 3])
        fst[j] = ap
        fst[j + 1] = asz
        fst[j + 2] = bp
        fst[j + 3] = bsz
        out[5 + k] = e
        ofi_int += p[TP_W + k] * e
        cb += bsz
        ca += asz
        if di < nd and k + 1 == int(p[TP_DEPTHS + di]):
            tot = cb + ca
            out[8 + L + di] = (cb - ca) / tot if tot > 0.0 else nan
            di += 1
    out[5 + L] = ofi_int
    fst[TS_OFI1CUM] += out[5]
    fst[TS_OFIINTCUM] += ofi_int
    out[6 + L] = fst[TS_OFI1CUM]
    out[7 + L] = fst[TS_OFIINTCUM]

    base = _tick_base(L, nd)
    out[base + 0] = bs1
    out[base + 1] = as1
    out[base + 2] = cb
    out[base + 3] = ca
    out[base + 4] = nbl
    out[base + 5] = nal

    # ---- trades -----------------------------------------------------------------------------------
    is_trade = etype == ET_TRADE and size > 0
    vol = size if is_trade else 0.0
    sv = agg * vol
    out[base + 6] = vol
    out[base + 7] = sv

    # trade-flow imbalance over the last n1 / n2 events (ring of size n2; integer sums are exact).
    # Ring positions are counters in ``ist`` (the same values as ``n % n2`` etc., without divisions).
    pos = ist[TI_POS2]
    if n >= n2:
        fst[TS_TFI2_SV] -= fst[o_sv + pos]
        fst[TS_TFI2_V] -= fst[o_v + pos]
    if n >= n1:
        q = ist[TI_POS1]
        fst[TS_TFI1_SV] -= fst[o_sv + q]
        fst[TS_TFI1_V] -= fst[o_v + q]
        ist[TI_POS1] = q + 1 if q + 1 < n2 else 0
    fst[o_sv + pos] = sv
    fst[o_v + pos] = vol
    ist[TI_POS2] = pos + 1 if pos + 1 < n2 else 0
    fst[TS_TFI1_SV] += sv
    fst[TS_TFI1_V] += vol
    fst[TS_TFI2_SV] += sv
    fst[TS_TFI2_V] += vol
    out[base + 8] = fst[TS_TFI1_SV] / fst[TS_TFI1_V] if fst[TS_TFI1_V] > 0.0 else nan
    out[base + 9] = fst[TS_TFI2_SV] / fst[TS_TFI2_V] if fst[TS_TFI2_V] > 0.0 else nan

    # rolling sum of L1 OFI over the last rn events
    rpos = ist[TI_RPOS]
    if n >= rn:
        fst[TS_ROLL] -= fst[o_roll + rpos]
    fst[o_roll + rpos] = out[5]
    ist[TI_RPOS] = rpos + 1 if rpos + 1 < rn else 0
    fst[TS_ROLL] += out[5]
    out[base + 10] = fst[TS_ROLL]

    # ---- arrival intensities: exponentially decaying counts, events per second -------------------------
    tau = p[TP_TAU_NS]
    inv_tau_s = 1e9 / tau
    if first:
        decay = 0.0
        out[base + 15] = nan
    else:
        dtn = ts - ist[TI_PREV_TS]
        decay = math.exp(-dtn / tau)
        out[base + 15] = dtn * 1e-9
    fst[TS_R_EV] = fst[TS_R_EV] * decay + inv_tau_s
    fst[TS_R_TR] = fst[TS_R_TR] * decay + (inv_tau_s if is_trade else 0.0)
    fst[TS_R_ADD] = fst[TS_R_ADD] * decay + (inv_tau_s if etype == ET_ADD else 0.0)
    fst[TS_R_CXL] = fst[TS_R_CXL] * decay + (inv_tau_s if etype == ET_CANCEL else 0.0)
    out[base + 11] = fst[TS_R_EV]
    out[base + 12] = fst[TS_R_TR]
    out[base + 13] = fst[TS_R_ADD]
    out[base + 14] = fst[TS_R_CXL]
    ist[TI_PREV_TS] = ts
    if is_trade:
        ist[TI_LAST_TRADE_TS] = ts
        ist[TI_HAS_TRADE] = 1
    out[base + 16] = (ts - ist[TI_LAST_TRADE_TS]) * 1e-9 if ist[TI_HAS_TRADE] == 1 else nan

    # ---- VPIN: equal-volume buckets, exact aggressor side (unknown side split half/half) --------------
    rem = vol
    while rem > 0.0:
        room = vpv - (fst[TS_VP_B] + fst[TS_VP_S])
        take = rem if rem < room else room
        if agg > 0:
            fst[TS_VP_B] += take
        elif agg < 0:
            fst[TS_VP_S] += take
        else:
            fst[TS_VP_B] += 0.5 * take
            fst[TS_VP_S] += 0.5 * take
        rem -= take
        if fst[TS_VP_B] + fst[TS_VP_S] >= vpv * (1.0 - 1e-12):
            nb = ist[TI_VP_NB]
            slot = o_vp + nb % vpn
            if nb >= vpn:
                fst[TS_VP_SUM] -= fst[slot]
            imb = abs(fst[TS_VP_B] - fst[TS_VP_S])
            fst[slot] = imb
            fst[TS_VP_SUM] += imb
            ist[TI_VP_NB] = nb + 1
            fst[TS_VP_B] = 0.0
            fst[TS_VP_S] = 0.0
    out[base + 17] = fst[TS_VP_SUM] / (vpn * vpv) if ist[TI_VP_NB] >= vpn else nan

    ist[TI_N] = n + 1


_BLK = 256  # rows per block of the batch passes


# =====================================================================================================
# Bars
# =====================================================================================================
MODE_TIME = 0
MODE_EVENTS = 1
MODE_VOLUME = 2

BP_MODE = 0
BP_SIZE = 1  # ns for time bars, events for event bars, shares for volume bars
BP_L = 2
BP_ND = 3
BP_T = 4  # tick columns
BP_R1 = 5
BP_R2 = 6
BP_R3 = 7
BP_RV1 = 8
BP_RV2 = 9
BP_RSI = 10
BP_BB = 11
BP_BBK = 12
BP_ER1 = 13
BP_ER2 = 14
BP_ADX = 15
BP_KYLE = 16
BP_NPAR = 17

# bar float state
BS_N = 0
BS_OPEN = 1
BS_HIGH = 2
BS_LOW = 3
BS_CLOSE = 4  # last valid mid (carried across bars)
BS_SPREAD_SUM = 5
BS_SPREAD_N = 6
BS_VOL = 7
BS_SV = 8
BS_BUY = 9
BS_SELL = 10
BS_NOTIONAL = 11
BS_NTR = 12
BS_NADD = 13
BS_NCXL = 14
BS_NEV = 15
BS_OFIINT = 16
BS_DAYVOL = 17
BS_DAYNOT = 18
BS_PREV_CLOSE = 19  # close of the previous emitted bar
BS_RSI_G = 20
BS_RSI_L = 21
BS_RSI_CNT = 22
BS_ADX_TR = 23
BS_ADX_P = 24
BS_ADX_M = 25
BS_ADX = 26
BS_ADX_CNT = 27
BS_ADX_DXS = 28
BS_PREV_HIGH = 29
BS_PREV_LOW = 30
BS_HAS_TICK = 31
BS_HDR = 32
# bar int state
BI_CUR = 0  # time bars: current bar index (ts // size)
BI_STARTED = 1
BI_START_TS = 2
BI_LAST_TS = 3
BI_FIRST_SEQ = 4
BI_LAST_SEQ = 5
BI_NBARS = 6
BI_HDR = 8
# int output columns
IO_START = 0
IO_END = 1
IO_FIRST_SEQ = 2
IO_LAST_SEQ = 3
IO_NEV = 4
IO_PARTIAL = 5
IO_N = 6


def bar_ncols(levels: int, ndepth: int) -> int:
    """Number of float columns a bar row has (see :func:`flowsense.features.bars.bar_columns`)."""
    return 8 + levels + 1 + 2 * ndepth + 4 + 9 + 7 + 6 + 6 + 2 + 1


def _bar_ring_sizes(p: np.ndarray) -> tuple[int, int, int]:
    c = int(max(p[BP_R3], p[BP_BB], p[BP_ER2])) + 1
    return c, int(p[BP_RV2]), int(p[BP_KYLE])


def bar_state_sizes(p: np.ndarray) -> tuple[int, int]:
    L, nd, T = int(p[BP_L]), int(p[BP_ND]), int(p[BP_T])
    c, r, w = _bar_ring_sizes(p)
    return BS_HDR + L + nd + T + c + r + 2 * w, BI_HDR


@njit(cache=True, inline="always")
def _offsets(p):
    L = int(p[BP_L])
    nd = int(p[BP_ND])
    T = int(p[BP_T])
    c = int(max(p[BP_R3], max(p[BP_BB], p[BP_ER2]))) + 1
    r = int(p[BP_RV2])
    w = int(p[BP_KYLE])
    o_ofi = BS_HDR
    o_di = o_ofi + L
    o_tick = o_di + nd
    o_close = o_tick + T
    o_ret = o_close + c
    o_kx = o_ret + r
    o_ky = o_kx + w
    return L, nd, T, c, r, w, o_ofi, o_di, o_tick, o_close, o_ret, o_kx, o_ky


@njit(cache=True)
def _bar_reset(fst, ist, p, start_ts):
    L, nd, _T, _c, _r, _w, o_ofi, _o_di, _o_tick, _o_close, _o_ret, _o_kx, _o_ky = _offsets(p)
    fst[BS_N] = 0.0
    fst[BS_OPEN] = fst[BS_CLOSE]
    fst[BS_HIGH] = fst[BS_CLOSE]
    fst[BS_LOW] = fst[BS_CLOSE]
    for j in range(BS_SPREAD_SUM, BS_OFIINT + 1):
        fst[j] = 0.0
    for j in range(L + nd):
        fst[o_ofi + j] = 0.0
    ist[BI_START_TS] = start_ts
    ist[BI_FIRST_SEQ] = -1


@njit(cache=True)
def _bar_emit(fst, ist, p, end_ts, partial, fout, iout):
    """Close the current bar: write its row into ``fout``/``iout`` and update the rolling statistics."""
    L, nd, _T, c, r, w, o_ofi, o_di, o_tick, o_close, o_ret, o_kx, o_ky = _offsets(p)
    nan = np.nan
    nb = ist[BI_NBARS]
    n = fst[BS_N]
    tk = o_tick
    tbase = _tick_base(L, nd)
    has_tick = fst[BS_HAS_TICK] > 0.0
    close = fst[BS_CLOSE]
    opn = fst[BS_OPEN]
    iout[IO_START] = ist[BI_START_TS]
    iout[IO_END] = end_ts
    iout[IO_FIRST_SEQ] = ist[BI_FIRST_SEQ]
    iout[IO_LAST_SEQ] = ist[BI_LAST_SEQ] if n > 0 else -1
    iout[IO_NEV] = int(n)
    iout[IO_PARTIAL] = partial
    j = 0
    # prices
    fout[0] = opn
    fout[1] = fst[BS_HIGH]
    fout[2] = fst[BS_LOW]
    fout[3] = close
    fout[4] = fst[tk + 2] if has_tick else nan  # microprice at close
    fout[5] = fst[tk + 3] if has_tick else nan  # microprice - mid at close
    spread_close = fst[tk + 1] if has_tick else nan
    fout[6] = fst[BS_SPREAD_SUM] / fst[BS_SPREAD_N] if fst[BS_SPREAD_N] > 0 else spread_close
    fout[7] = spread_close
    j = 8
    for k in range(L):
        fout[j + k] = fst[o_ofi + k]
    j += L
    fout[j] = fst[BS_OFIINT]
    j += 1
    for k in range(nd):
        last_di = fst[tk + 8 + L + k] if has_tick else nan
        fout[j + k] = last_di
        fout[j + nd + k] = fst[o_di + k] / n if n > 0 else last_di
    j += 2 * nd
    fout[j + 0] = fst[tk + tbase + 0] if has_tick else nan
    fout[j + 1] = fst[tk + tbase + 1] if has_tick else nan
    fout[j + 2] = fst[tk + tbase + 2] if has_tick else nan
    fout[j + 3] = fst[tk + tbase + 3] if has_tick else nan
    j += 4
    # trades and VWAP
    vol = fst[BS_VOL]
    fout[j + 0] = vol
    fout[j + 1] = fst[BS_SV]
    fout[j + 2] = fst[BS_BUY]
    fout[j + 3] = fst[BS_SELL]
    fout[j + 4] = fst[BS_NTR]
    fout[j + 5] = fst[BS_SV] / vol if vol > 0 else nan
    fout[j + 6] = fst[BS_NOTIONAL] / vol if vol > 0 else nan
    vday = fst[BS_DAYNOT] / fst[BS_DAYVOL] if fst[BS_DAYVOL] > 0 else nan
    fout[j + 7] = vday
    fout[j + 8] = (close / vday - 1.0) * 1e4
    j += 9
    # arrival rates per second
    dur = (end_ts - ist[BI_START_TS]) * 1e-9
    fout[j + 0] = fst[BS_NADD]
    fout[j + 1] = fst[BS_NCXL]
    fout[j + 2] = fst[BS_NCXL] / fst[BS_NADD] if fst[BS_NADD] > 0 else nan
    if dur > 0:
        fout[j + 3] = fst[BS_NADD] / dur
        fout[j + 4] = fst[BS_NCXL] / dur
        fout[j + 5] = fst[BS_NTR] / dur
        fout[j + 6] = n / dur
    else:
        fout[j + 3] = nan
        fout[j + 4] = nan
        fout[j + 5] = nan
        fout[j + 6] = nan
    j += 7

    # ---- rolling statistics over bars ---------------------------------------------------------------
    cpos = nb % c
    fst[o_close + cpos] = close
    prev_close = fst[BS_PREV_CLOSE]
    r1 = math.log(close / prev_close) if nb > 0 else nan
    rpos = nb % r
    fst[o_ret + rpos] = r1
    # log returns at horizons h bars
    for q in range(3):
        h = int(p[BP_R1 + q])
        fout[j + q] = math.log(close / fst[o_close + (nb - h) % c]) if nb >= h else nan
    j += 3
    # realized volatility sqrt(sum r^2) over the last rv bars
    rv_a = nan
    rv_b = nan
    for q in range(2):
        m = int(p[BP_RV1 + q])
        val = nan
        if nb >= m:
            s = 0.0
            idx = rpos
            for _ in range(m):
                x = fst[o_ret + idx]
                s += x * x
                idx -= 1
                if idx < 0:
                    idx += r
            val = math.sqrt(s)
        if q == 0:
            rv_a = val
        else:
            rv_b = val
        fout[j + q] = val
    m1 = p[BP_RV1]
    m2 = p[BP_RV2]
    fout[j + 2] = (rv_a / math.sqrt(m1)) / (rv_b / math.sqrt(m2)) if rv_b > 0 else nan
    j += 3
    # RSI (Wilder smoothing of mid-close changes)
    rn = p[BP_RSI]
    rsi = nan
    if nb > 0:
        d = close - prev_close
        if d == d:
            g = d if d > 0 else 0.0
            lo = -d if d < 0 else 0.0
            cnt = fst[BS_RSI_CNT]
            if cnt < rn:
                fst[BS_RSI_G] += g
                fst[BS_RSI_L] += lo
                if cnt + 1 == rn:
                    fst[BS_RSI_G] /= rn
                    fst[BS_RSI_L] /= rn
            else:
                fst[BS_RSI_G] = (fst[BS_RSI_G] * (rn - 1) + g) / rn
                fst[BS_RSI_L] = (fst[BS_RSI_L] * (rn - 1) + lo) / rn
            fst[BS_RSI_CNT] = cnt + 1
    if fst[BS_RSI_CNT] >= rn:
        ag = fst[BS_RSI_G]
        al = fst[BS_RSI_L]
        rsi = 100.0 - 100.0 / (1.0 + ag / al) if al > 0 else 100.0 if ag > 0 else 50.0
    fout[j] = rsi
    j += 1
    # Bollinger %b and band width of the mid close
    bn = int(p[BP_BB])
    if nb + 1 >= bn:
        s = 0.0
        idx = cpos
        for _ in range(bn):
            s += fst[o_close + idx]
            idx -= 1
            if idx < 0:
                idx += c
        mean = s / bn
        s2 = 0.0
        idx = cpos
        for _ in range(bn):
            x = fst[o_close + idx] - mean
            s2 += x * x
            idx -= 1
            if idx < 0:
                idx += c
        sd = math.sqrt(s2 / bn)
        width = 2.0 * p[BP_BBK] * sd
        fout[j] = (close - (mean - p[BP_BBK] * sd)) / width if width > 0 else 0.5
        fout[j + 1] = width / mean
    else:
        fout[j] = nan
        fout[j + 1] = nan
    j += 2
    # Kaufman efficiency ratio
    for q in range(2):
        en = int(p[BP_ER1 + q])
        if nb >= en:
            s = 0.0
            idx = cpos
            for _ in range(en):
                prv = idx - 1 if idx > 0 else c - 1
                s += abs(fst[o_close + idx] - fst[o_close + prv])
                idx = prv
            net = abs(close - fst[o_close + (nb - en) % c])
            fout[j + q] = net / s if s > 0 else (0.0 if s == 0 else nan)
        else:
            fout[j + q] = nan
    j += 2
    # ADX (Wilder) on mid high / low / close
    an = p[BP_ADX]
    adx = nan
    hi = fst[BS_HIGH]
    lw = fst[BS_LOW]
    if nb > 0:
        up = hi - fst[BS_PREV_HIGH]
        dn = fst[BS_PREV_LOW] - lw
        pdm = up if (up > dn and up > 0) else 0.0
        mdm = dn if (dn > up and dn > 0) else 0.0
        tr = max(hi - lw, max(abs(hi - prev_close), abs(lw - prev_close)))
        if tr == tr:
            cnt = fst[BS_ADX_CNT]
            if cnt < an:
                fst[BS_ADX_TR] += tr
                fst[BS_ADX_P] += pdm
                fst[BS_ADX_M] += mdm
            else:
                fst[BS_ADX_TR] = fst[BS_ADX_TR] - fst[BS_ADX_TR] / an + tr
                fst[BS_ADX_P] = fst[BS_ADX_P] - fst[BS_ADX_P] / an + pdm
                fst[BS_ADX_M] = fst[BS_ADX_M] - fst[BS_ADX_M] / an + mdm
            cnt += 1
            fst[BS_ADX_CNT] = cnt
            if cnt >= an:
                trs = fst[BS_ADX_TR]
                pdi = 100.0 * fst[BS_ADX_P] / trs if trs > 0 else 0.0
                mdi = 100.0 * fst[BS_ADX_M] / trs if trs > 0 else 0.0
                dx = 100.0 * abs(pdi - mdi) / (pdi + mdi) if pdi + mdi > 0 else 0.0
                if cnt < 2 * an:
                    fst[BS_ADX_DXS] += dx
                elif cnt == 2 * an:
                    fst[BS_ADX_DXS] += dx
                    fst[BS_ADX] = fst[BS_ADX_DXS] / an
                else:
                    fst[BS_ADX] = (fst[BS_ADX] * (an - 1) + dx) / an
            if cnt >= 2 * an:
                adx = fst[BS_ADX]
    fout[j] = adx
    j += 1
    # Kyle's lambda: OLS slope of the bar's mid change on its signed volume over the last W bars
    kpos = nb % w
    fst[o_kx + kpos] = fst[BS_SV]
    fst[o_ky + kpos] = close - opn
    if nb + 1 >= w:
        sx = 0.0
        sy = 0.0
        for i in range(w):
            sx += fst[o_kx + i]
            sy += fst[o_ky + i]
        mx = sx / w
        my = sy / w
        sxx = 0.0
        sxy = 0.0
        syy = 0.0
        for i in range(w):
            dx_ = fst[o_kx + i] - mx
            dy_ = fst[o_ky + i] - my
            sxx += dx_ * dx_
            sxy += dx_ * dy_
            syy += dy_ * dy_
        fout[j] = sxy / sxx if sxx > 0 else nan
        fout[j + 1] = sxy * sxy / (sxx * syy) if (sxx > 0 and syy > 0) else nan
    else:
        fout[j] = nan
        fout[j + 1] = nan
    j += 2
    fout[j] = fst[tk + tbase + 17] if has_tick else nan  # VPIN at close
    j += 1

    fst[BS_PREV_CLOSE] = close
    fst[BS_PREV_HIGH] = hi
    fst[BS_PREV_LOW] = lw
    ist[BI_NBARS] = nb + 1


@njit(cache=True)
def bar_pending(ist, p, ts) -> int:
    """How many time bars an event at ``ts`` closes before it is added (0 for event/volume bars)."""
    if int(p[BP_MODE]) != MODE_TIME or ist[BI_STARTED] == 0:
        return 0
    size = np.int64(p[BP_SIZE])
    if ts < (ist[BI_CUR] + 1) * size:  # still inside the current bar (the common case): no division
        return 0
    return max(0, ts // size - ist[BI_CUR])


@njit(cache=True)
def bar_roll(fst, ist, p, ts, fout, iout, k) -> int:
    """Close every time bar that ends at or before ``ts`` (a heartbeat); returns the new row count."""
    if int(p[BP_MODE]) != MODE_TIME or ist[BI_STARTED] == 0:
        return k
    size = np.int64(p[BP_SIZE])
    if ts < (ist[BI_CUR] + 1) * size:  # still inside the current bar (the common case): no division
        return k
    idx = ts // size
    while ist[BI_CUR] < idx:
        end = (ist[BI_CUR] + 1) * size
        _bar_emit(fst, ist, p, end, np.int64(0), fout[k], iout[k])
        k += 1
        ist[BI_CUR] += 1
        _bar_reset(fst, ist, p, end)
    return k


@njit(cache=True)
def bar_event(fst, ist, p, ts, seq, etype, size, price, agg, trow, fout, iout, k) -> int:
    """Add one event (with its tick feature row ``trow``) to the bar clock; emitted rows go to
    ``fout[k:]``/``iout[k:]``. Returns the new row count. The caller guarantees room for
    ``bar_pending(...) + 1`` rows."""
    L, nd, _T, _c, _r, _w, o_ofi, o_di, o_tick, _o_close, _o_ret, _o_kx, _o_ky = _offsets(p)
    mode = int(p[BP_MODE])
    if ist[BI_STARTED] == 0:
        ist[BI_STARTED] = 1
        if mode == MODE_TIME:
            size_ns = np.int64(p[BP_SIZE])
            ist[BI_CUR] = ts // size_ns
            _bar_reset(fst, ist, p, ist[BI_CUR] * size_ns)
        else:
            _bar_reset(fst, ist, p, ts)
        fst[BS_CLOSE] = np.nan
        fst[BS_OPEN] = np.nan
        fst[BS_HIGH] = np.nan
        fst[BS_LOW] = np.nan
        fst[BS_PREV_CLOSE] = np.nan
    elif mode == MODE_TIME and ts >= (ist[BI_CUR] + 1) * np.int64(p[BP_SIZE]):  # the event closes time bars
        k = bar_roll(fst, ist, p, ts, fout, iout, k)
    # ---- accumulate ---------------------------------------------------------------------------------
    tbase = _tick_base(L, nd)
    mid = trow[0]
    if mid == mid:
        if fst[BS_OPEN] != fst[BS_OPEN]:
            fst[BS_OPEN] = mid
            fst[BS_HIGH] = mid
            fst[BS_LOW] = mid
        if mid > fst[BS_HIGH]:
            fst[BS_HIGH] = mid
        if mid < fst[BS_LOW]:
            fst[BS_LOW] = mid
        fst[BS_CLOSE] = mid
    sp = trow[1]
    if sp == sp:
        fst[BS_SPREAD_SUM] += sp
        fst[BS_SPREAD_N] += 1.0
    for q in range(L):
        fst[o_ofi + q] += trow[5 + q]
    fst[BS_OFIINT] += trow[5 + L]
    for q in range(nd):
        fst[o_di + q] += trow[8 + L + q]
    # keep the tick values the bar reports at its close (spread, microprice, depth, VPIN)
    fst[o_tick + 1] = trow[1]
    fst[o_tick + 2] = trow[2]
    fst[o_tick + 3] = trow[3]
    for q in range(nd):
        fst[o_tick + 8 + L + q] = trow[8 + L + q]
    for q in range(4):
        fst[o_tick + tbase + q] = trow[tbase + q]
    fst[o_tick + tbase + 17] = trow[tbase + 17]
    fst[BS_HAS_TICK] = 1.0
    vol = trow[tbase + 6]
    if vol > 0:
        fst[BS_VOL] += vol
        fst[BS_SV] += trow[tbase + 7]
        if agg > 0:
            fst[BS_BUY] += vol
        elif agg < 0:
            fst[BS_SELL] += vol
        fst[BS_NOTIONAL] += price * vol
        fst[BS_DAYVOL] += vol
        fst[BS_DAYNOT] += price * vol
        fst[BS_NTR] += 1.0
    if etype == ET_ADD:
        fst[BS_NADD] += 1.0
    elif etype == ET_CANCEL:
        fst[BS_NCXL] += 1.0
    fst[BS_N] += 1.0
    if ist[BI_FIRST_SEQ] < 0:
        ist[BI_FIRST_SEQ] = seq
    ist[BI_LAST_SEQ] = seq
    ist[BI_LAST_TS] = ts
    # ---- event / volume clocks close after the event ----------------------------------------------
    if (mode == MODE_EVENTS and fst[BS_N] >= p[BP_SIZE]) or (mode == MODE_VOLUME and fst[BS_VOL] >= p[BP_SIZE]):
        _bar_emit(fst, ist, p, ts, np.int64(0), fout[k], iout[k])
        k += 1
        _bar_reset(fst, ist, p, ts)
    return k


@njit(cache=True)
def bar_flush(fst, ist, p, fout, iout, k) -> int:
    """End of data: emit the open bar (marked partial) if it holds any event."""
    if ist[BI_STARTED] == 0 or fst[BS_N] == 0:
        return k
    mode = int(p[BP_MODE])
    end = (ist[BI_CUR] + 1) * np.int64(p[BP_SIZE]) if mode == MODE_TIME else ist[BI_LAST_TS]
    _bar_emit(fst, ist, p, end, np.int64(1), fout[k], iout[k])
    k += 1
    _bar_reset(fst, ist, p, end)
    if mode == MODE_TIME:
        ist[BI_CUR] += 1
    return k


@njit(cache=True)
def features_batch(tf, ti, tp, ts, seq, etype, size, price, agg, book, out, bf, bi, bp, fout, iout, offs, counts,
                   flush, tick_given):
    """Fused batch pass: :func:`tick_step` for a block of events, then :func:`bar_event` of every clock over
    the block's tick rows while they are in cache. Clock ``c`` keeps its own state (``bf[c]``, ``bi[c]``,
    ``bp[c]``) and never reads another clock's, so this is the same sequence of operations per clock as the
    streaming ``stream_step`` (event by event: tick step, then every clock). Clock ``c`` writes its bars to
    rows ``offs[c]:`` of ``fout``/``iout``; ``counts[c]`` holds its number of bars on return.

    ``tick_given``: ``out`` already holds the tick matrix (bars from given tick rows, ``book`` unused); the
    bar-only batch pass, without a second compiled loop around :func:`bar_event`."""
    n = ts.shape[0]
    m = book.shape[1]
    nc = out.shape[1]
    ncl = bf.shape[0]
    row = np.empty(m)
    obuf = np.empty((_BLK, nc))
    for c in range(ncl):
        counts[c] = offs[c]
    for start in range(0, n, _BLK):
        nb = min(start + _BLK, n) - start
        for r in range(nb):
            i = start + r
            if tick_given:
                for j in range(nc):
                    obuf[r, j] = out[i, j]
            else:
                for j in range(m):
                    row[j] = book[i, j]
                tick_step(tf, ti, tp, ts[i], np.int64(etype[i]), size[i], price[i], agg[i], row, obuf[r])
        for c in range(ncl):
            fst = bf[c]  # views taken once per block, not per event
            ist = bi[c]
            p = bp[c]
            k = counts[c]
            for r in range(nb):
                i = start + r
                k = bar_event(fst, ist, p, ts[i], seq[i], np.int64(etype[i]), size[i], price[i], agg[i], obuf[r],
                              fout, iout, k)
            counts[c] = k
        if not tick_given:
            for j in range(nc):  # column-wise writes of the output block
                for r in range(nb):
                    out[start + r, j] = obuf[r, j]
    for c in range(ncl):
        if flush:
            counts[c] = bar_flush(bf[c], bi[c], bp[c], fout, iout, counts[c])
        counts[c] -= offs[c]
