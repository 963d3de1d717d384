"""The inbox source index: which raw file holds which symbol x day partition.

The inbox (``FLOWSENSE_HOME/inbox``, searched recursively) receives raw files in any format that
:func:`flowsense.data.ingest.detect_format` knows. The index, ``inbox/.index.json``, caches for every file
its size and mtime, its format, the partitions it holds and its book depth, so that a partition's source is
found without re-reading files:

* LOBSTER names carry symbol, date and level (zips are listed, never extracted);
* other formats (Databento DBN, trades/quotes CSV/Parquet) are read once with
  :func:`flowsense.data.ingest.read_file` to learn their partitions.

A file is described again only when its size or mtime changes. Files that cannot be described (unknown or
malformed) are kept with their error, so they are reported once and not re-read on every scan. Hidden files
(any path part starting with ``.``) and temporary files (``*.tmp``, ``*.part``, ``*~`` ...) are ignored.

When several files hold the same partition (for example the LOBSTER level-1 and level-10 zips of one day),
the deepest book wins, then the newest file, then the path. The index is rebuilt by the inbox sensor and by
the raw-data assets (Dagster) and usable from any caller; it is a cache: deleting it only costs a rescan.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from flowsense.data import lobster
from flowsense.data.ingest import detect_format, read_file
from flowsense.data.lake import Partition, atomic_write_bytes

INDEX_NAME = ".index.json"
INDEX_VERSION = 1
TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".download", ".swp", ".lock")

log = logging.getLogger(__name__)


def is_candidate(path: Path, root: Path) -> bool:
    """Whether ``path`` (under ``root``) is a raw file to consider: a regular file, not hidden, not temporary."""
    try:
        rel = path.relative_to(root)
    except ValueError:
        return False
    if any(part.startswith(".") for part in rel.parts):
        return False
    name = path.name
    if name.endswith("~") or name.startswith(("~$", "#")) or name.lower().endswith(TEMP_SUFFIXES):
        return False
    return path.is_file()  # follows symlinks; directories, sockets and dangling links are skipped


def iter_inbox(root: Path) -> Iterator[Path]:
    """Raw files under ``root``, recursively, sorted."""
    if not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        if is_candidate(path, root):
            yield path


@dataclass(slots=True)
class SourceEntry:
    """What the index knows about one inbox file (``path`` is relative to the inbox, POSIX style)."""

    path: str
    mtime_ns: int
    size: int
    format: str | None = None
    partitions: list[str] = field(default_factory=list)  # Partition.key: SYMBOL|YYYY-MM-DD
    levels: int = 0
    primary: bool = True  # False for the orderbook half of a LOBSTER CSV pair (the message file leads)
    partner: str | None = None  # the other half of a LOBSTER CSV pair
    error: str | None = None

    @property
    def stat(self) -> list[int]:
        return [self.mtime_ns, self.size]

    @property
    def lake_partitions(self) -> list[Partition]:
        return [Partition.parse(k) for k in self.partitions]

    def is_ready(self, root: Path) -> bool:
        """False while the partner of a LOBSTER CSV half has not arrived yet."""
        return self.partner is None or (root / self.partner).is_file()


def _lobster_entry(path: Path, rel: str, entry: SourceEntry) -> SourceEntry:
    if path.suffix == ".zip":
        sources = lobster.find_sources(path)  # lists the members, raises IngestError when unusable
        entry.partitions = sorted({Partition(s.name.symbol, s.name.date).key for s in sources})
        entry.levels = max(s.name.level for s in sources)
        return entry
    name = lobster.LobsterName.parse(path.name)
    if name is None:  # pragma: no cover - detect_format said lobster
        raise ValueError("not a LOBSTER file name")
    entry.partitions = [Partition(name.symbol, name.date).key]
    entry.levels = name.level
    is_message = "_message_" in path.name
    entry.primary = is_message
    other = (
        path.name.replace("_message_", "_orderbook_")
        if is_message
        else path.name.replace("_orderbook_", "_message_")
    )
    entry.partner = str(Path(rel).with_name(other).as_posix())
    return entry


def describe(path: Path, root: Path, *, tz: str | None = None) -> SourceEntry:
    """Describe one inbox file; errors are recorded in the entry, never raised. ``tz``: the zone of naive
    tick times (``FLOWSENSE_TICK_TZ``); without it a trades/quotes file with naive times is an error."""
    st = path.stat()
    rel = path.relative_to(root).as_posix()
    entry = SourceEntry(path=rel, mtime_ns=st.st_mtime_ns, size=st.st_size)
    try:
        fmt = detect_format(path)
        entry.format = fmt
        if fmt == "lobster":
            return _lobster_entry(path, rel, entry)
        _, days = read_file(path, fmt=fmt, tz=tz)
        entry.partitions = sorted({Partition(d.symbol, d.date).key for d in days})
        entry.levels = max((d.levels for d in days), default=0)
    except Exception as exc:  # any reader failure: record it, the caller logs and skips the file
        entry.error = f"{type(exc).__name__}: {exc}"
        entry.partitions = []
    return entry


@dataclass(slots=True)
class SourceIndex:
    """The index of one inbox. Build it with :meth:`scan`; it saves itself when something changed."""

    root: Path
    tz: str | None = None  # zone of naive tick times the entries were described with
    entries: dict[str, SourceEntry] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)  # paths described again by the last scan
    removed: list[str] = field(default_factory=list)  # paths gone since the saved index

    @property
    def index_path(self) -> Path:
        return self.root / INDEX_NAME

    # ---- persistence -------------------------------------------------------------------------
    @classmethod
    def load(cls, root: str | Path) -> SourceIndex:
        root = Path(root)
        index = cls(root)
        try:
            raw = json.loads((root / INDEX_NAME).read_text())
        except (FileNotFoundError, ValueError):
            return index
        if raw.get("version") != INDEX_VERSION:
            return index
        index.tz = raw.get("tz")
        for rel, data in raw.get("files", {}).items():
            try:
                index.entries[rel] = SourceEntry(**data)
            except TypeError:
                continue
        return index

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        payload: dict[str, Any] = {
            "version": INDEX_VERSION,
            "updated_at": dt.datetime.now(dt.UTC).isoformat(),
            "tz": self.tz,
            "files": {rel: asdict(e) for rel, e in sorted(self.entries.items())},
        }
        atomic_write_bytes(self.index_path, json.dumps(payload, indent=1).encode())

    @classmethod
    def scan(cls, root: str | Path, *, save: bool = True, tz: str | None = None) -> SourceIndex:
        """Load the saved index, describe new or changed files, drop vanished ones, save if anything changed.

        ``tz``: the zone of naive tick times; when it differs from the one the saved index was built with,
        every file is described again."""
        index = cls.load(root)
        root = index.root
        if index.tz != tz:
            index.entries.clear()
            index.tz = tz
        seen: set[str] = set()
        for path in iter_inbox(root):
            rel = path.relative_to(root).as_posix()
            seen.add(rel)
            try:
                st = path.stat()
            except FileNotFoundError:  # vanished between listing and stat
                seen.discard(rel)
                continue
            old = index.entries.get(rel)
            if old is not None and old.stat == [st.st_mtime_ns, st.st_size]:
                continue
            index.entries[rel] = describe(path, root, tz=tz)
            index.changed.append(rel)
        index.removed = sorted(set(index.entries) - seen)
        for rel in index.removed:
            del index.entries[rel]
        if save and (index.changed or index.removed or not index.index_path.exists()):
            try:
                index.save()
            except OSError as exc:  # a read-only inbox still works, just without the cache
                log.warning("could not save the inbox index %s: %s", index.index_path, exc)
        return index

    # ---- lookups -----------------------------------------------------------------------------
    def usable(self) -> Iterator[SourceEntry]:
        """Entries that can be ingested: described without error, primary, partner present."""
        for e in self.entries.values():
            if e.error is None and e.primary and e.is_ready(self.root):
                yield e

    def partitions(self) -> list[Partition]:
        """Every partition some usable file holds, sorted by symbol then date."""
        keys = {k for e in self.usable() for k in e.partitions}
        return sorted((Partition.parse(k) for k in keys), key=lambda p: (p.symbol, p.date))

    def sources_for(self, part: Partition) -> list[SourceEntry]:
        """Usable files holding ``part``, best first (deepest book, newest, then path)."""
        found = [e for e in self.usable() if part.key in e.partitions]
        return sorted(found, key=lambda e: (-e.levels, -e.mtime_ns, e.path))

    def source_for(self, part: Partition) -> SourceEntry | None:
        found = self.sources_for(part)
        return found[0] if found else None

    def path_of(self, entry: SourceEntry) -> Path:
        return self.root / entry.path

    def errors(self, paths: Iterable[str] | None = None) -> dict[str, str]:
        wanted = set(paths) if paths is not None else None
        return {
            rel: e.error
            for rel, e in sorted(self.entries.items())
            if e.error is not None and (wanted is None or rel in wanted)
        }


@dataclass(frozen=True, slots=True)
class InboxSource:
    """The file chosen for one partition (the best of those holding it, see :meth:`SourceIndex.source_for`)."""

    partition: Partition
    entry: SourceEntry
    path: Path


def scan_inbox(root: str | Path, *, tz: str | None = None) -> list[InboxSource]:
    """Rescan the inbox under ``root``; one :class:`InboxSource` per partition it holds, sorted. ``tz``: the
    zone of naive tick times (see :meth:`SourceIndex.scan`)."""
    index = SourceIndex.scan(root, tz=tz)
    out: list[InboxSource] = []
    for part in index.partitions():
        entry = index.source_for(part)
        if entry is not None:
            out.append(InboxSource(part, entry, index.path_of(entry)))
    return out
