"""Partitions shared by every symbol x day asset (raw data, features, labels, per-day backtests).

Both dimensions are dynamic: only the symbols and the days that exist in the inbox are partitions (no
empty calendar since 2012 that shows every asset "0% filled"). The inbox sensor, ``python -m
flowsense_dagster.run`` and the production stack register them with :func:`register_partitions`:

* ``symbol``: dynamic partitions ``symbols``;
* ``date``: dynamic partitions ``dates`` (``YYYY-MM-DD``).

Dagster orders the dimensions of a :class:`MultiPartitionKey` by name, so its string form is
``YYYY-MM-DD|SYMBOL``; :attr:`flowsense.data.lake.Partition.key` is ``SYMBOL|YYYY-MM-DD``. Always convert
through :func:`to_lake_partition` / :func:`to_partition_key`, never by splitting strings by hand. The grid
is the cross product of the two (a symbol without data on a registered day shows as missing).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from dagster import (
    AddDynamicPartitionsRequest,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
)

from flowsense.data.lake import Partition

if TYPE_CHECKING:
    from dagster import DagsterInstance

SYMBOLS = "symbols"
DATES = "dates"
DATE_DIM = "date"
SYMBOL_DIM = "symbol"

symbol_partitions = DynamicPartitionsDefinition(name=SYMBOLS)
date_partitions = DynamicPartitionsDefinition(name=DATES)
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


def new_symbols(symbols: Iterable[str], registered: Iterable[str]) -> list[str]:
    """Symbols not yet registered as dynamic partitions, sorted and de-duplicated."""
    known = set(registered)
    return sorted({s for s in symbols if s not in known})


def new_dates(dates: Iterable[dt.date], registered: Iterable[str]) -> list[str]:
    """Days (``YYYY-MM-DD``) not yet registered as dynamic partitions, sorted and de-duplicated."""
    known = set(registered)
    return sorted({d.isoformat() for d in dates} - known)


def partition_requests(instance: DagsterInstance, parts: Iterable[Partition]) -> list[AddDynamicPartitionsRequest]:
    """The dynamic partition requests (symbols, dates) that make every partition of ``parts`` exist."""
    parts = list(parts)
    out = []
    symbols = new_symbols((p.symbol for p in parts), instance.get_dynamic_partitions(SYMBOLS))
    if symbols:
        out.append(symbol_partitions.build_add_request(symbols))
    dates = new_dates((p.date for p in parts), instance.get_dynamic_partitions(DATES))
    if dates:
        out.append(date_partitions.build_add_request(dates))
    return out


def register_partitions(instance: DagsterInstance, parts: Iterable[Partition]) -> list[str]:
    """Register the symbols and days of ``parts`` that ``instance`` does not know yet; returns them."""
    added: list[str] = []
    for req in partition_requests(instance, parts):
        instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        added += list(req.partition_keys)
    return added
