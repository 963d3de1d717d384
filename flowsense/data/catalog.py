"""The DuckDB catalog: a database file in FLOWSENSE_HOME holding views over the Parquet lake.

The views read the lake through globs, so the catalog holds no data and never goes stale as partitions
are added or replaced; it is refreshed only to add views for new tables. Example::

    duckdb $FLOWSENSE_HOME/flowsense.duckdb "select symbol, date, count(*) from events group by all"
"""

from __future__ import annotations

import time
from pathlib import Path

import duckdb

from flowsense.data.lake import VALIDATION_DIR, Lake

_EMPTY_VIEWS = {
    "events": "ts TIMESTAMPTZ, symbol VARCHAR, date DATE, seq BIGINT, event_type VARCHAR, order_id BIGINT, "
    "side TINYINT, price DOUBLE, size BIGINT",
    "trades": "ts TIMESTAMPTZ, symbol VARCHAR, date DATE, seq BIGINT, price DOUBLE, size BIGINT, "
    "aggressor_side TINYINT",
    "book": "ts TIMESTAMPTZ, symbol VARCHAR, date DATE, seq BIGINT, ask_px_1 DOUBLE, ask_sz_1 BIGINT, "
    "bid_px_1 DOUBLE, bid_sz_1 BIGINT",
}


def connect(path: str | Path, *, read_only: bool = False, retries: int = 50) -> duckdb.DuckDBPyConnection:
    """Open the catalog, retrying while another process holds its write lock (Dagster runs in parallel)."""
    path = Path(path)
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


def refresh(catalog_path: str | Path, lake: Lake) -> list[str]:
    """(Re)create one view per lake table, plus ``validation``; return the view names."""
    names: list[str] = []
    con = connect(catalog_path)
    try:
        con.execute("BEGIN TRANSACTION")
        present = set(lake.tables())
        for table in sorted(present | set(_EMPTY_VIEWS)):
            if table in present:
                sql = f"SELECT * FROM read_parquet('{lake.glob(table)}', union_by_name = true)"
            else:
                sql = _empty_view(_EMPTY_VIEWS[table])
            con.execute(f'CREATE OR REPLACE VIEW "{table}" AS {sql}')
            names.append(table)
        reports = lake.root / VALIDATION_DIR
        if any(reports.glob("symbol=*/date=*/report.json")):
            glob = str(reports / "symbol=*" / "date=*" / "report.json")
            con.execute(f"CREATE OR REPLACE VIEW validation AS SELECT * FROM read_json_auto('{glob}')")
            names.append("validation")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return names


def query(catalog_path: str | Path, sql: str) -> duckdb.DuckDBPyRelation:
    """Run ``sql`` against the catalog (read only) and return the result as a Polars frame."""
    con = connect(catalog_path, read_only=True)
    try:
        return con.sql(sql).pl()
    finally:
        con.close()
