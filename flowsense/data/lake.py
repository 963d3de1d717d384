"""The Parquet lake: ``{root}/{table}/symbol={S}/date={YYYY-MM-DD}/part-0.parquet``.

One file per table and partition. Writes are atomic: every table of a partition is first written to a
hidden temporary file in its final folder, then all are moved into place with ``os.replace``. A failure
before the moves leaves the previous partition untouched and removes the temporaries; re-ingesting a
source replaces its partition (idempotent), it never appends.

Each partition also gets a JSON sidecar under ``_validation/`` with the validation report and lineage
(source files, rows, levels), which the DuckDB catalog exposes as the ``validation`` view.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from flowsense.data.day import DayTables

PART_NAME = "part-0.parquet"
VALIDATION_DIR = "_validation"


@dataclass(frozen=True, slots=True)
class Partition:
    symbol: str
    date: dt.date

    @property
    def key(self) -> str:
        """``SYMBOL|YYYY-MM-DD``: the lake's own key (Dagster's MultiPartitionKey string is
        ``YYYY-MM-DD|SYMBOL``; convert with ``flowsense_dagster.partitions``, never by hand)."""
        return f"{self.symbol}|{self.date.isoformat()}"

    @property
    def subdir(self) -> str:
        return f"symbol={self.symbol}/date={self.date.isoformat()}"

    @classmethod
    def parse(cls, key: str) -> Partition:
        symbol, _, date = key.partition("|")
        return cls(symbol, dt.date.fromisoformat(date))


def _fsync_dir(path: Path) -> None:
    with suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def atomic_write_parquet(df: pl.DataFrame, path: Path) -> None:
    """Write one Parquet file atomically (temporary file in the same folder + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        _write_parquet(df, tmp)
        os.replace(tmp, path)
    finally:
        with suppress(FileNotFoundError):
            tmp.unlink()
    _fsync_dir(path.parent)


def _write_parquet(df: pl.DataFrame, path: Path) -> None:
    df.write_parquet(path, compression="zstd", compression_level=1, statistics=True)


class Lake:
    """Partitioned Parquet storage rooted at ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # ---- paths -------------------------------------------------------------------------------
    def path(self, table: str, part: Partition) -> Path:
        return self.root / table / part.subdir / PART_NAME

    def report_path(self, part: Partition) -> Path:
        return self.root / VALIDATION_DIR / part.subdir / "report.json"

    def glob(self, table: str) -> str:
        return str(self.root / table / "symbol=*" / "date=*" / PART_NAME)

    # ---- writing -----------------------------------------------------------------------------
    def write_tables(
        self,
        part: Partition,
        tables: Mapping[str, pl.DataFrame | None],
        report: Mapping[str, Any] | None = None,
    ) -> dict[str, Path]:
        """Atomically replace ``part``'s tables; a ``None`` table is removed from the partition.

        All temporaries are written first; only when every one succeeded are they moved into place.
        """
        staged: list[tuple[Path, Path]] = []
        removed: list[Path] = []
        try:
            jobs: list[tuple[pl.DataFrame, Path]] = []
            for table, df in tables.items():
                final = self.path(table, part)
                if df is None:
                    removed.append(final)
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.with_name(f".{PART_NAME}.tmp-{uuid.uuid4().hex}")
                staged.append((tmp, final))
                jobs.append((df, tmp))
            # tables are written concurrently (polars releases the GIL); any failure aborts them all
            with ThreadPoolExecutor(max_workers=min(4, max(1, len(jobs)))) as pool:
                for fut in [pool.submit(_write_parquet, df, tmp) for df, tmp in jobs]:
                    fut.result()
            if report is not None:
                rp = self.report_path(part)
                rp.parent.mkdir(parents=True, exist_ok=True)
                tmp = rp.with_name(f".report.json.tmp-{uuid.uuid4().hex}")
                staged.append((tmp, rp))
                tmp.write_text(json.dumps(report, indent=2, default=str))
        except BaseException:
            for tmp, _ in staged:
                with suppress(FileNotFoundError):
                    tmp.unlink()
            raise
        for tmp, final in staged:
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        for final in removed:
            with suppress(FileNotFoundError):
                final.unlink()
        return {t: self.path(t, part) for t, df in tables.items() if df is not None}

    def write_day(self, day: DayTables, report: Mapping[str, Any] | None = None) -> dict[str, Path]:
        part = Partition(day.symbol, day.date)
        return self.write_tables(part, {"events": day.events, "book": day.book, "trades": day.trades}, report)

    def write_derived(self, table: str, part: Partition, df: pl.DataFrame) -> Path:
        """Atomically replace one derived table (features, labels, ...) of a partition."""
        return self.write_tables(part, {table: df})[table]

    # ---- reading -----------------------------------------------------------------------------
    def exists(self, table: str, part: Partition) -> bool:
        return self.path(table, part).exists()

    def read(self, table: str, part: Partition, columns: list[str] | None = None) -> pl.DataFrame:
        path = self.path(table, part)
        if not path.exists():
            raise FileNotFoundError(f"no {table} partition {part.key} in the lake ({path})")
        return pl.read_parquet(path, columns=columns)

    def read_report(self, part: Partition) -> dict[str, Any] | None:
        path = self.report_path(part)
        return json.loads(path.read_text()) if path.exists() else None

    def partitions(self, table: str = "events") -> list[Partition]:
        """Every partition of ``table`` present in the lake, sorted."""
        base = self.root / table
        out: list[Partition] = []
        if not base.exists():
            return out
        for sym_dir in base.glob("symbol=*"):
            for date_dir in sym_dir.glob("date=*"):
                if (date_dir / PART_NAME).exists():
                    out.append(Partition(sym_dir.name[7:], dt.date.fromisoformat(date_dir.name[5:])))
        return sorted(out, key=lambda p: (p.symbol, p.date))

    def tables(self) -> Iterator[str]:
        """Names of tables that have at least one partition (raw and derived)."""
        if not self.root.exists():
            return
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and not d.name.startswith(("_", ".")) and any(d.glob(f"symbol=*/date=*/{PART_NAME}")):
                yield d.name

