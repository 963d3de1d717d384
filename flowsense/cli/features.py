"""``flowsense features``: lake partitions -> ``features_tick``, ``features_<clock>`` and ``labels``."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Annotated

import typer

from flowsense.cli.common import console, doing, esc, fail, gate, progress, require_writable, settings

if TYPE_CHECKING:
    from flowsense.data.lake import Partition

DEFAULT_CLOCKS_HELP = "1s and 1min"


def register(app: typer.Typer) -> None:
    @app.command()
    def features(
        symbol: Annotated[str | None, typer.Option(help="Only this symbol (default: every symbol).")] = None,
        date: Annotated[str | None, typer.Option(help="Only this date YYYY-MM-DD (default: every date).")] = None,
        clock: Annotated[
            list[str] | None,
            typer.Option("--clock", help=f"Bar clock, repeatable: 100ms, 1s, 10s, 1min, 500ev, 10000vol (default {DEFAULT_CLOCKS_HELP})."),
        ] = None,
        ofi_weights: Annotated[
            str | None,
            typer.Option(help="Integrated-OFI weights: comma-separated floats, 'equal' (default) or 'decay'."),
        ] = None,
        allow_invalid: Annotated[bool, typer.Option("--allow-invalid", help="Also use partitions whose ERROR validation checks failed.")] = False,
        skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Leave out partitions whose ERROR validation checks failed (a note each) instead of refusing.")] = False,
    ) -> None:
        """Compute the feature tables and labels of every book partition in the lake (or the selected ones),
        write them to the lake and refresh the DuckDB catalog views.

        A partition whose ERROR-severity validation checks failed is refused (exit 2, nothing computed)
        unless --allow-invalid or --skip-invalid is given.
        """
        cfg = settings()
        try:
            day = dt.date.fromisoformat(date) if date else None
        except ValueError:
            fail(f"--date {date!r} is not YYYY-MM-DD")
        weights: list[float] | str | None = None
        if ofi_weights:
            try:
                weights = ofi_weights if ofi_weights in ("equal", "decay") else [
                    float(x) for x in ofi_weights.split(",")
                ]
            except ValueError:
                fail(f"--ofi-weights {ofi_weights!r}: expected 'equal', 'decay' or comma-separated numbers")
        if allow_invalid and skip_invalid:
            fail("--allow-invalid and --skip-invalid contradict each other: pick one")
        require_writable(cfg)

        from flowsense.data.catalog import refresh
        from flowsense.data.lake import Lake
        from flowsense.features.bars import parse_clock
        from flowsense.features.pipeline import DEFAULT_CLOCKS, compute_partition, feature_count

        clocks = tuple(clock) if clock else DEFAULT_CLOCKS
        try:
            for c in clocks:
                parse_clock(c)
        except ValueError as exc:
            fail(f"--clock: {exc}")
        lake = Lake(cfg.lake)
        parts = [
            p for p in lake.partitions("book")
            if (symbol is None or p.symbol == symbol) and (day is None or p.date == day)
        ]
        if not parts:
            fail(f"no book partitions in {cfg.lake} match symbol={symbol or '*'} date={date or '*'}")
        parts = gate(lake, parts, allow_invalid=allow_invalid, skip_invalid=skip_invalid, what="features")
        if not parts:
            fail("every selected partition failed validation; nothing to compute")
        rows: list[tuple[Partition, dict[str, int], float, int]] = []
        with progress() as bar:
            task = bar.add_task("features", total=len(parts))
            for part in parts:
                bar.update(task, description=f"features {esc(part.key)}")
                done = ", ".join(p.key for p, *_ in rows)
                doing(f"computing features of {part.key}; "
                      + (f"feature tables written in full for {done}; " if done else "")
                      + f"{part.key}'s tables are unchanged or complete, never half-written")
                t0 = time.perf_counter()
                try:
                    tables = compute_partition(lake, part, clocks=clocks, ofi_weights=weights)
                except ValueError as exc:
                    fail(f"{part.key}: {exc}")
                rows.append((part, {k: v.height for k, v in tables.items()}, time.perf_counter() - t0,
                             feature_count(tables)))
                bar.advance(task)
        refresh(cfg.catalog_path, lake)
        from rich.table import Table

        names = ["features_tick", *[parse_clock(c).table for c in clocks], "labels"]
        table = Table(title=f"Feature tables in {esc(cfg.lake)}")
        table.add_column("symbol")
        table.add_column("date")
        for n in names:
            table.add_column(n, justify="right")
        table.add_column("features", justify="right")
        table.add_column("seconds", justify="right")
        for part, counts, secs, nfeat in rows:
            table.add_row(esc(part.symbol), str(part.date), *[f"{counts.get(n, 0):,}" for n in names],
                          str(nfeat), f"{secs:.2f}")
        console.print(table)
        console.print(f"catalog views: {', '.join(names)} ({esc(cfg.catalog_path)})", soft_wrap=True)
