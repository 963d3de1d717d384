"""Feature tables: event-level features, bars at several clocks, and labels (issue "Feature tables").

Stable contract for downstream consumers (Dagster assets, Feast):

* ``compute_partition(lake, part, *, clocks=("1s", "1min"), tick_params=None, bar_params=None,
  label_params=None, ofi_weights=None, write=True) -> dict[str, pl.DataFrame]`` reads ``book``/``events``/
  ``trades`` of ``part`` and writes (``Lake.write_derived``) and returns:

  - ``features_tick``: one row per book event, keys ``symbol, date, seq, ts``;
  - ``features_<clock>`` per clock (``features_1s``, ``features_1min``, ``features_100ms``,
    ``features_500ev``, ``features_10000vol``...): keys ``symbol, date, bar_start, ts`` (bar end),
    ``first_seq, last_seq, n_events, partial``;
  - ``labels``: forward returns/directions, keys ``symbol, date, seq, ts`` (join on ``seq``).

* Every feature column is documented in :data:`flowsense.features.registry.REGISTRY`.
* Batch and live share one definition: the ``@njit`` step functions in :mod:`~flowsense.features.kernels`,
  driven by the batch loops (:mod:`~flowsense.features.tick`, :mod:`~flowsense.features.bars`) and by
  :mod:`~flowsense.features.streaming` (``TickFeatureEngine``, ``BarFeatureEngine``,
  ``StreamingFeatureEngine``).
* Undefined feature values are NaN (float columns); label values are null where the future is unknown.

Core feature set (:mod:`~flowsense.features.core`): ``compute_core(book, clock="1s") -> (tick, bars)`` computes
only ``mid, spread, microprice, ofi_l1 .. ofi_lL`` per event (keys ``seq, ts``) and their 1 s bars
(``bar_start``, OFI summed per level, ``mid_first``, ``mid_last``, ``spread_mean``, ``microprice_last``; only
seconds holding events) - the scope of a typical vectorized pandas OFI study, several times faster than the
full set because it computes 10x less. Use it for OFI / price-impact research and wherever those columns
are all a consumer needs; use :func:`compute_partition` for the lake tables. Its tick values are identical
(bit for bit) to the ``features_tick`` columns of the same names; live,
:class:`~flowsense.features.core.CoreFeatureEngine` calls the same step functions and reproduces the batch
values bit for bit.
"""

from __future__ import annotations

from flowsense.features.bars import BarParams, parse_clock
from flowsense.features.core import CoreFeatureEngine, compute_core
from flowsense.features.labels import LabelParams, compute_labels
from flowsense.features.pipeline import (
    DEFAULT_CLOCKS,
    LABELS_TABLE,
    TICK_TABLE,
    bar_table,
    compute_day,
    compute_features,
    compute_partition,
)
from flowsense.features.tick import TickParams, prepare_inputs

__all__ = [
    "DEFAULT_CLOCKS",
    "LABELS_TABLE",
    "TICK_TABLE",
    "BarParams",
    "CoreFeatureEngine",
    "LabelParams",
    "TickParams",
    "bar_table",
    "compute_core",
    "compute_day",
    "compute_features",
    "compute_labels",
    "compute_partition",
    "parse_clock",
    "prepare_inputs",
]
