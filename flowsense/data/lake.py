"""The Parquet lake: ``{root}/{table}/symbol={S}/date={YYYY-MM-DD}/part-0.parquet``.

One file per table and partition. Writes are atomic: every table of a partition is first written to a
hidden temporary file in its final folder, then all are moved into place with ``os.replace``. A failure
before the moves leaves the previous partition untouched and removes the temporaries; re-ingesting a
source replaces its partition (idempotent), it never appends.

Each partition also gets a JSON sidecar under ``_validation/`` with the validation report and lineage
(source files, rows, levels), which the DuckDB catalog exposes as the ``validation`` view.

Versions and staleness (stable API)
-----------------------------------
* Every table file gets a metadata sidecar ``{table}/symbol=S/date=D/_meta.json``: ``rows``, ``sha256`` (of
  the Parquet bytes; writes are deterministic, so the same input gives the same hash), ``written_at`` and,
  for derived tables, ``inputs_version``.
* :meth:`Lake.version` ``(part) -> str | None``: the partition's *input version*, a content hash of its raw
  tables (``events``, ``book``, ``trades``; sha256 over ``table:sha256`` lines, 16 hex digits kept). It is
  stored in the validation report (``version``). Ingesting the same file again gives the same version.
* :meth:`Lake.write_derived` ``(table, part, df, inputs_version=None)`` records the version the table was
  computed from (pass the value of ``lake.version(part)`` read *before* reading the inputs; a mismatch with
  the current version raises :class:`~flowsense.errors.StaleInputsError` and writes nothing).
* When ingest changes a partition's version, every derived table of that symbol-day is removed
  (:meth:`Lake.invalidate_derived`), so the catalog never serves rows computed from other inputs;
  :meth:`Lake.is_stale` and :meth:`Lake.list_partitions` report a derived table whose recorded version is not
  the current one (or unknown).
* :meth:`Lake.list_partitions` / :meth:`Lake.delete_partition` back ``flowsense partitions list|delete``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
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
from flowsense.errors import StaleInputsError

PART_NAME = "part-0.parquet"
META_NAME = "_meta.json"
VALIDATION_DIR = "_validation"
SOURCES_DIR = "_sources"
RAW_TABLES = ("events", "book", "trades")


def content_version(hashes: Mapping[str, str | None]) -> str:
    """The version of a set of tables: sha256 over sorted ``table:sha256`` lines (absent tables skipped)."""
    h = hashlib.sha256()
    for table in sorted(hashes):
        if hashes[table]:
            h.update(f"{table}:{hashes[table]}\n".encode())
    return h.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class TableInfo:
    """One table of a partition, as :meth:`Lake.list_partitions` reports it."""

    table: str
    rows: int
    derived: bool
    sha256: str | None
    inputs_version: str | None  # derived tables: the partition version they were computed from
    stale: bool  # derived and computed from another (or an unknown) version


@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """A symbol-day of the lake: its tables, version, validation status and sources."""

    partition: Partition
    version: str | None
    tables: dict[str, TableInfo]
    ok: bool | None  # None: no validation record
    reason: str
    sources: dict[str, dict[str, Any]]

    @property
    def stale_tables(self) -> list[str]:
        return [t for t, i in self.tables.items() if i.stale]

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.partition.symbol,
            "date": self.partition.date.isoformat(),
            "version": self.version,
            "ok": self.ok,
            "reason": self.reason,
            "tables": {t: {"rows": i.rows, "derived": i.derived, "stale": i.stale,
                           "inputs_version": i.inputs_version} for t, i in self.tables.items()},
            "sources": self.sources,
        }


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


def _rmdir_empty(path: Path, stop: Path) -> None:
    """Remove ``path`` and its empty parents up to (not including) ``stop``."""
    with suppress(OSError):
        while path != stop and path.is_relative_to(stop) and not any(path.iterdir()):
            path.rmdir()
            path = path.parent


def nan_to_null(df: pl.DataFrame) -> pl.DataFrame:
    """Float NaN -> null (missing values are null in every lake table, SQL NULL in the catalog)."""
    floats = [c for c, t in df.schema.items() if t in (pl.Float32, pl.Float64)]
    if not floats:
        return df
    has_nan = df.select(pl.col(floats).is_nan().any()).row(0)
    fix = [c for c, n in zip(floats, has_nan, strict=True) if n]
    return df.with_columns(pl.col(fix).fill_nan(None)) if fix else df


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
    def meta_path(self, table: str, part: Partition) -> Path:
        return self.root / table / part.subdir / META_NAME

    def write_tables(
        self,
        part: Partition,
        tables: Mapping[str, pl.DataFrame | None],
        report: Mapping[str, Any] | None = None,
        *,
        inputs_version: str | None = None,
        on_staged: Any = None,
    ) -> dict[str, Path]:
        """Atomically replace ``part``'s tables; a ``None`` table is removed from the partition.

        All temporaries are written first; only when every one succeeded are they moved into place. Each
        table gets a ``_meta.json`` (rows, sha256 of the file, ``inputs_version`` for derived tables).
        ``on_staged(hashes) -> report`` (optional) is called with every written table's sha256 before the
        moves and returns the report to write (so the report can carry the content version).
        Missing values: NaN in float columns is written as null (SQL NULL in the catalog).
        """
        staged: list[tuple[Path, Path]] = []
        removed: list[Path] = []
        now = dt.datetime.now(dt.UTC).isoformat()
        try:
            jobs: list[tuple[str, pl.DataFrame, Path]] = []
            for table, df in tables.items():
                final = self.path(table, part)
                if df is None:
                    removed += [final, self.meta_path(table, part)]
                    continue
                final.parent.mkdir(parents=True, exist_ok=True)
                tmp = final.with_name(f".{PART_NAME}.tmp-{uuid.uuid4().hex}")
                staged.append((tmp, final))
                jobs.append((table, nan_to_null(df), tmp))
            # tables are written concurrently (polars releases the GIL); any failure aborts them all
            with ThreadPoolExecutor(max_workers=min(4, max(1, len(jobs)))) as pool:
                futs = [pool.submit(_write_parquet, df, tmp) for _, df, tmp in jobs]
                for fut in futs:
                    fut.result()
                hashes = dict(zip([t for t, _, _ in jobs],
                                  pool.map(file_sha256, [tmp for _, _, tmp in jobs]), strict=True))
            for table, df, _ in jobs:
                meta: dict[str, Any] = {"table": table, "rows": df.height, "sha256": hashes[table], "written_at": now}
                if table not in RAW_TABLES:
                    meta["inputs_version"] = inputs_version
                mp = self.meta_path(table, part)
                tmp = mp.with_name(f".{META_NAME}.tmp-{uuid.uuid4().hex}")
                staged.append((tmp, mp))
                tmp.write_text(json.dumps(meta, indent=2))
            if on_staged is not None:
                report = on_staged(hashes)
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
        """Write a day's raw tables; the report gets the partition's content ``version``."""
        part = Partition(day.symbol, day.date)

        def with_version(hashes: Mapping[str, str]) -> dict[str, Any] | None:
            if report is None:
                return None
            return {**report, "version": content_version(hashes), "table_sha256": dict(hashes)}

        return self.write_tables(part, {"events": day.events, "book": day.book, "trades": day.trades},
                                 on_staged=with_version)

    def write_derived(
        self, table: str, part: Partition, df: pl.DataFrame, *, inputs_version: str | None = None
    ) -> Path:
        """Atomically replace one derived table (features, labels, ...) of a partition.

        ``inputs_version``: the :meth:`version` of the partition the table was computed from (read it before
        reading the inputs). When it differs from the current version the inputs were replaced meanwhile:
        :class:`StaleInputsError`, nothing written. Without it the current version is recorded.
        """
        if table in RAW_TABLES:
            raise ValueError(f"{table} is a raw table; write it with write_day")
        current = self.version(part)
        if inputs_version is not None and current is not None and inputs_version != current:
            raise StaleInputsError(
                f"{table} {part.key}: computed from version {inputs_version}, but the partition is now at "
                f"{current} (re-ingested meanwhile); recompute it"
            )
        return self.write_tables(part, {table: df}, inputs_version=inputs_version or current)[table]

    # ---- versions and staleness ----------------------------------------------------------------
    def table_meta(self, table: str, part: Partition) -> dict[str, Any] | None:
        path = self.meta_path(table, part)
        try:
            return json.loads(path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def version(self, part: Partition) -> str | None:
        """The partition's input version (content hash of its raw tables), or None when not ingested."""
        report = self.read_report(part)
        if report and report.get("version"):
            return str(report["version"])
        hashes: dict[str, str | None] = {}
        for table in RAW_TABLES:
            if self.exists(table, part):
                meta = self.table_meta(table, part)
                hashes[table] = (meta or {}).get("sha256") or file_sha256(self.path(table, part))
        return content_version(hashes) if hashes else None

    def derived_tables(self, part: Partition) -> list[str]:
        """Every non-raw table that has a file for ``part``."""
        if not self.root.exists():
            return []
        out = []
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and not d.name.startswith(("_", ".")) and d.name not in RAW_TABLES \
                    and (d / part.subdir / PART_NAME).exists():
                out.append(d.name)
        return out

    def is_stale(self, table: str, part: Partition) -> bool:
        """True when derived ``table`` of ``part`` was computed from another (or an unrecorded) version."""
        if table in RAW_TABLES or not self.exists(table, part):
            return False
        meta = self.table_meta(table, part) or {}
        recorded = meta.get("inputs_version")
        return recorded is None or recorded != self.version(part)

    def invalidate_derived(self, part: Partition) -> list[str]:
        """Remove every derived table of ``part`` (its inputs changed); returns their names."""
        removed = []
        for table in self.derived_tables(part):
            for f in (self.path(table, part), self.meta_path(table, part)):
                with suppress(FileNotFoundError):
                    f.unlink()
            _rmdir_empty(self.path(table, part).parent, stop=self.root)
            removed.append(table)
        return removed

    # ---- partitions: list and delete -----------------------------------------------------------
    def _rows(self, table: str, part: Partition) -> int:
        meta = self.table_meta(table, part)
        if meta and "rows" in meta:
            return int(meta["rows"])
        import pyarrow.parquet as pq

        return int(pq.read_metadata(self.path(table, part)).num_rows)

    def all_partitions(self) -> list[Partition]:
        """Every symbol-day with a file in any table (raw or derived) or a validation record."""
        found: set[Partition] = set()
        if not self.root.exists():
            return []
        for d in self.root.iterdir():
            if not d.is_dir() or d.name.startswith("."):
                continue
            if d.name.startswith("_") and d.name != VALIDATION_DIR:
                continue
            for sym_dir in d.glob("symbol=*"):
                for date_dir in sym_dir.glob("date=*"):
                    if any(date_dir.iterdir()):
                        with suppress(ValueError):
                            found.add(Partition(sym_dir.name[7:], dt.date.fromisoformat(date_dir.name[5:])))
        return sorted(found, key=lambda p: (p.symbol, p.date))

    def partition_info(self, part: Partition) -> PartitionInfo:
        from flowsense.data.validate import report_status

        version = self.version(part)
        tables: dict[str, TableInfo] = {}
        for table in [t for t in RAW_TABLES if self.exists(t, part)] + self.derived_tables(part):
            meta = self.table_meta(table, part) or {}
            derived = table not in RAW_TABLES
            inputs = meta.get("inputs_version")
            tables[table] = TableInfo(
                table, self._rows(table, part), derived, meta.get("sha256"), inputs,
                stale=derived and (inputs is None or inputs != version),
            )
        report = self.read_report(part)
        ok, reason = report_status(report)
        sources = dict((report or {}).get("sources") or {})
        return PartitionInfo(part, version, tables, ok, reason, sources)

    def list_partitions(self, symbol: str | None = None, date: dt.date | None = None) -> list[PartitionInfo]:
        """Every symbol-day (optionally one symbol / date) with tables, rows, validation and staleness."""
        return [
            self.partition_info(p) for p in self.all_partitions()
            if (symbol is None or p.symbol == symbol) and (date is None or p.date == date)
        ]

    def delete_partition(self, part: Partition, table: str | None = None) -> list[str]:
        """Delete a symbol-day, or one of its tables; returns the tables removed.

        Deleting the partition removes every table, its validation record and kept sources. Deleting a raw
        table (``events``, ``book``, ``trades``) also removes every derived table (they were computed from
        it) and updates the partition's version; deleting a derived table removes only that table.
        """
        removed: list[str] = []
        if table is None:
            targets = [t for t in RAW_TABLES if self.exists(t, part)] + self.derived_tables(part)
        elif table in RAW_TABLES:
            targets = ([table] if self.exists(table, part) else []) + self.derived_tables(part)
        else:
            targets = [table] if self.exists(table, part) else []
        if table is not None and not targets:
            raise FileNotFoundError(f"no {table} partition {part.key} in the lake")
        for t in targets:
            for f in (self.path(t, part), self.meta_path(t, part)):
                with suppress(FileNotFoundError):
                    f.unlink()
            _rmdir_empty(self.path(t, part).parent, stop=self.root)
            removed.append(t)
        if table is None:
            with suppress(FileNotFoundError):
                self.report_path(part).unlink()
            _rmdir_empty(self.report_path(part).parent, stop=self.root)
            self.drop_sources(part)
        elif table in RAW_TABLES:
            report = self.read_report(part)
            if report is not None:
                hashes = {t: (self.table_meta(t, part) or {}).get("sha256") for t in RAW_TABLES if self.exists(t, part)}
                report = {**report, "version": content_version(hashes) if hashes else None,
                          "deleted_tables": sorted({*report.get("deleted_tables", []), table})}
                atomic_write_bytes(self.report_path(part), json.dumps(report, indent=2, default=str).encode())
        return removed

    # ---- kept sources (partitions composed of a book source and a trades source) ---------------
    def source_dir(self, role: str, part: Partition) -> Path:
        return self.root / SOURCES_DIR / role / part.subdir

    def write_source(self, role: str, day: DayTables, meta: Mapping[str, Any]) -> None:
        """Keep one source's own tables (``_sources/{role}/...``) so a partition can be recomposed."""
        part = Partition(day.symbol, day.date)
        d = self.source_dir(role, part)
        for table, df in (("events", day.events), ("book", day.book), ("trades", day.trades)):
            path = d / f"{table}.parquet"
            if df is None:
                with suppress(FileNotFoundError):
                    path.unlink()
            else:
                atomic_write_parquet(df, path)
        atomic_write_bytes(d / "source.json", json.dumps({**meta, "size_scale": day.size_scale},
                                                         indent=2, default=str).encode())

    def read_source(self, role: str, part: Partition, sha256: str | None = None) -> DayTables | None:
        """A kept source's tables (None when absent, or when its recorded sha256 is not ``sha256``)."""
        d = self.source_dir(role, part)
        try:
            meta = json.loads((d / "source.json").read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if sha256 is not None and meta.get("source_sha256") != sha256:
            return None
        book = pl.read_parquet(d / "book.parquet") if (d / "book.parquet").exists() else None
        return DayTables(part.symbol, part.date, pl.read_parquet(d / "events.parquet"),
                         pl.read_parquet(d / "trades.parquet"), book, sources=(str(meta.get("source")),),
                         size_scale=int(meta.get("size_scale", 1)))

    def drop_sources(self, part: Partition) -> None:
        base = self.root / SOURCES_DIR
        if not base.exists():
            return
        for role_dir in base.iterdir():
            d = role_dir / part.subdir
            if d.exists():
                for f in d.iterdir():
                    f.unlink()
                _rmdir_empty(d, stop=self.root)

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

