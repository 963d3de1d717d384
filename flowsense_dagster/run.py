"""``python -m flowsense_dagster.run``: the whole pipeline, once, recorded in a persistent Dagster instance.

1. Unless ``--no-simulate``: simulate LOBSTER sample days (default AAA, BBB, CCC x 2 days) into the inbox.
2. Scan the inbox (source index) and register its symbols and days as dynamic partitions.
3. Materialize every asset of the code location (``flowsense_dagster.definitions.defs``) for every
   partition found in the inbox, partition by partition (raw data, checks and whatever other modules add
   under ``flowsense_dagster/assets``), with a progress bar. Assets with another partitions definition
   run after what they depend on: unpartitioned ones once, small static ones per key.
4. Print a summary (partitions, rows, checks) and where the results are: lake, DuckDB catalog, Dagster home,
   and the ``dagster dev`` command that shows these runs.

``DAGSTER_HOME`` defaults to ``FLOWSENSE_HOME/dagster`` (created with the repository's ``dagster.yaml``).
Exit status: 0 when every run succeeded and no ERROR check failed, 1 otherwise, 2 on a usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from flowsense.config import Settings
from flowsense.data.lake import Partition
from flowsense.errors import FlowSenseError

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SYMBOLS = ("AAA", "BBB", "CCC")
MAX_STATIC_KEYS = 100
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
FALLBACK_DAGSTER_YAML = """\
# written by flowsense_dagster.run (the repository's dagster.yaml was not found): SQLite under DAGSTER_HOME
telemetry:
  enabled: false
