"""``flowsense ingest``: raw files -> validated, partitioned Parquet lake + DuckDB catalog."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from flowsense.cli.common import (
    console,
    doing,
    esc,
    fail,
    print_error,
    print_note,
    progress,
    require_writable,
)
from flowsense.cli.common import settings as get_settings
from flowsense.errors import FlowSenseError

if TYPE_CHECKING:
    from flowsense.data.ingest import IngestResult, InstrumentResult



def _parse_date(date: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(date) if date else None
    except ValueError:
        fail(f"--date {date!r} is not YYYY-MM-DD")


def _check_tz(tz: str | None) -> None:
    if tz is None:
        return
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        fail(f"--tz {tz!r} is not a time zone of the tz database (e.g. UTC, America/New_York, Europe/London)")


def _written(results: list[IngestResult]) -> str:
    """What this run has written so far, for the Ctrl-C line (partitions are committed whole or not at all)."""
    if not results:
        return "the lake is unchanged"
    keys = sorted({r.partition.key for r in results})
    shown = ", ".join(keys[:4]) + (f" and {len(keys) - 4} more" if len(keys) > 4 else "")
    return f"written in full so far: {shown}; no partition is half-written"


def _prefetch(*modules: str) -> None:
    """Import ``modules`` in a background thread. The read that follows runs mostly in native code without
    the GIL (zlib, polars' CSV parser), so the ~0.1-0.2 s these imports cost is hidden behind it."""
    import importlib
    import threading

    def load() -> None:
        for m in modules:
            try:
                importlib.import_module(m)
            except ImportError:  # pragma: no cover - the main thread reports it when it needs the module
                return

    threading.Thread(target=load, name="flowsense-prefetch", daemon=True).start()


def expand_paths(paths: list[Path]) -> list[Path]:
    """A directory -> the raw files under it (recursively, sorted; hidden and temporary files skipped, as in
    the inbox); the order book half of a LOBSTER CSV pair is dropped when its message file is there too
    (the pair is read once, from either half)."""
    from flowsense.data.inbox import iter_inbox
    from flowsense.errors import IngestError

    out: list[Path] = []
    for p in paths:
        found = list(iter_inbox(p)) if p.is_dir() else [p]
        if not found:
            raise IngestError(p, "directory holds no raw files (hidden and temporary files are skipped)")
        out.extend(found)
    names = {p.name for p in out}
    return [p for p in out if not ("_orderbook_" in p.name and p.name.replace("_orderbook_", "_message_") in names)]


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        paths: Annotated[list[Path], typer.Argument(help="Raw files: LOBSTER zips or CSV pairs, .dbn[.zst], trades/quotes CSV/Parquet; a directory stands for the raw files under it.")],
        symbol: Annotated[str | None, typer.Option(help="Symbol (default: from the data, else the file name; the summary says which).")] = None,
        date: Annotated[str | None, typer.Option(help="Trading date YYYY-MM-DD: keep only this day (must agree with a dated file name).")] = None,
        tz: Annotated[str | None, typer.Option(help="Time zone of naive timestamps in trades/quotes files (required for them), and of their day boundaries (default UTC days).")] = None,
        fmt: Annotated[str | None, typer.Option("--format", help="Force a reader: lobster, dbn, orderlog, bitstamp-feed, binance or ticks (default: detected from the content).")] = None,
        keep_going: Annotated[bool, typer.Option(help="Ingest the other files when one is malformed (exit code still 2).")] = False,
    ) -> None:
        """Ingest raw files into the lake (FLOWSENSE_HOME/lake), one Parquet file per table, symbol and day.

        Re-ingesting a file replaces its partitions. A malformed file stops with one line naming the file
        and line, exit 2, and nothing is written for it. Every guess (symbol from a file name, epoch unit,
        UTC days) is printed under the summary.
        """
        cfg = get_settings()
        day = _parse_date(date)
        _check_tz(tz)
        require_writable(cfg)  # a read-only FLOWSENSE_HOME fails now, not after reading the input

        from flowsense.data.ingest import (
            FORMATS,
            detect_format,
            ingest_definitions,
            ingest_file,
            is_definition_file,
        )
        from flowsense.data.lake import Lake

        if fmt is not None and fmt not in FORMATS:
            fail(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        _prefetch("flowsense.data.catalog", "rich.table")  # needed only after the read: import them while polars parses
        lake = Lake(cfg.lake)
        paths = expand_paths(paths)
        results: list[IngestResult] = []
        instruments: list[InstrumentResult] = []
        errors: list[str] = []
        with progress() as bar:
            task = bar.add_task("ingesting", total=len(paths))
            for path in paths:
                bar.update(task, description=f"ingesting {esc(path.name)}")
                current: list[IngestResult] = []

                def on_day(r: IngestResult, path: Path = path, current: list[IngestResult] = current,
                           before: tuple[IngestResult, ...] = tuple(results)) -> None:
                    current.append(r)
                    doing(f"ingesting {path}; {_written([*before, *current])}")

                doing(f"ingesting {path}; {_written(results)}")
                try:
                    kind = fmt or detect_format(path)  # first: a LOBSTER zip never loads the DBN reader
                    if kind == "dbn" and is_definition_file(path, kind):
                        instruments += ingest_definitions(path, lake, symbol=symbol)
                        bar.advance(task)
                        continue
                    if tz is not None and kind != "ticks":
                        print_note(f"{path}: --tz is ignored for {kind} files (their times are absolute or "
                                   "defined by the format)")
                    ingest_file(path, lake, symbol=symbol, date=day, tz=tz, fmt=kind, on_day=on_day)
                    results += current
                except FlowSenseError as exc:
                    if not keep_going:
                        raise
                    errors.append(str(exc))
                bar.advance(task)
        doing(f"refreshing the catalog views; {_written(results)}")
        from flowsense.data.catalog import refresh

        refresh(cfg.catalog_path, lake)
        _summary(results, instruments, cfg.lake, cfg.catalog_path)
        for e in errors:
            print_error(e)
        if errors:
            raise typer.Exit(2)


def _summary(results: list[IngestResult], instruments: list[InstrumentResult], lake_root: Path,
             catalog: Path) -> None:
    from rich.table import Table

    table = Table(title=f"Ingested into {esc(lake_root)}")
    for col in ("symbol", "date", "format", "events", "book lvls", "trades", "validation"):
        table.add_column(col, justify="right" if col in ("events", "trades", "book lvls") else "left",
                         overflow="fold")
    guesses: dict[str, list[str]] = {}
    for r in results:
        errs, warns = r.report.problems("error"), r.report.problems("warn")
        parts = [f"{k}={v}" for k, v in errs.items()] + [f"{k}={v} (warn)" for k, v in warns.items()]
        status = "[green]ok[/]" if not errs else "[bold red]FAILED[/] "
        table.add_row(
            esc(r.partition.symbol), str(r.partition.date), r.format, f"{r.report.events:,}",
            str(r.report.levels), f"{r.report.trades:,}", status + esc(", ".join(parts)),
        )
        for g in r.guesses:
            guesses.setdefault(g, [])
            if r.source not in guesses[g]:
                guesses[g].append(r.source)
    if results:
        console.print(table)
    for r in results:  # what each ingest did to the lake: replaced / merged with / removed stale derived tables
        if r.summary() != "new partition":
            console.print(esc(f"lake: {r.partition.symbol} {r.partition.date}: {r.summary()}"), soft_wrap=True)
    for ir in instruments:
        i = ir.instrument
        console.print(esc(
            f"instrument {i.symbol}: {i.asset_class} on {i.venue}, tick {i.tick_size:g}, multiplier "
            f"{i.multiplier:g} {i.currency}, lot {i.lot_size:g} ({i.source}, from {ir.source})"), soft_wrap=True)
    for g, sources in guesses.items():
        console.print(f"guess: {esc(', '.join(Path(s).name for s in sources))}: {esc(g)}", soft_wrap=True)
    failed = [r.partition.key for r in results if not r.report.ok]
    if failed:
        console.print(f"[bold red]validation failed[/] for {esc(', '.join(failed))}: features and backtest "
                      "refuse these partitions unless given --allow-invalid", soft_wrap=True)
    console.print(f"catalog: {esc(catalog)}", soft_wrap=True)
