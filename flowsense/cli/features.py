"""``flowsense features``: lake partitions -> ``features_tick``, ``features_<clock>`` and ``labels``."""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

import typer
from rich.table import Table

from flowsense.cli.common import console, fail, progress, reported_errors, settings
from flowsense.data.catalog import refresh
from flowsense.data.lake import Lake, Partition


def register(app: typer.Typer) -> None:
    @app.command()
    def features(
        symbol: Annotated[str | None, typer.Option(help="Only this symbol (default: every symbol).")] = None,
        date: Annotated[str | None, typer.Option(help="Only this date YYYY-MM-DD (default: every date).")] = None,
        clock: Annotated[
            list[str] | None,
            typer.Option("--clock", help="Bar clock, repeatable: 100ms, 1s, 10s, 1min, 500ev, 10000vol."),
        ] = None,
        ofi_weights: Annotated[
            str | None,
            typer.Option(help="Integrated-OFI weights: comma-separated floats, 'equal' (default) or 'decay'."),
        ] = None,
    ) -> None:
        """Compute the feature tables and labels of every book partition in the lake (or the selected ones),
        write them to the lake and refresh the DuckDB catalog views."""
        from flowsense.features.bars import parse_clock
        from flowsense.features.pipeline import DEFAULT_CLOCKS, compute_partition, feature_count

        cfg = settings()
        clocks = tuple(clock) if clock else DEFAULT_CLOCKS
        try:
            for c in clocks:
                parse_clock(c)
            day = dt.date.fromisoformat(date) if date else None
        except ValueError as exc:
            fail(str(exc))
        weights: list[float] | str | None = None
        if ofi_weights:
            try:
                weights = ofi_weights if ofi_weights in ("equal", "decay") else [
                    float(x) for x in ofi_weights.split(",")
                ]
            except ValueError:
                fail(f"--ofi-weights {ofi_weights!r}: expected 'equal', 'decay' or comma-separated numbers")
        lake = Lake(cfg.lake)
        parts = [
            p for p in lake.partitions("book")
            if (symbol is None or p.symbol == symbol) and (day is None or p.date == day)
        ]
        if not parts:
            fail(f"no book partitions in {cfg.lake} match symbol={symbol or '*'} date={date or '*'}")
        rows: list[tuple[Partition, dict[str, int], float, int]] = []
        with progress() as bar:
            task = bar.add_task("features", total=len(parts))
            for part in parts:
                bar.update(task, description=f"features {part.key}")
                t0 = time.perf_counter()
                with reported_errors():
                    try:
                        tables = compute_partition(lake, part, clocks=clocks, ofi_weights=weights)
                    except ValueError as exc:
                        fail(f"{part.key}: {exc}")
                rows.append((part, {k: v.height for k, v in tables.items()}, time.perf_counter() - t0,
                             feature_count(tables)))
                bar.advance(task)
        with reported_errors():
            refresh(cfg.catalog_path, lake)
        names = ["features_tick", *[parse_clock(c).table for c in clocks], "labels"]
        table = Table(title=f"Feature tables in {cfg.lake}")
        table.add_column("symbol")
        table.add_column("date")
        for n in names:
            table.add_column(n, justify="right")
        table.add_column("features", justify="right")
        table.add_column("seconds", justify="right")
        for part, counts, secs, nfeat in rows:
            table.add_row(part.symbol, str(part.date), *[f"{counts.get(n, 0):,}" for n in names], str(nfeat),
                          f"{secs:.2f}")
        console.print(table)
        console.print(f"catalog views: {', '.join(names)} ({cfg.catalog_path})")
