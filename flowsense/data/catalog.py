"""The DuckDB catalog: a database file in FLOWSENSE_HOME holding views over the Parquet lake.

The views read the lake through globs, so the catalog holds no data and never goes stale as partitions
are added or replaced; it is refreshed only to add views for new tables. Example::

    duckdb $FLOWSENSE_HOME/flowsense.duckdb "select symbol, date, count(*) from events group by all"

SQL conventions of the views:

* nanosecond timestamps (``ts``, ``bar_start``...) are shown as ordinary ``TIMESTAMPTZ`` (microseconds,
  UTC), so ``date_trunc('hour', ts)`` and friends work; the exact value is beside it as ``ts_ns`` (BIGINT
  epoch nanoseconds; ``<col>_ns`` for every such column);
* missing numbers are SQL NULL, never NaN (``max(spread)`` ignores them), in every table;
* ``instruments`` lists the instrument of every symbol in the lake (user file, then the lake's table, then
  built-in defaults; see :mod:`flowsense.data.instruments`).

Queries need no write access: :func:`query_lake` builds the same views in an in-memory DuckDB over the
lake, so ``flowsense catalog "SQL"`` works on a read-only ``FLOWSENSE_HOME`` (and never waits for the
catalog file's write lock held by a running Dagster job).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from flowsense.data.lake import VALIDATION_DIR, Lake

if TYPE_CHECKING:
    import polars as pl

_EMPTY_VIEWS = {
    "events": "ts TIMESTAMPTZ, symbol VARCHAR, date DATE, seq BIGINT, event_type VARCHAR, order_id BIGINT, "
    "side TINYINT, price DOUBLE, size BIGINT, ts_ns BIGINT",
    "trades": "ts TIMESTAMPTZ, symbol VARCHAR, date DATE, seq BIGINT, price DOUBLE, size BIGINT, "
    "aggressor_side TINYINT, ts_ns BIGINT",
    "book": "ts TIMESTAMPTZ, symbol VARCHAR, date DATE, seq BIGINT, ask_px_1 DOUBLE, ask_sz_1 BIGINT, "
    "bid_px_1 DOUBLE, bid_sz_1 BIGINT, ts_ns BIGINT",
}


def connect(path: str | Path, *, read_only: bool = False, retries: int = 50) -> duckdb.DuckDBPyConnection:
    """Open the catalog, retrying while another process holds its write lock (Dagster runs in parallel)."""
    path = Path(path)
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    delay = 0.05
    for attempt in range(retries):
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or attempt == retries - 1:
                raise
            time.sleep(delay)
            delay = min(delay * 1.5, 1.0)
    raise AssertionError("unreachable")


def _empty_view(columns: str) -> str:
    cols = ", ".join(f"CAST(NULL AS {c.split(' ', 1)[1]}) AS {c.split(' ', 1)[0]}" for c in columns.split(", "))
    return f"SELECT {cols} WHERE false"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _clean_select(con: duckdb.DuckDBPyConnection, source: str) -> str:
    """``SELECT`` over ``source`` with ns timestamps as TIMESTAMPTZ (+ ``<col>_ns``) and NaN as NULL."""
    cols = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    replace: list[str] = []
    extra: list[str] = []
    names = {c[0] for c in cols}
    for name, typ, *_ in cols:
        t = str(typ).upper()
        q = _ident(name)
        if t in ("TIMESTAMP_NS", "TIMESTAMP WITH TIME ZONE_NS", "TIMESTAMPTZ_NS") or (
            t.startswith("TIMESTAMP") and t.endswith("_NS")
        ):
            if t == "TIMESTAMP_NS":  # naive ns in Parquet: the lake writes UTC
                replace.append(f"timezone('UTC', CAST({q} AS TIMESTAMP)) AS {q}")
            else:
                replace.append(f"CAST({q} AS TIMESTAMPTZ) AS {q}")
            if f"{name}_ns" not in names:
                extra.append(f"epoch_ns({q}) AS {_ident(name + '_ns')}")
        elif t in ("DOUBLE", "FLOAT", "REAL"):
            replace.append(f"CASE WHEN isnan({q}) THEN NULL ELSE {q} END AS {q}")
    star = f"* REPLACE ({', '.join(replace)})" if replace else "*"
    return f"SELECT {', '.join([star, *extra])} FROM {source}"


def _instruments_view(lake: Lake) -> str | None:
    from flowsense.data.instruments import TABLE_COLUMNS, all_instruments

    symbols = sorted({p.symbol for t in ("events", "book", "trades") for p in lake.partitions(t)})
    insts = all_instruments(lake, symbols)
    if not insts:
        return None
    rows = []
    for inst in insts:
        d = inst.to_dict()
        d["sessions"] = json.dumps(d["sessions"])
        d["holidays"] = json.dumps(d["holidays"])
        rows.append("(" + ", ".join(_literal(d[c]) for c in TABLE_COLUMNS) + ")")
    cols = ", ".join(_ident(c) for c in TABLE_COLUMNS)
    return f"SELECT * FROM (VALUES {', '.join(rows)}) AS t({cols})"


def view_sql(con: duckdb.DuckDBPyConnection, lake: Lake) -> dict[str, str]:
    """``view name -> SELECT`` for every lake table (plus empty raw tables, ``instruments`` and
    ``validation``); ``con`` is only used to describe the Parquet files' columns."""
    out: dict[str, str] = {}
    present = set(lake.tables())
    for table in sorted(present | set(_EMPTY_VIEWS)):
        if table in present:
            out[table] = _clean_select(con, f"read_parquet('{lake.glob(table)}', union_by_name = true)")
        else:
            out[table] = _empty_view(_EMPTY_VIEWS[table])
    inst_sql = _instruments_view(lake)
    if inst_sql is not None:
        out["instruments"] = inst_sql
    reports = lake.root / VALIDATION_DIR
    if reports.exists() and any(reports.glob("symbol=*/date=*/report.json")):
        glob = str(reports / "symbol=*" / "date=*" / "report.json")
        out["validation"] = f"SELECT * FROM read_json_auto('{glob}', union_by_name = true)"
    return out