"""

console = Console(width=None if sys.stdout.isatty() else 120)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


# ---- environment -----------------------------------------------------------------------------
def prepare_dagster_home(settings: Settings) -> Path:
    """Set ``DAGSTER_HOME`` (default ``FLOWSENSE_HOME/dagster``) and make sure it has a dagster.yaml."""
    home = settings.dagster_home.expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    target = home / "dagster.yaml"
    if not target.exists():
        source = REPO_ROOT / "dagster.yaml"
        if source.is_file():
            shutil.copyfile(source, target)
        else:
            target.write_text(FALLBACK_DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _simulate_fn() -> Any:
    for module in ("flowsense.sim", "flowsense.sim.core"):
        try:
            fn = getattr(importlib.import_module(module), "simulate", None)
        except ImportError:
            continue
        if fn is not None:
            return fn
    raise SystemExit(
        "error: flowsense.sim.simulate is not available; use --no-simulate with files in the inbox"
    )


def simulate_into(inbox: Path, symbols: Sequence[str], days: int, seed: int) -> list[Path]:
    inbox.mkdir(parents=True, exist_ok=True)
    out = _simulate_fn()(list(symbols), days, inbox, seed=seed)
    return [Path(p) for p in out] if isinstance(out, list | tuple) else sorted(inbox.glob("*.zip"))


# ---- planning --------------------------------------------------------------------------------
@dataclass
class Unit:
    """A group of assets with one partitions definition, run together (per partition when partitioned)."""

    stage: int
    partitions_def: Any
    keys: list[Any]

    def label(self) -> str:
        return ", ".join(k.to_user_string() for k in self.keys[:4]) + (" ..." if len(self.keys) > 4 else "")


def plan_units(defs: Any) -> list[Unit]:
    """Split the materializable assets into stages: a stage changes where the partitions definition does."""
    graph = defs.resolve_asset_graph()
    materializable = set(graph.materializable_asset_keys)
    stage: dict[Any, int] = {}
    for key in graph.toposorted_asset_keys:
        if key not in materializable:
            continue
        pd = graph.get(key).partitions_def
        s = 0
        for parent in graph.get(key).parent_keys:
            if parent in stage:
                s = max(s, stage[parent] + (graph.get(parent).partitions_def != pd))
        stage[key] = s
    units: list[Unit] = []
    for key, s in stage.items():
        pd = graph.get(key).partitions_def
        unit = next((u for u in units if u.stage == s and u.partitions_def == pd), None)
        if unit is None:
            unit = Unit(s, pd, [])
            units.append(unit)
        unit.keys.append(key)
    return sorted(units, key=lambda u: (u.stage, u.partitions_def is None, u.label()))


# ---- results ---------------------------------------------------------------------------------
@dataclass
class RunOutcome:
    label: str
    partition: Partition | None
    success: bool
    run_id: str
    rows: dict[str, int] = field(default_factory=dict)
    levels: int | None = None
    checks_passed: int = 0
    checks_total: int = 0
    failed_errors: list[str] = field(default_factory=list)
    failed_warnings: list[str] = field(default_factory=list)
    error: str | None = None
    materialized: int = 0


def _value(meta: Any, key: str) -> Any:
    v = meta.get(key)
    return getattr(v, "value", v)


def summarize_result(result: Any, label: str, partition: Partition | None) -> RunOutcome:
    from dagster import AssetCheckSeverity

    out = RunOutcome(label, partition, bool(result.success), result.run_id)
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        out.materialized += 1
        name = mat.asset_key.to_user_string()
        rows = _value(mat.metadata, "dagster/partition_row_count")
        if rows is None:
            rows = _value(mat.metadata, "dagster/row_count")
        if rows is not None:
            out.rows[name] = int(rows)
        if name == "raw_events":
            levels = _value(mat.metadata, "levels")
            out.levels = None if levels is None else int(levels)
    for ev in result.get_asset_check_evaluations():
        out.checks_total += 1
        if ev.passed:
            out.checks_passed += 1
        elif ev.severity == AssetCheckSeverity.ERROR:
            out.failed_errors.append(ev.check_name)
        else:
            out.failed_warnings.append(ev.check_name)
    if not result.success:
        messages = []
        for ev in result.get_step_failure_events():
            data = ev.step_failure_data
            msg = data.error.message.strip() if data and data.error else "step failed"
            messages.append(f"{ev.step_key}: {msg.splitlines()[0] if msg else 'failed'}")
        out.error = "; ".join(messages) or "run failed"
    return out


# ---- main ------------------------------------------------------------------------------------
def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m flowsense_dagster.run",
        description="Simulate sample data (optional), then materialize every Dagster asset for every "
        "partition in FLOWSENSE_HOME/inbox, recorded in DAGSTER_HOME (default FLOWSENSE_HOME/dagster).",
    )
    p.add_argument(
        "--symbols", default=",".join(DEFAULT_SYMBOLS), help="Symbols to simulate (comma separated)."
    )
    p.add_argument("--days", type=int, default=2, help="Trading days to simulate per symbol (default 2).")
    p.add_argument("--seed", type=int, default=7, help="Simulation seed (default 7).")
    p.add_argument("--no-simulate", action="store_true", help="Use the files already in the inbox.")
    p.add_argument("--home", default=None, help="FLOWSENSE_HOME (default: $FLOWSENSE_HOME or ./.flowsense).")
    args = p.parse_args(argv)
    args.symbols = [s.strip() for s in args.symbols.split(",") if s.strip()]
    if not args.no_simulate and (not args.symbols or args.days < 1):
        p.error("--symbols must name at least one symbol and --days must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    try:
        settings = Settings.from_env(args.home)
    except FlowSenseError as exc:
        err.print(f"[bold red]error:[/] {exc}", highlight=False)
        return 2
    os.environ["FLOWSENSE_HOME"] = str(settings.home)  # the code location's resources resolve it at run time
    dagster_home = prepare_dagster_home(settings)

    # dagster is imported only now: the definitions read FLOWSENSE_HOME / FLOWSENSE_PROFILE at import
    import dagster as dg

    for category in (dg.PreviewWarning, dg.BetaWarning):
        warnings.filterwarnings("ignore", category=category)
    from flowsense.data.inbox import SourceIndex
    from flowsense_dagster.definitions import defs
    from flowsense_dagster.partitions import (
        DATES,
        SYMBOLS,
        register_partitions,
        symbol_date_partitions,
        to_partition_key,
    )
    from flowsense_dagster.resources import CatalogResource, LakeResource

    t0 = time.monotonic()
    console.rule("[bold]FlowSense pipeline")
    console.print(f"FLOWSENSE_HOME  {settings.home}   (profile {settings.profile})")
    console.print(f"DAGSTER_HOME    {dagster_home}")

    # (1) sample data
    if not args.no_simulate:
        with console.status(
            f"simulating {', '.join(args.symbols)} x {args.days} day(s) into {settings.inbox}"
        ):
            written = simulate_into(settings.inbox, args.symbols, args.days, args.seed)
        console.print(f"simulated {len(written)} file(s) into {settings.inbox}")

    # (2) inbox -> partitions, dynamic partitions
    index = SourceIndex.scan(settings.inbox, tz=settings.tick_tz)
    for rel, problem in index.errors().items():
        err.print(f"[yellow]skipped[/] {rel}: {problem}", highlight=False)
    partitions = index.partitions()
    if not partitions:
        err.print(
            f"[bold red]error:[/] no raw files in {settings.inbox}. Drop LOBSTER zips (SYMBOL_YYYY-MM-DD_LEVEL.zip) "
            "or other raw files there, or run without --no-simulate.",
            highlight=False,
        )
        return 2
    instance = dg.DagsterInstance.get()
    register_partitions(instance, partitions)
    console.print(
        f"inbox: {len(index.entries)} file(s), {len(partitions)} partition(s); "
        f"symbols registered: {', '.join(sorted(instance.get_dynamic_partitions(SYMBOLS)))}; "
        f"days: {', '.join(sorted(instance.get_dynamic_partitions(DATES)))}"
    )

    # (3) materialize, partition by partition
    resources = defs.resources
    everything = [*defs.assets, *defs.asset_checks]
    units = plan_units(defs)
    work: list[tuple[Unit, str | None, Partition | None]] = []
    notes: list[str] = []
    for unit in units:
        pd = unit.partitions_def
        if pd is None:
            work.append((unit, None, None))
        elif pd == symbol_date_partitions:
            work += [(unit, str(to_partition_key(p)), p) for p in partitions]
        else:
            keys = pd.get_partition_keys(dynamic_partitions_store=instance)
            if len(keys) <= MAX_STATIC_KEYS:
                work += [(unit, k, None) for k in keys]
            else:
                notes.append(
                    f"{unit.label()}: {len(keys)} partitions of another kind; launch them from the UI"
                )

    outcomes: list[RunOutcome] = []
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("materializing", total=len(work))
        for unit, key, part in work:
            label = f"{part.symbol} {part.date}" if part else (key or unit.label())
            bar.update(task, description=f"materializing {label}")
            try:
                result = dg.materialize(
                    everything,
                    selection=dg.AssetSelection.assets(*unit.keys),
                    partition_key=key,
                    instance=instance,
                    resources=resources,
                    run_config=QUIET_LOGS,
                    raise_on_error=False,
                    tags={"flowsense/launched_by": "flowsense_dagster.run"},
                )
                outcome = summarize_result(result, label, part)
            except Exception as exc:  # a definition/config problem: report it, go on with the others
                outcome = RunOutcome(label, part, False, "-", error=f"{type(exc).__name__}: {exc}")
            outcomes.append(outcome)
            mark = "[green]ok[/]" if outcome.success and not outcome.failed_errors else "[red]FAILED[/]"
            bar.console.print(
                f"  {mark} {label}: {outcome.materialized} materialization(s), "
                f"checks {outcome.checks_passed}/{outcome.checks_total}",
                highlight=False,
            )
            bar.advance(task)
        bar.update(task, description="materialized")

    # (4) summary
    print_summary(outcomes, notes)
    views: list[str] = []
    try:
        views = CatalogResource(lake=LakeResource(home=str(settings.home))).refresh()
    except Exception as exc:
        err.print(f"[yellow]catalog refresh failed:[/] {exc}", highlight=False)
    if "events" in views:
        print_catalog_sample(settings)
    failed = [o for o in outcomes if not o.success or o.failed_errors]
    print_locations(settings, dagster_home, views)
    elapsed = time.monotonic() - t0
    if failed:
        err.print(
            f"[bold red]{len(failed)} of {len(outcomes)} run(s) failed[/] ({elapsed:.0f}s):", highlight=False
        )
        for o in failed:
            why = o.error or f"ERROR checks failed: {', '.join(o.failed_errors)}"
            err.print(f"  {o.label} (run {o.run_id}): {why}", highlight=False)
        return 1
    console.print(f"[bold green]all {len(outcomes)} run(s) succeeded[/] in {elapsed:.0f}s")
    return 0


def print_summary(outcomes: list[RunOutcome], notes: list[str]) -> None:
    table = Table(title="Runs")
    for col in ("partition", "events", "book", "trades", "lvls", "assets", "checks", "issues", "run"):
        table.add_column(
            col, justify="right" if col in ("events", "book", "trades", "lvls", "assets") else "left"
        )
    for o in outcomes:
        issues = ", ".join(
            [*(f"[red]{n}[/]" for n in o.failed_errors), *(f"[yellow]{n}[/]" for n in o.failed_warnings)]
        )
        if o.error and not o.failed_errors:
            issues = f"[red]{o.error[:80]}[/]"
        table.add_row(
            o.label,
            f"{o.rows['raw_events']:,}" if "raw_events" in o.rows else "",
            f"{o.rows['raw_book']:,}" if "raw_book" in o.rows else "",
            f"{o.rows['raw_trades']:,}" if "raw_trades" in o.rows else "",
            "" if o.levels is None else str(o.levels),
            str(o.materialized),
            f"{o.checks_passed}/{o.checks_total}",
            issues or "[green]none[/]",
            o.run_id[:8],
        )
    console.print(table)
    for n in notes:
        console.print(f"[yellow]note:[/] {n}", highlight=False)


CATALOG_SQL = (
    "select symbol, date, count(*) as events, min(ts) as first_event, max(ts) as last_event "
    "from events group by all order by all"
)


def print_catalog_sample(settings: Settings) -> None:
    from flowsense.data.catalog import query

    try:
        df = query(settings.catalog_path, CATALOG_SQL + " limit 20")
    except Exception as exc:  # the summary must not fail on a busy catalog
        err.print(f"[yellow]catalog query failed:[/] {exc}", highlight=False)
        return
    table = Table(title=f"DuckDB catalog: {CATALOG_SQL}", title_justify="left")
    for col in df.columns:
        table.add_column(col)
    for row in df.iter_rows():  # type: ignore[attr-defined]
        table.add_row(*(f"{v:,}" if isinstance(v, int) else str(v) for v in row))
    console.print(table)


def print_locations(settings: Settings, dagster_home: Path, views: list[str]) -> None:
    repo = REPO_ROOT if (REPO_ROOT / "workspace.yaml").exists() else None
    dev = (
        f"cd {repo} && FLOWSENSE_HOME={settings.home} DAGSTER_HOME={dagster_home} dagster dev -w workspace.yaml"
        if repo
        else f"FLOWSENSE_HOME={settings.home} DAGSTER_HOME={dagster_home} dagster dev -m flowsense_dagster.definitions"
    )
    sql = "select symbol, date, count(*) as events from events group by all order by all"
    table = Table(title="Where the results are", show_header=False)
    table.add_column("what")
    table.add_column("where", overflow="fold")
    table.add_row("lake (Parquet)", str(settings.lake))
    table.add_row("validation reports", str(settings.lake / "_validation"))
    table.add_row(
        "DuckDB catalog", f"{settings.catalog_path}" + (f"  (views: {', '.join(views)})" if views else "")
    )
    table.add_row("query it", f'duckdb {settings.catalog_path} "{sql}"')
    table.add_row("", f'FLOWSENSE_HOME={settings.home} flowsense catalog "{sql}"')
    table.add_row("Dagster home", str(dagster_home))
    table.add_row("browse the runs", dev + "   # then http://127.0.0.1:3000")
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
