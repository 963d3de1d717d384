"""``flowsense simulate``: write synthetic LOBSTER days from the calibrated order-book simulator."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import typer

from flowsense.cli.common import console, esc, fail, progress


def register(app: typer.Typer) -> None:
    @app.command("simulate")
    def simulate_cmd(
        symbols: str = typer.Option(
            ..., "--symbols", help="Comma-separated symbols, e.g. AAA,BBB,CCC (letters, digits, '.', '-')."
        ),
        days: int = typer.Option(..., "--days", help="Number of trading days (NASDAQ: weekdays without holidays) to simulate, >= 1."),
        out: Path = typer.Option(
            ..., "--out", help="Output directory for the {SYMBOL}_{DATE}_{LEVEL}.zip files."
        ),
        seed: int = typer.Option(7, "--seed", help="Random seed; the same seed gives byte-identical files."),
        start_date: str = typer.Option(
            "2024-01-02", "--start-date", help="First day (YYYY-MM-DD); weekends and NASDAQ holidays are skipped."
        ),
        levels: int = typer.Option(10, "--levels", help="Book levels in the orderbook files (1..50)."),
        scale: float = typer.Option(
            1.0, "--scale", help="Multiplier on the calibrated event rate (1.0 ~ 150k messages/day)."
        ),
    ) -> None:
        """Simulate order books (Hawkes order flow, latent efficient prices) and write LOBSTER zips."""
        syms = [s.strip() for s in symbols.split(",") if s.strip()]
        if not syms:
            fail("--symbols must name at least one symbol")
        if days < 1:
            fail(f"--days must be >= 1, got {days}")
        if not 1 <= levels <= 50:
            fail(f"--levels must be in 1..50, got {levels}")
        if not 0 < scale <= 50:
            fail(f"--scale must be in (0, 50], got {scale}")
        try:
            start = dt.date.fromisoformat(start_date)
        except ValueError:
            fail(f"--start-date must be YYYY-MM-DD, got {start_date!r}")
            raise  # unreachable
        from flowsense.sim import simulate
        from flowsense.sim.core import DayResult

        rows: list[DayResult] = []
        with progress() as bar:
            task = bar.add_task("simulating", total=len(syms) * days)

            def on_day(res: DayResult) -> None:
                rows.append(res)
                bar.update(task, advance=1, description=f"{res.symbol} {res.date}")

            try:
                simulate(
                    syms, days, out, seed=seed, start_date=start, levels=levels, scale=scale, on_day=on_day
                )
            except ValueError as exc:
                fail(exc)
        from rich.table import Table

        table = Table(title=f"simulated LOBSTER days -> {esc(out)}")
        for col in ("symbol", "date", "messages", "path"):
            table.add_column(col, justify="right" if col == "messages" else "left")
        for r in rows:
            table.add_row(esc(r.symbol), r.date.isoformat(), f"{r.messages:,}", esc(r.path))
        console.print(table)
