"""``flowsense ingest``: raw files -> validated, partitioned Parquet lake + DuckDB catalog."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from flowsense.cli.common import console, fail, progress, reported_errors, settings
from flowsense.data.catalog import refresh
from flowsense.data.ingest import (
    IngestResult,
    InstrumentResult,
    ingest_definitions,
    ingest_file,
    is_definition_file,
)
from flowsense.data.lake import Lake
from flowsense.errors import FlowSenseError


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        paths: Annotated[list[Path], typer.Argument(help="Raw files: LOBSTER zips or CSV pairs, .dbn[.zst], trades/quotes CSV/Parquet.")],
        symbol: Annotated[str | None, typer.Option(help="Symbol (default: from the file name or data).")] = None,
        date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD (default: from the file name or data).")] = None,
        tz: Annotated[str, typer.Option(help="Time zone of naive timestamps in trades/quotes files.")] = "UTC",
        fmt: Annotated[str | None, typer.Option("--format", help="Force a reader: lobster, dbn or ticks.")] = None,
        keep_going: Annotated[bool, typer.Option(help="Ingest the other files when one is malformed (exit code still 2).")] = False,
    ) -> None:
        """Ingest raw files into the lake (FLOWSENSE_HOME/lake), one Parquet file per table, symbol and day.

        Re-ingesting a file replaces its partitions. A malformed file stops with an error naming the file
        and line, and nothing is written for it.
        """
        cfg = settings()
        try:
            day = dt.date.fromisoformat(date) if date else None
        except ValueError:
            fail(f"--date {date!r} is not YYYY-MM-DD")
        lake = Lake(cfg.lake)
        results: list[IngestResult] = []
        instruments: list[InstrumentResult] = []
        errors: list[str] = []
        with progress() as bar:
            task = bar.add_task("ingesting", total=len(paths))
            for path in paths:
                bar.update(task, description=f"ingesting {path.name}")
                try:
                    if is_definition_file(path, fmt):
                        instruments += ingest_definitions(path, lake, symbol=symbol)
                        bar.advance(task)
                        continue
                    results += ingest_file(path, lake, symbol=symbol, date=day, tz=tz, fmt=fmt)
                except FlowSenseError as exc:
                    if not keep_going:
                        fail(exc)
                    errors.append(str(exc))
                bar.advance(task)
        with reported_errors():
            refresh(cfg.catalog_path, lake)
        table = Table(title=f"Ingested into {cfg.lake}")
        for col in ("symbol", "date", "format", "events", "book lvls", "trades", "issues", "lake"):
            table.add_column(col, justify="right" if col in ("events", "trades", "book lvls") else "left",
                             overflow="fold")
        for r in results:
            problems = {**r.report.problems("error"), **r.report.problems("warn")}
            issues = ", ".join(f"{k}={v}" for k, v in problems.items()) or "[green]none[/]"
            table.add_row(
                r.partition.symbol, str(r.partition.date), r.format, f"{r.report.events:,}",
                str(r.report.levels), f"{r.report.trades:,}", issues, r.summary(),
            )
        if results:
            console.print(table)
        for ir in instruments:
            i = ir.instrument
            console.print(
                f"instrument {i.symbol}: {i.asset_class} on {i.venue}, tick {i.tick_size:g}, multiplier "
                f"{i.multiplier:g} {i.currency}, lot {i.lot_size:g} ({i.source}, from {ir.source})", highlight=False,
            )
        console.print(f"catalog: {cfg.catalog_path}")
        for e in errors:
            console.print(f"[bold red]error:[/] {e}", highlight=False)
        if errors:
            raise typer.Exit(2)
