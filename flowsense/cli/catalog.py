"""``flowsense catalog``: refresh and query the DuckDB catalog over the lake."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from flowsense.cli.common import console, reported_errors, settings
from flowsense.data.catalog import query, refresh
from flowsense.data.lake import Lake


def register(app: typer.Typer) -> None:
    @app.command()
    def catalog(
        sql: Annotated[str | None, typer.Argument(help="SQL to run against the catalog (read only).")] = None,
        limit: Annotated[int, typer.Option(help="Rows to print.")] = 50,
    ) -> None:
        """Refresh the DuckDB views over the lake and list them, or run SQL against them."""
        cfg = settings()
        with reported_errors():
            views = refresh(cfg.catalog_path, Lake(cfg.lake))
        if sql is None:
            table = Table(title=f"{cfg.catalog_path}")
            table.add_column("view")
            table.add_column("rows", justify="right")
            for v in views:
                n = query(cfg.catalog_path, f'select count(*) from "{v}"').item()
                table.add_row(v, f"{n:,}")
            console.print(table)
            return
        try:
            df = query(cfg.catalog_path, sql)
        except Exception as exc:  # duckdb raises many error types; show the message
            console.print(f"[bold red]error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from exc
        table = Table()
        for c in df.columns:
            table.add_column(c)
        for row in df.head(limit).iter_rows():
            table.add_row(*[str(v) for v in row])
        console.print(table)
