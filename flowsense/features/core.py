"""Core feature set: the lean scope of a vectorized pandas OFI study, at numba speed.

Per event (one row per book row): ``mid, spread, microprice, ofi_l1 .. ofi_lL``, with exactly the
definitions (and float64 values, bit for bit) of the ``features_tick`` columns of the same names written by
:func:`flowsense.features.kernels.tick_step` (mid and spread from level 1, microprice = size-weighted
level-1 price, Cont-Kukanov-Stoikov OFI ``e_n`` at every level, empty bid/ask levels at -inf/+inf with size
0, the first event's OFI 0). Per 1-second bar (epoch grid, ``[start, start + 1 s)``, only seconds that hold
events): ``ofi_l1 .. ofi_lL`` summed over the bar, ``mid_first``/``mid_last`` (first/last non-NaN mid),
``spread_mean`` (mean of the non-NaN spreads) and ``microprice_last`` (last non-NaN microprice) - the
``groupby(ts.floor("1s")).agg(sum/first/last/mean)`` of the pandas baseline in ``bench/features.py``.

One definition, two drivers: the per-event arithmetic lives in the ``inline="always"`` step functions
:func:`top_step` (level 1), :func:`ofi_step` (one level), :func:`bar_add` / :func:`bar_close` (the open bar)
and :func:`core_step` (one book row, state in arrays). :func:`core_batch` is the batch loop over column-major
arrays (state in local variables, loaded from / stored to the state arrays only at the ends);
:class:`CoreFeatureEngine` calls :func:`core_step` once per event. No ``fastmath``: both perform the same
IEEE operations in the same order, so streaming == batch bit for bit (``tests/features/test_features_core.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numba import njit

from flowsense.data.schemas import book_levels
from flowsense.features import kernels as K
from flowsense.features.bars import parse_clock
from flowsense.features.kernels import norm_level, ofi_step, top_step

# ---- state layout -----------------------------------------------------------------------------------
# float state ``fs``: the previous book row, normalised (4 per level: ask px (+inf if empty), ask size,
# bid px (-inf if empty), bid size), then the open bar: L OFI sums and the 5 values below.
CB_MID_FIRST = 0
CB_MID_LAST = 1
CB_SPREAD_SUM = 2
CB_SPREAD_N = 3
CB_MICRO_LAST = 4
CB_N = 5
# int state ``ist``
CI_N = 0  # events seen
CI_BAR = 1  # bar index of the open bar (ts // size)
CI_NEXT = 2  # end of the open bar (ns) = first ts that closes it
CI_BAR_N = 3  # events in the open bar (0: no open bar)
CI_N_ = 4


def core_columns(levels: int) -> list[str]:
    """Float columns of the core tick frame, in kernel order."""
    return ["mid", "spread", "microprice"] + [f"ofi_l{k}" for k in range(1, levels + 1)]


def core_bar_columns(levels: int) -> list[str]:
    """Float columns of the core bar frame, in kernel order (the pandas baseline's bar columns)."""
    return [f"ofi_l{k}" for k in range(1, levels + 1)] + ["mid_first", "mid_last", "spread_mean",
                                                           "microprice_last"]


def core_state(levels: int) -> tuple[np.ndarray, np.ndarray]:
    """Fresh (float, int) state of the core features for ``levels`` book levels."""
    return np.zeros(4 * levels + levels + CB_N), np.zeros(CI_N_, dtype=np.int64)


# =====================================================================================================
# step functions: the one definition of every value
# =====================================================================================================
@njit(cache=True, inline="always")
def bar_add(mf, ml, ss, sn, mcl, mid, spread, micro):
    """Add one event's level-1 values to the open bar (first/last skip NaN, mean over non-NaN spreads)."""
    if mf != mf:
        mf = mid
    if mid == mid:
        ml = mid
    if spread == spread:
        ss += spread
        sn += 1.0
    if micro == micro:
        mcl = micro
    return mf, ml, ss, sn, mcl


@njit(cache=True, inline="always")
def bar_close(ss, sn):
    """Spread mean of a closing bar."""
    return ss / sn if sn > 0.0 else np.nan


@njit(cache=True, inline="always")
def _emit_bar(fs, L, bout):
    """The open bar's values (OFI sums per level, first/last mid, mean spread, last microprice) into
    ``bout``: what both a closing event and the end of data emit."""
    ob = 4 * L
    for k in range(L):
        bout[k] = fs[ob + k]
    c = ob + L
    bout[L] = fs[c + CB_MID_FIRST]
    bout[L + 1] = fs[c + CB_MID_LAST]
    bout[L + 2] = bar_close(fs[c + CB_SPREAD_SUM], fs[c + CB_SPREAD_N])
    bout[L + 3] = fs[c + CB_MICRO_LAST]


@njit(cache=True)
def core_step(fs, ist, size_ns, ts, row, out, bout):
    """One event (the book ``row`` after it, LOBSTER order) -> ``out`` = [mid, spread, microprice, ofi_l1..];
    when the event closes the open bar, that bar's values go to ``bout`` and its start (ns) is returned,
    else -1. State: ``fs``/``ist`` (:func:`core_state`)."""
    L = out.shape[0] - 3
    ob = 4 * L
    first = ist[CI_N] == 0
    mid, spread, micro, _, _ = top_step(row[0], row[1], row[2], row[3])
    out[0] = mid
    out[1] = spread
    out[2] = micro
    closed = np.int64(-1)
    nb = ist[CI_BAR_N]
    if nb > 0 and ts >= ist[CI_NEXT]:  # the event closes the open bar
        _emit_bar(fs, L, bout)
        closed = ist[CI_BAR] * size_ns
        nb = 0
    if nb == 0:  # open a bar (division only here)
        b = ts // size_ns
        ist[CI_BAR] = b
        ist[CI_NEXT] = (b + 1) * size_ns
        for k in range(L):
            fs[ob + k] = 0.0
        c = ob + L
        fs[c + CB_MID_FIRST] = np.nan
        fs[c + CB_MID_LAST] = np.nan
        fs[c + CB_SPREAD_SUM] = 0.0
        fs[c + CB_SPREAD_N] = 0.0
        fs[c + CB_MICRO_LAST] = np.nan
    if first:  # no previous row: compare the first row with itself (OFI exactly 0, as the full set)
        for k in range(L):
            ap, asz, bp, bsz = norm_level(row[4 * k], row[4 * k + 1], row[4 * k + 2], row[4 * k + 3])
            fs[4 * k] = ap
            fs[4 * k + 1] = asz
            fs[4 * k + 2] = bp
            fs[4 * k + 3] = bsz
    for k in range(L):
        ap, asz, bp, bsz = norm_level(row[4 * k], row[4 * k + 1], row[4 * k + 2], row[4 * k + 3])
        j = 4 * k
        e = ofi_step(ap, asz, bp, bsz, fs[j], fs[j + 1], fs[j + 2], fs[j + 3])
        fs[j] = ap
        fs[j + 1] = asz
        fs[j + 2] = bp
        fs[j + 3] = bsz
        out[3 + k] = e
        fs[ob + k] += e
    c = ob + L
    mf, ml, ss, sn, mcl = bar_add(fs[c + CB_MID_FIRST], fs[c + CB_MID_LAST], fs[c + CB_SPREAD_SUM],
                                  fs[c + CB_SPREAD_N], fs[c + CB_MICRO_LAST], mid, spread, micro)
    fs[c + CB_MID_FIRST] = mf
    fs[c + CB_MID_LAST] = ml
    fs[c + CB_SPREAD_SUM] = ss
    fs[c + CB_SPREAD_N] = sn
    fs[c + CB_MICRO_LAST] = mcl
    ist[CI_BAR_N] = nb + 1
    ist[CI_N] += 1
    return closed


@njit(cache=True)
def core_flush(fs, ist, size_ns, L, bout):
    """End of data: the open bar's values into ``bout``; returns its start (ns), or -1 when none is open."""
    if ist[CI_BAR_N] == 0:
        return np.int64(-1)
    _emit_bar(fs, L, bout)
    ist[CI_BAR_N] = 0
    return ist[CI_BAR] * size_ns


# =====================================================================================================
# batch
# =====================================================================================================
_BLK = 4096  # rows per block: the block's columns stay in L2 between the three sweeps


@njit(cache=True)
def core_batch(fs, ist, size_ns, ts, px, sz, tick, bstart, bars, flush):
    """Batch pass over ``n`` events: ``px``/``sz`` (n, 2L) column-major, columns ``ask_1, bid_1, ask_2, ...``
    (prices float64 with NaN for empty levels; sizes int64 or float64), ``ts`` int64 ns non-decreasing.
    Writes ``tick`` (n, 3 + L) column-major and the bars closed (all of them when ``flush``) into
    ``bstart``/``bars`` (capacity >= bars spanned + 1); returns the number of bars written. The state
    ``fs``/``ist`` is read at the start and written back at the end, so batch passes can be chained and a
    :class:`CoreFeatureEngine` can continue where a batch pass stopped (and vice versa).

    Per block of rows, three sweeps with their state in local variables, the block staying in cache:
    (1) per level, one loop over the rows (the previous row's level in four local scalars) writing the OFI
    column; (2) one loop over the rows: level 1 -> mid / spread /
    microprice and the bar boundaries (the bar index is computed only when an event crosses the open bar's
    end: no division per event); (3) per bar segment, per level, the OFI sum over its rows in event order -
    the additions :func:`core_step` makes, in the same order (independent chains per level, which overlap)."""
    n = ts.shape[0]
    L = tick.shape[1] - 3
    ob = 4 * L
    c = ob + L
    seen = ist[CI_N]
    mf = fs[c + CB_MID_FIRST]
    ml = fs[c + CB_MID_LAST]
    ss = fs[c + CB_SPREAD_SUM]
    sn = fs[c + CB_SPREAD_N]
    mcl = fs[c + CB_MICRO_LAST]
    cur = ist[CI_BAR]
    nxt = ist[CI_NEXT]
    nb = ist[CI_BAR_N]
    acc = np.empty(L)  # OFI sums of the open bar
    prev = np.empty(4 * L)  # normalised row before the block
    for k in range(L):
        acc[k] = fs[ob + k]
    for j in range(4 * L):
        prev[j] = fs[j]
    if seen == 0 and n > 0:  # no previous row: compare the first row with itself (OFI exactly 0)
        for k in range(L):
            ap, asz, bp, bsz = norm_level(px[0, 2 * k], sz[0, 2 * k], px[0, 2 * k + 1], sz[0, 2 * k + 1])
            prev[4 * k] = ap
            prev[4 * k + 1] = asz
            prev[4 * k + 2] = bp
            prev[4 * k + 3] = bsz
    cut = np.empty(_BLK, dtype=np.int64)  # rows of the block where a bar opens
    crow = np.empty(_BLK, dtype=np.int64)  # bars row of the bar closed there (-1: none was open)
    nbars = 0
    for i0 in range(0, n, _BLK):
        i1 = min(i0 + _BLK, n)
        m = i1 - i0
        # ---- (1) OFI per level: a map over the block's rows ------------------------------------------
        for k in range(L):
            ja = 2 * k
            jb = ja + 1
            j = 4 * k
            pa = px[i0:i1, ja]  # contiguous column views, once per level and block
            pb = px[i0:i1, jb]
            sa = sz[i0:i1, ja]
            sb = sz[i0:i1, jb]
            o = tick[i0:i1, 3 + k]
            pap = prev[j]  # the previous row, carried in local scalars
            pas = prev[j + 1]
            pbp = prev[j + 2]
            pbs = prev[j + 3]
            for i in range(m):
                ap, asz, bp, bsz = norm_level(pa[i], sa[i], pb[i], sb[i])
                o[i] = ofi_step(ap, asz, bp, bsz, pap, pas, pbp, pbs)
                pap = ap
                pas = asz
                pbp = bp
                pbs = bsz
            prev[j] = pap
            prev[j + 1] = pas
            prev[j + 2] = pbp
            prev[j + 3] = pbs
        # ---- (2) level 1 and the bar boundaries: one loop over the block's rows ----------------------
        ncut = 0
        for i in range(i0, i1):
            t = ts[i]
            mid, spread, micro, _, _ = top_step(px[i, 0], sz[i, 0], px[i, 1], sz[i, 1])
            tick[i, 0] = mid
            tick[i, 1] = spread
            tick[i, 2] = micro
            if t >= nxt or nb == 0:
                r = -1
                if nb > 0:  # close the open bar (its OFI sums: sweep 3)
                    bars[nbars, L] = mf
                    bars[nbars, L + 1] = ml
                    bars[nbars, L + 2] = bar_close(ss, sn)
                    bars[nbars, L + 3] = mcl
                    bstart[nbars] = cur * size_ns
                    r = nbars
                    nbars += 1
                cut[ncut] = i
                crow[ncut] = r
                ncut += 1
                cur = t // size_ns  # open a bar: the only division, once per bar
                nxt = (cur + 1) * size_ns
                nb = 0
                mf = np.nan
                ml = np.nan
                ss = 0.0
                sn = 0.0
                mcl = np.nan
            mf, ml, ss, sn, mcl = bar_add(mf, ml, ss, sn, mcl, mid, spread, micro)
            nb += 1
        # ---- (3) OFI sums per bar segment, in event order --------------------------------------------
        lo = i0
        for q in range(ncut + 1):
            hi = cut[q] if q < ncut else i1
            for k in range(L):
                a = acc[k]
                for i in range(lo, hi):
                    a += tick[i, 3 + k]
                acc[k] = a
            if q < ncut:
                r = crow[q]
                if r >= 0:
                    for k in range(L):
                        bars[r, k] = acc[k]
                for k in range(L):
                    acc[k] = 0.0
            lo = hi
    if flush and nb > 0:
        for k in range(L):
            bars[nbars, k] = acc[k]
        bars[nbars, L] = mf
        bars[nbars, L + 1] = ml
        bars[nbars, L + 2] = bar_close(ss, sn)
        bars[nbars, L + 3] = mcl
        bstart[nbars] = cur * size_ns
        nbars += 1
        nb = 0
    for j in range(4 * L):
        fs[j] = prev[j]
    for k in range(L):
        fs[ob + k] = acc[k]
    fs[c + CB_MID_FIRST] = mf
    fs[c + CB_MID_LAST] = ml
    fs[c + CB_SPREAD_SUM] = ss
    fs[c + CB_SPREAD_N] = sn
    fs[c + CB_MICRO_LAST] = mcl
    ist[CI_N] = seen + n
    ist[CI_BAR] = cur
    ist[CI_NEXT] = nxt
    ist[CI_BAR_N] = nb
    return nbars


# =====================================================================================================
# drivers
# =====================================================================================================
def _size_ns(clock: str) -> int:
    c = parse_clock(clock)
    if c.mode != K.MODE_TIME:
        raise ValueError(f"the core feature set has time bars only, not {clock!r}")
    return int(c.size)


def _split_columns(levels: int) -> tuple[list[str], list[str]]:
    """Price and size columns in kernel order (``ask_1, bid_1, ask_2, bid_2, ...``)."""
    px = [f"{s}_px_{k}" for k in range(1, levels + 1) for s in ("ask", "bid")]
    return px, [c.replace("_px_", "_sz_") for c in px]


def core_arrays(book: pl.DataFrame, levels: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """``(ts, px, sz, L)`` of a canonical book frame (sorted by ``seq``): ``ts`` int64 ns, ``px``/``sz``
    (n, 2L) column-major. One ``select(...).to_numpy(order="fortran")`` per dtype group: prices (float64)
    and sizes (int64 in the canonical schema, kept as int64 - a single mixed-dtype call would cast and copy
    the whole 4L-column book to float64, several times slower than the kernel)."""
    L = book_levels(book.columns)
    if levels is not None:
        L = min(L, levels)
    if L < 1:
        raise ValueError("book has no levels")
    if book.height and not book["seq"].is_sorted():
        book = book.sort("seq")
    pc, sc = _split_columns(L)
    px = book.select(pc).to_numpy(order="fortran")
    sz = book.select(sc).to_numpy(order="fortran")
    if px.dtype != np.float64:
        px = np.asfortranarray(px, dtype=np.float64)
    if sz.dtype != np.int64 and sz.dtype != np.float64:
        sz = np.asfortranarray(sz, dtype=np.float64)
    ts = book["ts"].dt.epoch("ns").to_numpy()
    if ts.dtype != np.int64:
        ts = ts.astype(np.int64)
    return ts, px, sz, L


def core_matrices(ts: np.ndarray, px: np.ndarray, sz: np.ndarray, size_ns: int) -> tuple[np.ndarray, np.ndarray,
                                                                                         np.ndarray]:
    """Run :func:`core_batch` on a whole day: (tick (n, 3+L) column-major, bar starts (ns), bars (m, L+4)
    column-major)."""
    n = ts.shape[0]
    L = px.shape[1] // 2
    fs, ist = core_state(L)
    tick = np.empty((n, 3 + L), order="F")
    cap = int(ts[-1] // size_ns - ts[0] // size_ns) + 2 if n else 1
    cap = min(cap, n + 1)
    bstart = np.empty(cap, dtype=np.int64)
    bars = np.empty((cap, L + 4), order="F")
    m = core_batch(fs, ist, np.int64(size_ns), ts, px, sz, tick, bstart, bars, True)
    return tick, bstart[:m], bars[:m]


def compute_core(book: pl.DataFrame, clock: str = "1s", levels: int | None = None) -> tuple[pl.DataFrame,
                                                                                           pl.DataFrame]:
    """Core features of one symbol-day from a canonical ``book`` frame: (tick frame, bar frame).

    Tick frame: ``seq, ts, mid, spread, microprice, ofi_l1 .. ofi_lL`` (one row per book row, values
    identical to ``features_tick``). Bar frame: ``bar_start`` then :func:`core_bar_columns` (one row per
    ``clock`` bar holding events, the last one included).
    """
    size_ns = _size_ns(clock)
    if book.height and not book["seq"].is_sorted():
        book = book.sort("seq")
    ts, px, sz, _ = core_arrays(book, levels)
    tick, bstart, bars = core_matrices(ts, px, sz, size_ns)
    return core_frames(book["seq"], book["ts"], tick, bstart, bars)


def core_frames(seq: pl.Series, ts: pl.Series, tick: np.ndarray, bstart: np.ndarray,
                bars: np.ndarray) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Wrap :func:`core_matrices` output into the (tick, bar) frames; column-major matrices become zero-copy
    columns (one ``from_numpy`` per frame), ``seq``/``ts`` are the book's own columns."""
    L = tick.shape[1] - 3
    tf = pl.from_numpy(tick, schema=core_columns(L), orient="row")
    tf = tf.insert_column(0, ts).insert_column(0, seq)
    bf = pl.from_numpy(bars, schema=core_bar_columns(L), orient="row")
    bf = bf.insert_column(0, pl.Series("bar_start", bstart).cast(pl.Datetime("ns", "UTC")))
    return tf, bf


@dataclass
class CoreBar:
    """A closed core bar: start (ns UTC) and the :func:`core_bar_columns` values."""

    start: int
    values: np.ndarray


class CoreFeatureEngine:
    """Streaming core features: :meth:`update` per event calls :func:`core_step`, the step the batch pass
    :func:`core_batch` shares, and returns the same values bit for bit."""

    def __init__(self, levels: int = 10, clock: str = "1s") -> None:
        self.levels = levels
        self.size_ns = np.int64(_size_ns(clock))
        self.columns = core_columns(levels)
        self.bar_columns = core_bar_columns(levels)
        self._f, self._i = core_state(levels)
        self._out = np.zeros(3 + levels)
        self._bout = np.zeros(levels + 4)
        self.bar: CoreBar | None = None  # the bar closed by the last update (None when none)

    def update(self, ts: int, book_row: np.ndarray) -> np.ndarray:
        """Feed one event (``ts`` int ns, the book row after it in LOBSTER order, float64); returns
        ``[mid, spread, microprice, ofi_l1 ..]`` (an internal buffer, overwritten by the next call). A bar
        the event closed is in :attr:`bar`."""
        if not book_row.flags.c_contiguous:
            book_row = np.ascontiguousarray(book_row)
        start = core_step(self._f, self._i, self.size_ns, ts, book_row, self._out, self._bout)
        self.bar = CoreBar(int(start), self._bout.copy()) if start >= 0 else None
        return self._out

    def finish(self) -> CoreBar | None:
        """End of data: the open bar (None when none is open)."""
        start = core_flush(self._f, self._i, self.size_ns, self.levels, self._bout)
        return CoreBar(int(start), self._bout.copy()) if start >= 0 else None
