"""Strict CSV parsing: fast on good files, precise (file and line) on bad ones.

The fast path is one multi-threaded ``polars.read_csv`` with a fixed schema. Polars pads short rows with
nulls and reports byte offsets, so after any failure - or any null where none may be - a slow pass with the
standard ``csv`` module finds the first offending line and raises :class:`IngestError` naming it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from flowsense.errors import IngestError

_INT_TYPES = (pl.Int8, pl.Int16, pl.Int32, pl.Int64, pl.UInt8, pl.UInt16, pl.UInt32, pl.UInt64)


def _check_value(text: str, dtype: pl.DataType) -> str | None:
    """Return why ``text`` is not a valid value of ``dtype``, or None if it is."""
    if text.strip() == "":
        return "empty field"
    try:
        if isinstance(dtype, _INT_TYPES):
            int(text)
        elif dtype in (pl.Float32, pl.Float64):
            float(text)
    except ValueError:
        return f"{text!r} is not a number"
    return None


def locate_error(
    data: bytes,
    path: str | Path,
    schema: dict[str, pl.DataType],
    *,
    skip_rows: int = 0,
    allow_null: Sequence[str] = (),
) -> IngestError:
    """Scan ``data`` line by line and describe its first malformed line."""
    names = list(schema)
    text = io.StringIO(data.decode("utf-8", errors="replace"))
    reader = csv.reader(text)
    for lineno, row in enumerate(reader, start=1):
        if lineno <= skip_rows:
            continue
        if len(row) != len(names):
            return IngestError(path, f"expected {len(names)} columns, found {len(row)}", line=lineno)
        for name, value in zip(names, row, strict=True):
            if name in allow_null and value.strip() == "":
                continue
            why = _check_value(value, schema[name])
            if why is not None:
                return IngestError(path, f"column {name!r}: {why}", line=lineno)
    return IngestError(path, "could not parse file (no single malformed line found)")


def read_strict_csv(
    data: bytes,
    path: str | Path,
    schema: dict[str, pl.DataType],
    *,
    has_header: bool = False,
    allow_null: Sequence[str] = (),
) -> pl.DataFrame:
    """Parse ``data`` with exactly the columns of ``schema``; raise :class:`IngestError` on any defect.

    Defects caught: empty file, missing final newline (a truncated file), wrong column count on any line,
    a non-numeric value in a numeric column, an empty field in a column not listed in ``allow_null``.
    """
    if not data or data.isspace():  # isspace stops at the first visible byte; strip() would copy the file
        raise IngestError(path, "file is empty")
    if not data.endswith(b"\n"):
        lines = data.count(b"\n") + 1
        raise IngestError(path, "file is truncated: last line has no line terminator", line=lines)
    skip = 1 if has_header else 0
    try:
        df = pl.read_csv(
            data,
            has_header=has_header,
            schema=schema,
        )
    except (pl.exceptions.ComputeError, pl.exceptions.ShapeError, pl.exceptions.NoDataError) as exc:
        raise locate_error(data, path, schema, skip_rows=skip, allow_null=allow_null) from exc
    required = [c for c in schema if c not in allow_null]
    if df.select(pl.any_horizontal(pl.col(required).is_null().any())).item():
        raise locate_error(data, path, schema, skip_rows=skip, allow_null=allow_null)
    return df
