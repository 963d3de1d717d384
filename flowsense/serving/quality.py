"""Quality gates of one partition's feature tables, run (as Dagster asset checks) before they are served.

Each gate returns a :class:`Gate` (passed, severity, description, metadata), independent of Dagster:

* :func:`finite_gate`: feature columns are finite where :data:`~flowsense.features.registry.REGISTRY` says
  they are always defined (``warmup_nan=False``) once the book is two-sided (the warm-up is the leading
  rows without a mid price); no feature column holds +/-inf anywhere; NaN in ``warmup_nan`` columns is
  allowed and counted;
* :func:`row_count_gate`: ``features_tick`` has exactly one row per raw event;
* :func:`monotonic_ts_gate`: ``ts`` never decreases (strictly increases for bar tables);
* :func:`labels_disjoint_gate`: no label column (other than the keys) appears in a feature table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from flowsense.data.lake import Lake, Partition
from flowsense.features.registry import describe

KEY_COLUMNS = frozenset({"symbol", "date", "seq", "ts", "bar_start", "first_seq", "last_seq", "n_events", "partial"})
TICK_TABLE = "features_tick"
LABELS_TABLE = "labels"


@dataclass
class Gate:
    """The outcome of one quality gate."""

    name: str
    table: str
    passed: bool
    severity: str = "error"  # "error" (a correctness issue) or "warn"
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


def feature_columns(df: pl.DataFrame) -> list[str]:
    """The feature columns of a feature table: float columns that are not keys."""
    return [c for c in df.columns if c not in KEY_COLUMNS and df.schema[c].is_float()]


def _mid_column(df: pl.DataFrame) -> str | None:
    return "mid" if "mid" in df.columns else "mid_close" if "mid_close" in df.columns else None


def finite_gate(df: pl.DataFrame, table: str) -> Gate:
    """No NaN/null/inf after warm-up in always-defined columns; no inf in any feature column."""
    cols = feature_columns(df)
    undocumented, strict, lenient = [], [], []
    for c in cols:
        try:
            (lenient if describe(c, table).warmup_nan else strict).append(c)
        except KeyError:
            undocumented.append(c)
    mid = _mid_column(df)
    warmup = 0
    if mid is not None and df.height:
        ok = df[mid].is_not_null() & df[mid].is_finite()
        first = ok.arg_true()
        warmup = int(first[0]) if first.len() else df.height
    body = df.slice(warmup)
    bad_strict: dict[str, int] = {}
    if strict and body.height:
        counts = body.select(
            [(pl.col(c).is_null() | ~pl.col(c).is_finite()).sum().alias(c) for c in strict]
        ).row(0, named=True)
        bad_strict = {c: int(n) for c, n in counts.items() if n}
    inf_counts: dict[str, int] = {}
    if cols and df.height:
        counts = df.select([pl.col(c).is_infinite().sum().alias(c) for c in cols]).row(0, named=True)
        inf_counts = {c: int(n) for c, n in counts.items() if n}
    nan_warmup: dict[str, int] = {}
    if lenient and df.height:
        counts = df.select([pl.col(c).is_nan().sum().alias(c) for c in lenient]).row(0, named=True)
        nan_warmup = {c: int(n) for c, n in counts.items() if n}
    all_warmup = mid is not None and warmup == df.height and df.height > 0
    passed = not bad_strict and not inf_counts and not all_warmup
    problems = []
    if bad_strict:
        problems.append(f"NaN/inf after warm-up in always-defined columns {bad_strict}")
    if inf_counts:
        problems.append(f"inf in {inf_counts}")
    if all_warmup:
        problems.append(f"{mid} is never defined: the book is never two-sided")
    return Gate(
        name="features_finite",
        table=table,
        passed=passed,
        description="; ".join(problems) or None,
        metadata={
            "rows": df.height,
            "warmup_rows": warmup,
            "strict_columns": len(strict),
            "warmup_nan_columns": len(lenient),
            "bad_strict": bad_strict,
            "inf": inf_counts,
            "nan_in_warmup_nan_columns": nan_warmup,
            "undocumented_columns": undocumented,
        },
    )


def row_count_gate(tick_rows: int, event_rows: int) -> Gate:
    """``features_tick`` rows == raw events rows."""
    ok = tick_rows == event_rows
    return Gate(
        name="rows_match_events",
        table=TICK_TABLE,
        passed=ok,
        description=None if ok else f"features_tick has {tick_rows} rows, raw events {event_rows}",
        metadata={"features_tick_rows": tick_rows, "events_rows": event_rows},
    )


def monotonic_ts_gate(df: pl.DataFrame, table: str, *, strict: bool) -> Gate:
    """``ts`` is non-decreasing (``strict``: increasing) and never null."""
    nulls = int(df["ts"].null_count())
    step = df["ts"].diff().drop_nulls().dt.total_nanoseconds()
    bad = int((step <= 0).sum() if strict else (step < 0).sum())
    ok = bad == 0 and nulls == 0
    order = "increasing" if strict else "non-decreasing"
    return Gate(
        name="ts_monotonic",
        table=table,
        passed=ok,
        description=None if ok else f"{bad} rows break {order} ts, {nulls} null ts",
        metadata={"violations": bad, "null_ts": nulls, "order": order, "rows": df.height},
    )


def labels_disjoint_gate(label_columns: Sequence[str], feature_columns_by_table: Mapping[str, Sequence[str]]) -> Gate:
    """No label column except the keys (``symbol, date, seq, ts``) is also a feature-table column."""
    labels = set(label_columns) - KEY_COLUMNS
    shared = {t: sorted(labels & set(cols)) for t, cols in feature_columns_by_table.items()}
    shared = {t: s for t, s in shared.items() if s}
    return Gate(
        name="labels_disjoint",
        table=LABELS_TABLE,
        passed=not shared,
        description=None if not shared else f"label columns found in feature tables: {shared}",
        metadata={"label_columns": sorted(labels), "shared": shared},
    )


def _rows(lake: Lake, table: str, part: Partition) -> int:
    return int(pl.scan_parquet(lake.path(table, part)).select(pl.len()).collect().item())


def partition_gates(lake: Lake, part: Partition, bar_tables: Sequence[str]) -> list[Gate]:
    """Every gate of ``part``'s feature tables (``features_tick``, ``bar_tables``, ``labels``) in the lake.

    A missing table yields a failed gate per check that needs it (materialize the features first).
    """
    gates: list[Gate] = []
    feature_cols: dict[str, list[str]] = {}
    for table in (TICK_TABLE, *bar_tables):
        if not lake.exists(table, part):
            gates += [Gate(n, table, False, description=f"no {table} partition {part.key} in the lake")
                      for n in ("features_finite", "ts_monotonic")]
            continue
        df = lake.read(table, part)
        feature_cols[table] = df.columns
        gates.append(finite_gate(df, table))
        gates.append(monotonic_ts_gate(df, table, strict=table != TICK_TABLE))
    if lake.exists(TICK_TABLE, part) and lake.exists("events", part):
        gates.append(row_count_gate(_rows(lake, TICK_TABLE, part), _rows(lake, "events", part)))
    else:
        gates.append(Gate("rows_match_events", TICK_TABLE, False,
                          description=f"features_tick or raw events of {part.key} missing"))
    if lake.exists(LABELS_TABLE, part):
        labels = lake.read(LABELS_TABLE, part)
        gates.append(monotonic_ts_gate(labels, LABELS_TABLE, strict=False))
        gates.append(labels_disjoint_gate(labels.columns, feature_cols))
    else:
        gates += [Gate(n, LABELS_TABLE, False, description=f"no labels partition {part.key} in the lake")
                  for n in ("ts_monotonic", "labels_disjoint")]
    return gates


__all__ = [
    "KEY_COLUMNS",
    "Gate",
    "feature_columns",
    "finite_gate",
    "labels_disjoint_gate",
    "monotonic_ts_gate",
    "partition_gates",
    "row_count_gate",
]
