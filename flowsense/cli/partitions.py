"""``flowsense partitions list|delete``: see and manage what the lake holds, per symbol x day.

A partition is one symbol on one day. Its raw tables (``events``, ``book``, ``trades``) come from
ingest; every other table of that symbol x day (``features_*``, ``labels``, ...) is derived from them, so
deleting a raw table deletes the derived tables too (they would be stale), and deleting the partition
deletes everything including its validation report.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flowsense.cli.common import console, doing, esc, fail, print_note, require_writable, settings

if TYPE_CHECKING:
    from flowsense.data.lake import Lake, Partition

RAW_TABLES = ("events", "book", "trades")  # = flowsense.data.lake.RAW_TABLES (not imported: polars)
FORMATS = ("table", "csv", "json")


def inventory(lake: Lake, symbol: str | None = None, day: dt.date | None = None) -> list[dict[str, Any]]:
    """One dict per partition (:meth:`Lake.list_partitions`): tables with rows, staleness, validation."""
    out = []
    for info in lake.list_partitions(symbol, day):
        d = info.as_dict()
        d["validation"] = "ok" if info.ok else ("FAILED" if info.ok is False else "none")
        d["source"] = ", ".join(str(src.get("source", "")).rsplit("/", 1)[-1] for src in info.sources.values()
                                if isinstance(src, dict)) or None
        out.append(d)
    return out


def delete_tables(lake: Lake, part: Partition, table: str | None) -> list[str]:
    """:meth:`Lake.delete_partition`, with Ctrl-C held until it is done (never half a deletion)."""
    from flowsense.errors import deferred_interrupt

    with deferred_interrupt():
        return lake.delete_partition(part, table)


def _print(rows: list[dict[str, Any]], fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return
    if fmt == "csv":
        import csv

        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(["symbol", "date", "table", "rows", "derived", "stale", "validation", "reason", "version"])
        for r in rows:
            for t, i in r["tables"].items():
                w.writerow([r["symbol"], r["date"], t, i["rows"], i["derived"], i["stale"], r["validation"],
                            r["reason"], r["version"] or ""])
        return
    from rich.table import Table

    table = Table()
    for col in ("symbol", "date", "events", "book", "trades", "derived tables", "validation", "source"):
        table.add_column(col, justify="right" if col in RAW_TABLES else "left",
                         overflow="fold" if col in ("source", "derived tables", "validation") else "ellipsis",
                         no_wrap=col not in ("source", "derived tables", "validation"))
    for r in rows:
        t = r["tables"]
        derived = [k + (" (STALE)" if i["stale"] else "") for k, i in t.items() if i["derived"]]
        status = {"ok": "[green]ok[/]", "FAILED": "[bold red]FAILED[/] "}.get(r["validation"], "none ")
        reason = "" if r["validation"] == "ok" and r["reason"] == "ok" else esc(r["reason"])
        table.add_row(
            esc(r["symbol"]), r["date"], *[f"{t[k]['rows']:,}" if k in t else "-" for k in RAW_TABLES],
            esc(", ".join(derived)) or "-", status + reason, esc(r["source"] or "-"),
        )
    console.print(table)


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="List or delete lake partitions (one symbol x day).", no_args_is_help=True)
    app.add_typer(group, name="partitions")

    @group.command("list")
    def list_cmd(
        symbol: Annotated[str | None, typer.Option(help="Only this symbol.")] = None,
        date: Annotated[str | None, typer.Option(help="Only this date YYYY-MM-DD.")] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv (one line per table) or json.")] = "table",
    ) -> None:
        """Every symbol x day in the lake: rows per table, derived tables, validation result, source file."""
        if fmt not in FORMATS:
            fail(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
        day = _date(date)
        cfg = settings()
        from flowsense.data.lake import Lake

        rows = inventory(Lake(cfg.lake), symbol, day)
        if not rows and fmt == "table":
            console.print(f"no partitions in {esc(cfg.lake)}" + (" matching the filter" if symbol or day else ""))
            return
        _print(rows, fmt)

    @group.command("delete")
    def delete_cmd(
        symbol: Annotated[str, typer.Argument(help="Symbol.")],
        date: Annotated[str, typer.Argument(help="Date YYYY-MM-DD.")],
        table: Annotated[str | None, typer.Option("--table", "-t", help="Only this table (a raw table takes its derived tables with it).")] = None,
        yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation on a terminal.")] = False,
    ) -> None:
        """Delete a partition (every table and its validation report), or one table of it.

        Derived tables (features_*, labels, ...) go with the raw table they were computed from.
        """
        day = _date(date)
        assert day is not None
        cfg = settings()
        from flowsense.data.catalog import refresh
        from flowsense.data.lake import Lake, Partition

        lake = Lake(cfg.lake)
        part = Partition(symbol, day)
        info = lake.partition_info(part)
        present = list(info.tables)
        if not present:
            fail(f"no partition {part.key} in {cfg.lake} (flowsense partitions list shows what is there)")
        if table is not None and table not in present:
            fail(f"partition {part.key} has no table {table!r}; it has: {', '.join(present)}")
        require_writable(cfg)
        if not yes and sys.stdin.isatty():
            what = "every table of" if table is None else f"table {table} (and its derived tables) of"
            typer.confirm(f"delete {what} {part.key}?", abort=True)
        doing(f"deleting {part.key}; nothing is deleted yet")
        deleted = delete_tables(lake, part, table)
        refresh(cfg.catalog_path, lake)
        console.print(f"deleted {esc(part.key)}: {esc(', '.join(deleted))}", soft_wrap=True)
        left = list(lake.partition_info(part).tables)
        if left:
            print_note(f"{part.key} still has: {', '.join(left)}")


def _date(date: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(date) if date else None
    except ValueError:
        fail(f"date {date!r} is not YYYY-MM-DD")
