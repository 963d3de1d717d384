"""Event-level features (``features_tick``): parameters, input preparation and the batch pass.

One row per book row (i.e. per event for LOBSTER), keyed by ``symbol, date, seq, ts``. The values are
written by :func:`flowsense.features.kernels.tick_step`; see :mod:`flowsense.features.registry` for one
line per column.

Input conventions (:func:`prepare_inputs`): the book after each event, in LOBSTER column order, as a
float64 matrix with NaN for empty-level prices and 0 for empty-level sizes; the event type of the same
``seq`` (from ``events``) mapped to the ``ET_*`` codes; the trade size/price of executions; the aggressor
side from ``trades`` (joined on ``seq``; +1 buyer-initiated, -1 seller-initiated, 0 when unknown, e.g.
crosses). When no ``trades`` table is given the aggressor is the opposite of the resting order's side
(LOBSTER convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from flowsense.data.schemas import book_level_columns, book_levels
from flowsense.features import kernels as K

TRADE_EVENT_TYPES = ("execute_visible", "execute_hidden", "cross", "trade", "fill")
EVENT_CODES: dict[str, int] = {
    **{t: K.ET_TRADE for t in TRADE_EVENT_TYPES},
    "add": K.ET_ADD,
    "cancel": K.ET_CANCEL,
    "delete": K.ET_CANCEL,
    "modify": K.ET_MODIFY,
}


def event_code(event_type: str | None) -> int:
    """The ``ET_*`` code of a canonical event type name (``ET_OTHER`` for anything else)."""
    return EVENT_CODES.get(event_type or "", K.ET_OTHER)


@dataclass(frozen=True)
class TickParams:
    """Parameters of the event-level features (all windows count events, not time).

    ``ofi_weights``: weights of the integrated OFI over levels 1..L. ``None`` = equal weights 1/L, a
    streaming-safe default close to the flat first principal component reported by Cont, Cucuringu &
    Zhang (2023). Fit weights on *training* days with :func:`flowsense.features.research.fit_ofi_weights`
    and pass them here; never fit them on the day being scored.
    ``vpin_bucket``: VPIN bucket volume in shares; a fixed number so streaming needs no look-ahead (use
    about 1/50 of the symbol's average daily volume from *previous* days).
    """

    levels: int = 10
    depths: tuple[int, ...] = (1, 3, 5, 10)
    tfi_short: int = 100
    tfi_long: int = 1000
    ofi_roll: int = 100
    rate_tau_s: float = 1.0
    vpin_bucket: float = 10_000.0
    vpin_buckets: int = 50
    ofi_weights: tuple[float, ...] | None = None

    def for_levels(self, book_levels_: int) -> TickParams:
        """These parameters restricted to a book with ``book_levels_`` levels."""
        L = min(self.levels, book_levels_)
        depths = tuple(sorted({d for d in (*self.depths, L) if d <= L and d >= 1}))
        w = self.ofi_weights
        if w is not None:
            w = tuple(w[:L])
        return TickParams(L, depths[:4], self.tfi_short, self.tfi_long, self.ofi_roll, self.rate_tau_s,
                          self.vpin_bucket, self.vpin_buckets, w)

    def weights(self) -> np.ndarray:
        if self.ofi_weights is None:
            return np.full(self.levels, 1.0 / self.levels)
        w = np.asarray(self.ofi_weights, dtype=np.float64)
        if w.shape != (self.levels,):
            raise ValueError(f"ofi_weights needs {self.levels} values, got {w.shape}")
        return w

    def array(self) -> np.ndarray:
        if not (1 <= self.tfi_short <= self.tfi_long):
            raise ValueError("need 1 <= tfi_short <= tfi_long")
        p = np.zeros(K.TP_W + self.levels)
        p[K.TP_L] = self.levels
        p[K.TP_ND] = len(self.depths)
        for i, d in enumerate(self.depths[:4]):
            p[K.TP_DEPTHS + i] = d
        p[K.TP_TFI_N1] = self.tfi_short
        p[K.TP_TFI_N2] = self.tfi_long
        p[K.TP_ROLL_N] = self.ofi_roll
        p[K.TP_TAU_NS] = self.rate_tau_s * 1e9
        p[K.TP_VPIN_V] = self.vpin_bucket
        p[K.TP_VPIN_N] = self.vpin_buckets
        p[K.TP_W:] = self.weights()
        return p

    def new_state(self) -> tuple[np.ndarray, np.ndarray]:
        nf, ni = K.tick_state_sizes(self.array())
        return np.zeros(nf), np.zeros(ni, dtype=np.int64)

    def columns(self) -> list[str]:
        return tick_columns(self)


def tick_columns(tp: TickParams) -> list[str]:
    """Feature columns of ``features_tick`` in kernel order."""
    L = tp.levels
    cols = ["mid", "spread", "microprice", "micro_dev", "dmid"]
    cols += [f"ofi_l{k}" for k in range(1, L + 1)]
    cols += ["ofi_int", "ofi_l1_cum", "ofi_int_cum"]
    cols += [f"depth_imb_{d}" for d in tp.depths]
    cols += ["bid_sz_1", "ask_sz_1", "bid_depth", "ask_depth", "n_bid_levels", "n_ask_levels",
             "trade_volume", "signed_volume", f"tfi_{tp.tfi_short}", f"tfi_{tp.tfi_long}",
             f"ofi_l1_sum_{tp.ofi_roll}", "event_rate", "trade_rate", "add_rate", "cancel_rate",
             "dt_prev", "t_since_trade", "vpin"]
    assert len(cols) == K.tick_ncols(L, len(tp.depths))
    return cols


@dataclass
class EventArrays:
    """The per-event inputs of the kernels, as contiguous numpy arrays (one entry per book row)."""

    symbol: str
    date: object
    ts: np.ndarray  # int64 ns UTC
    seq: np.ndarray  # int64
    etype: np.ndarray  # int8 ET_* code
    size: np.ndarray  # float64 event size (shares)
    price: np.ndarray  # float64 event price (trade price for executions)
    agg: np.ndarray  # float64 aggressor side of a trade (+1/-1/0)
    book: np.ndarray  # (n, 4L) float64, LOBSTER column order (any memory order)
    levels: int
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.ts.shape[0])

    def head(self, n: int) -> EventArrays:
        """The first ``n`` events (a truncated day, for no-lookahead checks)."""
        return EventArrays(self.symbol, self.date, self.ts[:n], self.seq[:n], self.etype[:n], self.size[:n],
                           self.price[:n], self.agg[:n], self.book[:n], self.levels)


def _event_codes(event_type: pl.Series) -> np.ndarray:
    """``ET_*`` codes of an event-type column (Enum: via its physical codes; String: via a mapping)."""
    if isinstance(event_type.dtype, pl.Enum):
        lut = np.array([EVENT_CODES.get(c, K.ET_OTHER) for c in event_type.dtype.categories.to_list()] + [K.ET_OTHER],
                       dtype=np.int8)
        phys = event_type.to_physical().fill_null(len(lut) - 1).to_numpy()
        return lut[phys]
    codes = event_type.cast(pl.String).replace_strict(EVENT_CODES, default=K.ET_OTHER, return_dtype=pl.Int8)
    return codes.fill_null(K.ET_OTHER).to_numpy().astype(np.int8)


def prepare_inputs(
    book: pl.DataFrame,
    events: pl.DataFrame | None = None,
    trades: pl.DataFrame | None = None,
    levels: int | None = None,
) -> EventArrays:
    """Turn canonical ``book`` (+ ``events``, ``trades``) frames into :class:`EventArrays`."""
    L = book_levels(book.columns)
    if levels is not None:
        L = min(L, levels)
    if L < 1:
        raise ValueError("book has no levels")
    book = book.sort("seq")
    n = book.height
    cols = book_level_columns(L)
    # Column-major (n, 4L): cheap to build from Arrow columns; the kernels read row views of it.
    # One select + to_numpy call (nulls of float/int columns come out as NaN); the null sizes of empty levels
    # are then set to 0 in the few columns that have any (none on a full book: no extra pass).
    sel = book.select(cols)
    mat = sel.to_numpy()
    if mat.dtype != np.float64 or mat.shape != (n, 4 * L):
        mat = np.asarray(mat, dtype=np.float64).reshape(n, 4 * L)
    nulls = sel.null_count().row(0) if n else (0,) * len(cols)
    for j, c in enumerate(cols):
        if nulls[j] and "_px_" not in c:
            col = mat[:, j]
            col[np.isnan(col)] = 0.0
    ts = book["ts"].dt.epoch("ns").to_numpy().astype(np.int64)
    seq = book["seq"].to_numpy().astype(np.int64)
    etype = np.zeros(n, dtype=np.int8)
    size = np.zeros(n)
    price = np.full(n, np.nan)
    agg = np.zeros(n)
    if events is not None and events.height:
        ev = events.select("seq", "event_type", "side", "size", "price")
        ev_seq = ev["seq"].to_numpy()
        if ev.height != n or not np.array_equal(ev_seq, seq):  # not row-aligned: align on seq
            ev = book.select("seq").join(ev, on="seq", how="left")
        etype = _event_codes(ev["event_type"])
        size = ev["size"].cast(pl.Float64).fill_null(0.0).to_numpy().astype(np.float64)
        price = ev["price"].cast(pl.Float64).fill_null(np.nan).to_numpy().astype(np.float64)
        if trades is None:
            side = ev["side"].cast(pl.Float64).fill_null(0.0).to_numpy()
            is_cross = (ev["event_type"].cast(pl.String) == "cross").fill_null(False).to_numpy()
            agg = np.where((etype == K.ET_TRADE) & ~is_cross, -side, 0.0)
    if trades is not None and trades.height:
        tr = trades.group_by("seq").agg(pl.col("aggressor_side").first(), pl.col("size").sum(),
                                        pl.col("price").first()).sort("seq") \
            if trades["seq"].n_unique() != trades.height else trades.sort("seq")
        tseq = tr["seq"].to_numpy()
        pos = np.searchsorted(seq, tseq)
        ok = (pos < n) & (seq[np.minimum(pos, n - 1)] == tseq)
        pos = pos[ok]
        agg = np.zeros(n)
        agg[pos] = tr["aggressor_side"].cast(pl.Float64).fill_null(0.0).to_numpy()[ok]
        if events is None or not events.height:
            etype[pos] = K.ET_TRADE
            size[pos] = tr["size"].cast(pl.Float64).fill_null(0.0).to_numpy()[ok]
            price[pos] = tr["price"].cast(pl.Float64).fill_null(np.nan).to_numpy()[ok]
    symbol = book["symbol"][0] if n else ""
    date = book["date"][0] if n else None
    return EventArrays(symbol, date, ts, seq, etype, np.ascontiguousarray(size), np.ascontiguousarray(price),
                       np.ascontiguousarray(agg), mat, L)


def tick_matrix(inp: EventArrays, tp: TickParams) -> np.ndarray:
    """Run the batch tick pass; returns the (n, n_features) float64 matrix."""
    p = tp.array()
    fst, ist = tp.new_state()
    out = np.empty((len(inp), len(tick_columns(tp))), order="F")  # column-major: one Arrow column each
    book = np.asfortranarray(inp.book[:, : 4 * tp.levels])  # one compiled layout (no copy when already F)
    # the fused pass with no bar clock: one compiled batch loop for tick-only and tick + bars
    nob = np.zeros((0, 1))
    noi = np.zeros((0, K.IO_N), dtype=np.int64)
    K.features_batch(fst, ist, p, inp.ts, inp.seq, inp.etype, inp.size, inp.price, inp.agg, book, out,
                     nob, np.zeros((0, K.BI_HDR), dtype=np.int64), np.zeros((0, K.BP_NPAR)), nob, noi,
                     np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64), True, False)
    return out


def keys_frame(inp: EventArrays) -> pl.DataFrame:
    n = len(inp)
    return pl.DataFrame({
        "symbol": pl.repeat(inp.symbol, n, dtype=pl.String, eager=True),
        "date": pl.repeat(inp.date, n, dtype=pl.Date, eager=True),
        "seq": pl.Series("seq", inp.seq, dtype=pl.Int64),
        "ts": pl.Series("ts", inp.ts, dtype=pl.Int64).cast(pl.Datetime("ns", "UTC")),
    })


def tick_frame(inp: EventArrays, mat: np.ndarray, tp: TickParams) -> pl.DataFrame:
    """Wrap the tick matrix into the ``features_tick`` frame (keys first)."""
    cols = tick_columns(tp)
    feats = pl.from_numpy(np.asfortranarray(mat), schema=cols, orient="row")  # zero-copy columns when F-order
    return pl.concat([keys_frame(inp), feats], how="horizontal")


def compute_tick(inp: EventArrays, tp: TickParams | None = None) -> tuple[pl.DataFrame, np.ndarray, TickParams]:
    """``features_tick`` for one day: (frame, raw matrix, effective parameters)."""
    tp = (tp or TickParams()).for_levels(inp.levels)
    mat = tick_matrix(inp, tp)
    return tick_frame(inp, mat, tp), mat, tp


def default_weights(levels: int, kind: str = "equal", decay: float = 0.5) -> tuple[float, ...]:
    """Streaming-safe integrated-OFI weights: ``equal`` (1/L) or ``decay`` (exp(-decay*(k-1)), sum 1)."""
    if kind == "equal":
        w = np.ones(levels)
    elif kind == "decay":
        w = np.exp(-decay * np.arange(levels))
    else:
        raise ValueError(f"unknown weight kind {kind!r}")
    return tuple(float(x) for x in w / w.sum())


def as_weights(w: Sequence[float] | None) -> tuple[float, ...] | None:
    return None if w is None else tuple(float(x) for x in w)