def refresh(catalog_path: str | Path, lake: Lake) -> list[str]:
    """(Re)create one view per lake table, plus ``validation`` and ``instruments``; return the view names."""
    con = connect(catalog_path)
    try:
        con.execute("BEGIN TRANSACTION")
        views = view_sql(con, lake)
        for name, sql in views.items():
            con.execute(f"CREATE OR REPLACE VIEW {_ident(name)} AS {sql}")
        # a table whose last partition was deleted: its view would fail on an empty glob
        existing = [r[0] for r in con.execute(
            "SELECT view_name FROM duckdb_views() WHERE NOT internal AND schema_name = 'main'").fetchall()]
        for name in existing:
            if name not in views:
                con.execute(f"DROP VIEW {_ident(name)}")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return list(views)


def memory_catalog(lake: Lake) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the catalog's views over ``lake``: writes nothing anywhere."""
    con = duckdb.connect(":memory:")
    for name, sql in view_sql(con, lake).items():
        con.execute(f"CREATE VIEW {_ident(name)} AS {sql}")
    return con


def query_lake(lake: Lake, sql: str, limit: int | None = None) -> tuple[pl.DataFrame, bool]:
    """Run ``sql`` over the lake's views without writing anything; return the rows (at most ``limit``)
    and whether there were more."""
    import polars as pl

    con = memory_catalog(lake)
    try:
        rel = con.sql(sql)
        if rel is None:  # a statement without a result (SET, CREATE TEMP ...)
            return pl.DataFrame(), False
        if limit is None:
            return rel.pl(), False
        df = rel.limit(limit + 1).pl()
        return df.head(limit), df.height > limit
    finally:
        con.close()


def query(catalog_path: str | Path, sql: str) -> pl.DataFrame:
    """Run ``sql`` against the catalog file (read only) and return the result as a Polars frame."""
    con = connect(catalog_path, read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()
