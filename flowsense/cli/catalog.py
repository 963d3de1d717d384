"""``flowsense catalog``: list the DuckDB views over the lake, or run SQL against them.

A query never writes: it runs in an in-memory DuckDB holding the same views over the lake
(:func:`flowsense.data.catalog.query_lake`), so it works on a read-only ``FLOWSENSE_HOME``.

``--format table`` (default) keeps wide results readable on a terminal: a single row is shown
transposed (one line per column), long values are cut with an ellipsis, and the columns that do not fit
the terminal width are named under the table (``--format csv|json`` print every column and row).
"""

from __future__ import annotations

import json
import shutil
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowsense.cli.common import console, esc, fail, print_note, settings

if TYPE_CHECKING:
    import polars as pl

FORMATS = ("table", "csv", "json")
MAX_CELL = 32  # characters of one value in a table cell before it is cut


def _cell(value: Any, width: int = MAX_CELL) -> str:
    text = "NULL" if value is None else str(value)
    text = " ".join(text.split()) if "\n" in text or "\t" in text else text
    return text if len(text) <= width else text[: width - 1] + "…"


def _terminal_width() -> int:
    """The terminal's width; when printing to a pipe, ``COLUMNS`` or 160."""
    if console.get().is_terminal:
        return int(console.get().width)
    return shutil.get_terminal_size((160, 24)).columns


def print_table(df: pl.DataFrame, *, more: bool, limit: int, title: str | None = None,
                transpose: bool | None = None) -> None:
    """Print ``df`` as a terminal table that stays readable however wide it is."""
    from rich.table import Table

    if df.width == 0:
        console.print("(no result)")
        return
    rows = [[_cell(v) for v in r] for r in df.iter_rows()]
    if transpose is None:
        transpose = df.height == 1 and df.width > 4
    if transpose:
        for i, row in enumerate(rows):
            table = Table(title=f"row {i + 1}" if len(rows) > 1 else title, show_header=True)
            table.add_column("column", no_wrap=True)
            table.add_column("value", overflow="fold")
            for name, value in zip(df.columns, row, strict=True):
                table.add_row(esc(name), esc(value))
            console.print(table)
        return
    width = _terminal_width()
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(df.columns)]
    shown, used = [], 1
    for i, w in enumerate(widths):
        need = min(w, MAX_CELL) + 3
        if shown and used + need > width:
            break
        shown.append(i)
        used += need
    table = Table(title=title)
    for i in shown:
        numeric = df.dtypes[i].is_numeric()
        table.add_column(esc(_cell(df.columns[i])), justify="right" if numeric else "left", no_wrap=True,
                         min_width=min(widths[i], MAX_CELL), max_width=MAX_CELL)
    for r in rows:
        table.add_row(*[esc(r[i]) for i in shown])
    if console.get().is_terminal:
        console.print(table)
    else:  # a pipe: rich would crop at 80 columns
        from rich.console import Console

        Console(width=width, emoji=False, highlight=False, soft_wrap=False).print(table)
    if len(shown) < df.width:
        hidden = df.columns[len(shown):]
        console.print(f"{len(hidden)} more column(s) not shown (terminal width {width}): "
                      f"{esc(', '.join(hidden))}; select fewer columns, or use --transpose, --format csv|json",
                      soft_wrap=True)
    if more:
        console.print(f"first {limit:,} rows shown (--limit N for more, --format csv|json for all)")


def register(app: typer.Typer) -> None:
    @app.command()
    def catalog(
        sql: Annotated[str | None, typer.Argument(help="SQL to run against the catalog views (nothing is written).")] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="Output: table (readable, cut to the terminal), csv or json (every row and column).")] = "table",
        limit: Annotated[int | None, typer.Option(help="Rows to print (default: 50 for table, all for csv/json).")] = None,
        transpose: Annotated[bool | None, typer.Option("--transpose/--no-transpose", help="Table: one line per column (default: only for a single wide row).")] = None,
    ) -> None:
        """List the DuckDB views over the lake with their row counts, or run SQL against them.

        Example: flowsense catalog "select symbol, date, count(*) from events group by all" --format csv
        """
        if fmt not in FORMATS:
            fail(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        if limit is not None and limit < 0:
            fail(f"--limit must be >= 0, got {limit}")
        cfg = settings()
        import duckdb

        from flowsense.data.catalog import memory_catalog, query_lake, refresh
        from flowsense.data.lake import Lake

        lake = Lake(cfg.lake)
        if sql is None:
            try:
                refresh(cfg.catalog_path, lake)
                where = str(cfg.catalog_path)
            except (OSError, duckdb.Error) as exc:
                print_note(f"{cfg.catalog_path} not refreshed ({' '.join(str(exc).split())}); listing the lake "
                           "read-only")
                where = f"{cfg.lake} (read-only)"

            con = memory_catalog(lake)
            try:
                names = [r[0] for r in con.execute(
                    "select view_name from duckdb_views() where not internal order by view_name").fetchall()]
                counts = {n: con.execute(f'select count(*) from "{n}"').fetchone()[0] for n in names}
            finally:
                con.close()
            if fmt == "json":
                sys.stdout.write(json.dumps({"catalog": where, "views": counts}) + "\n")
                return
            if fmt == "csv":
                sys.stdout.write("view,rows\n" + "".join(f"{n},{c}\n" for n, c in counts.items()))
                return
            from rich.table import Table

            table = Table()
            table.add_column("view")
            table.add_column("rows", justify="right")
            for n, c in counts.items():
                table.add_row(esc(n), f"{c:,}")
            console.print(table)
            console.print(f"catalog: {esc(where)}", soft_wrap=True)
            return
        shown = limit if limit is not None else (50 if fmt == "table" else None)
        try:
            df, more = query_lake(lake, sql, shown)
        except duckdb.Error as exc:  # a bad query: DuckDB's own message, on one line
            fail(f"SQL: {' '.join(str(exc).split())}")
        if fmt == "csv":
            sys.stdout.write(df.write_csv())
        elif fmt == "json":
            sys.stdout.write(df.write_json() + "\n")
        else:
            print_table(df, more=more, limit=shown or 0, transpose=transpose)
