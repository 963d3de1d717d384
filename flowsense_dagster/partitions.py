"""Partitions shared by every symbol x day asset (raw data, features, labels, per-day backtests).

* ``symbol``: dynamic (``symbols``); the inbox sensor and ``flowsense_dagster.run`` register new symbols.
* ``date``: daily, from 2012-01-01 (the LOBSTER samples are 2012-06-21) up to tomorrow (UTC).

Dagster orders the dimensions of a :class:`MultiPartitionKey` by name, so its string form is
``YYYY-MM-DD|SYMBOL``; :attr:`flowsense.data.lake.Partition.key` is ``SYMBOL|YYYY-MM-DD``. Always convert
through :func:`to_lake_partition` / :func:`to_partition_key`, never by splitting strings by hand.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from flowsense.data.lake import Partition

if TYPE_CHECKING:
    from dagster import DagsterInstance as DynamicPartitionsStore

SYMBOLS = "symbols"
DATE_DIM = "date"
SYMBOL_DIM = "symbol"
START_DATE = "2012-01-01"

symbol_partitions = DynamicPartitionsDefinition(name=SYMBOLS)
date_partitions = DailyPartitionsDefinition(start_date=START_DATE, end_offset=1)
symbol_date_partitions = MultiPartitionsDefinition({DATE_DIM: date_partitions, SYMBOL_DIM: symbol_partitions})


def _looks_like_date(value: str) -> bool:
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return False
    return True


def to_lake_partition(key: str | MultiPartitionKey) -> Partition:
    """A Dagster partition key (``MultiPartitionKey`` or its string) -> the lake's ``Partition``.

    Strings are accepted in Dagster's order (``2012-06-21|GOOG``) and in the lake's (``GOOG|2012-06-21``).
    """
    if isinstance(key, MultiPartitionKey):
        dims = key.keys_by_dimension
        return Partition(dims[SYMBOL_DIM], dt.date.fromisoformat(dims[DATE_DIM]))
    first, sep, second = str(key).partition("|")
    if not sep or not first or not second:
        raise ValueError(f"not a symbol x date partition key: {key!r} (expected YYYY-MM-DD|SYMBOL)")
    if _looks_like_date(first):
        return Partition(second, dt.date.fromisoformat(first))
    if _looks_like_date(second):
        return Partition(first, dt.date.fromisoformat(second))
    raise ValueError(f"partition key {key!r} has no YYYY-MM-DD date")


def to_partition_key(part: Partition) -> MultiPartitionKey:
    """The lake's ``Partition`` -> the Dagster ``MultiPartitionKey`` of ``symbol_date_partitions``."""
    return MultiPartitionKey({DATE_DIM: part.date.isoformat(), SYMBOL_DIM: part.symbol})


def date_in_range(day: dt.date) -> bool:
    """Whether ``day`` is a valid key of the date dimension right now."""
    keys = date_partitions.get_partition_keys()
    return bool(keys) and keys[0] <= day.isoformat() <= keys[-1]


def new_symbols(symbols: Iterable[str], registered: Iterable[str]) -> list[str]:
    """Symbols not yet registered as dynamic partitions, sorted and de-duplicated."""
    known = set(registered)
    return sorted({s for s in symbols if s not in known})


def register_partitions(instance: DynamicPartitionsStore, parts: Iterable[Partition]) -> list[str]:
    """Register the symbols of ``parts`` that ``instance`` does not know yet; returns them."""
    parts = list(parts)
    symbols = new_symbols((p.symbol for p in parts), instance.get_dynamic_partitions(SYMBOLS))
    if symbols:
        instance.add_dynamic_partitions(SYMBOLS, symbols)
    return symbols
