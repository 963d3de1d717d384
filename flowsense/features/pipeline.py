"""Batch pipeline: one lake partition -> ``features_tick``, ``features_<clock>`` and ``labels``.

Stable API (used by the Dagster assets and Feast definitions):

* :func:`compute_partition` ``(lake, part, *, clocks=("1s", "1min"), ...) -> dict[table, DataFrame]``,
  writes every table with :meth:`Lake.write_derived` (atomic per table) unless ``write=False``;
* :func:`compute_day` the same from in-memory frames (no lake);
* table names: :data:`TICK_TABLE` = ``features_tick``, ``features_<clock>`` (:func:`bar_table`),
  :data:`LABELS_TABLE` = ``labels``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import polars as pl

from flowsense.data.lake import Lake, Partition, nan_to_null
from flowsense.features import kernels as K
from flowsense.features.bars import (
    BarParams,
    Clock,
    bar_capacity,
    bar_columns,
    bar_frame,
    bar_matrices,
    parse_clock,
)
from flowsense.features.labels import LabelParams, labels_frame
from flowsense.features.tick import (
    EventArrays,
    TickParams,
    prepare_inputs,
    tick_columns,
    tick_frame,
    tick_matrix,
)

TICK_TABLE = "features_tick"
LABELS_TABLE = "labels"
DEFAULT_CLOCKS: tuple[str, ...] = ("1s", "1min")


def bar_table(clock: str) -> str:
    """Lake table name of a bar clock: ``1s`` -> ``features_1s``."""
    return parse_clock(clock).table


def feature_matrices(
    inp: EventArrays,
    tp: TickParams,
    clocks: Sequence[Clock],
    bp: BarParams,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """One fused batch pass (:func:`~flowsense.features.kernels.features_batch`): the tick matrix
    (column-major) and, per clock, its bar matrices (float rows, int rows) - the same values as
    :func:`~flowsense.features.tick.tick_matrix` and :func:`~flowsense.features.bars.bar_matrices`."""
    n = len(inp)
    p = tp.array()
    tf, ti = tp.new_state()
    tick = np.empty((n, len(tick_columns(tp))), order="F")  # column-major: one Arrow column each
    ncl = len(clocks)
    arrays = [bp.array(c, tp) for c in clocks]
    nf = max([K.bar_state_sizes(a)[0] for a in arrays], default=1)
    bpar = np.zeros((ncl, K.BP_NPAR))
    for c, a in enumerate(arrays):
        bpar[c] = a
    bf = np.zeros((ncl, nf))
    bi = np.zeros((ncl, K.BI_HDR), dtype=np.int64)
    caps = [bar_capacity(inp, c) for c in clocks]
    offs = np.zeros(ncl, dtype=np.int64)
    if ncl:
        offs[1:] = np.cumsum(caps)[:-1]
    tot = int(sum(caps))
    fout = np.empty((tot, len(bar_columns(tp, bp))))
    iout = np.empty((tot, K.IO_N), dtype=np.int64)
    counts = np.zeros(max(1, ncl), dtype=np.int64)
    K.features_batch(tf, ti, p, inp.ts, inp.seq, inp.etype, inp.size, inp.price, inp.agg,
                     np.asfortranarray(inp.book[:, : 4 * tp.levels]), tick, bf, bi, bpar, fout, iout, offs, counts, True,
                     False)
    bars = [(fout[o : o + k], iout[o : o + k]) for o, k in zip(offs.tolist(), counts[:ncl].tolist(), strict=True)]
    return tick, bars


def _features(inp: EventArrays, clocks: Sequence[str], tick_params: TickParams | None,
              bar_params: BarParams | None) -> tuple[dict[str, pl.DataFrame], np.ndarray]:
    tp = (tick_params or TickParams()).for_levels(inp.levels)
    bp = bar_params or BarParams()
    cl = [parse_clock(c) for c in clocks]
    mat, bars = feature_matrices(inp, tp, cl, bp)
    out = {TICK_TABLE: tick_frame(inp, mat, tp)}
    for clock, (fout, iout) in zip(cl, bars, strict=True):
        out[clock.table] = bar_frame(inp.symbol, inp.date, fout, iout, tp, bp)
    return out, mat


def compute_features(
    inp: EventArrays,
    *,
    clocks: Sequence[str] = DEFAULT_CLOCKS,
    tick_params: TickParams | None = None,
    bar_params: BarParams | None = None,
) -> dict[str, pl.DataFrame]:
    """Tick and bar feature tables from prepared inputs (no labels)."""
    return _features(inp, clocks, tick_params, bar_params)[0]


def compute_tables(
    inp: EventArrays,
    *,
    clocks: Sequence[str] = DEFAULT_CLOCKS,
    tick_params: TickParams | None = None,
    bar_params: BarParams | None = None,
    label_params: LabelParams | None = None,
) -> dict[str, pl.DataFrame]:
    """Every table of :func:`compute_day` (features and ``labels``) from prepared inputs."""
    out, mat = _features(inp, clocks, tick_params, bar_params)
    # labels from the same sorted ts and mid (tick column 0 = (ask_1 + bid_1) / 2, as compute_labels)
    out[LABELS_TABLE] = labels_frame(inp.symbol, inp.date, inp.seq, inp.ts, mat[:, 0], label_params)
    return out


def _resolve_weights(inp: EventArrays, tp: TickParams, ofi_weights: Sequence[float] | str | None) -> TickParams:
    if ofi_weights is None:
        return tp
    if isinstance(ofi_weights, str):
        if ofi_weights in ("equal", "decay"):
            from flowsense.features.tick import default_weights

            return replace(tp, ofi_weights=default_weights(tp.levels, ofi_weights))
        if ofi_weights != "fit_day":
            raise ValueError(f"ofi_weights must be a sequence, 'equal', 'decay' or 'fit_day', not {ofi_weights!r}")
        # In-sample PCA on this day's 10 s bars: uses the whole day, research only (look-ahead!).
        from flowsense.features.research import fit_ofi_weights

        base = tp.for_levels(inp.levels)
        mat = tick_matrix(inp, base)
        fout, _ = bar_matrices(inp, mat, base, parse_clock("10s"), BarParams())
        w = fit_ofi_weights(fout[:, 8 : 8 + base.levels])
        return replace(tp, ofi_weights=tuple(float(x) for x in w))
    return replace(tp, ofi_weights=tuple(float(x) for x in ofi_weights))


def compute_day(
    book: pl.DataFrame,
    events: pl.DataFrame | None = None,
    trades: pl.DataFrame | None = None,
    *,
    clocks: Sequence[str] = DEFAULT_CLOCKS,
    tick_params: TickParams | None = None,
    bar_params: BarParams | None = None,
    label_params: LabelParams | None = None,
    ofi_weights: Sequence[float] | str | None = None,
) -> dict[str, pl.DataFrame]:
    """All feature tables and ``labels`` of one symbol-day from canonical frames.

    ``ofi_weights``: ``None`` keeps ``tick_params.ofi_weights`` (equal weights by default), a sequence of L
    weights (fitted on training days), ``"equal"``/``"decay"``, or ``"fit_day"`` = PCA on *this* day's
    10 s bars, which uses the whole day (in-sample; for research only, never for live features).
    """
    inp = prepare_inputs(book, events, trades)
    tp = _resolve_weights(inp, (tick_params or TickParams()), ofi_weights)
    return compute_tables(inp, clocks=clocks, tick_params=tp, bar_params=bar_params, label_params=label_params)


def compute_partition(
    lake: Lake,
    part: Partition,
    *,
    clocks: Sequence[str] = DEFAULT_CLOCKS,
    tick_params: TickParams | None = None,
    bar_params: BarParams | None = None,
    label_params: LabelParams | None = None,
    ofi_weights: Sequence[float] | str | None = None,
    write: bool = True,
) -> dict[str, pl.DataFrame]:
    """Compute ``features_tick``, ``features_<clock>`` per clock and ``labels`` for one lake partition
    (reads ``book``, ``events`` and, when present, ``trades``) and write each with ``write_derived``.

    Each written table records the partition version it was computed from (``Lake.version``, read before
    the inputs); if the partition is re-ingested meanwhile the write raises ``StaleInputsError``."""
    version = lake.version(part)
    book = lake.read("book", part)
    events = lake.read("events", part) if lake.exists("events", part) else None
    trades = lake.read("trades", part) if lake.exists("trades", part) else None
    tables = compute_day(book, events, trades, clocks=clocks, tick_params=tick_params, bar_params=bar_params,
                         label_params=label_params, ofi_weights=ofi_weights)
    tables = {name: nan_to_null(df) for name, df in tables.items()}  # as stored: missing = null, not NaN
    if write:
        for name, df in tables.items():
            lake.write_derived(name, part, df, inputs_version=version)
    return tables


def feature_count(tables: dict[str, pl.DataFrame]) -> int:
    """Number of distinct feature columns (keys and labels excluded) across the tables."""
    keys = {"symbol", "date", "seq", "ts", "bar_start", "first_seq", "last_seq", "n_events", "partial"}
    n = 0
    for name, df in tables.items():
        if name == LABELS_TABLE:
            continue
        n += sum(1 for c in df.columns if c not in keys and df.schema[c] == pl.Float64)
        if name != TICK_TABLE:
            break  # bar tables share one column set; count it once
    return n


__all__ = ["DEFAULT_CLOCKS", "LABELS_TABLE", "TICK_TABLE", "bar_table", "compute_day", "compute_features",
           "compute_partition", "compute_tables", "feature_count", "feature_matrices"]
