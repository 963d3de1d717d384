"""Data versions: the lake's raw partitions tracked in a DVC repository in ``FLOWSENSE_HOME``.

``FLOWSENSE_HOME`` itself is the DVC repository (``.dvc/`` there, no git: ``Repo.init(no_scm=True)``);
the raw tables ``lake/events``, ``lake/book`` and ``lake/trades`` are its outputs (``lake/<table>.dvc``),
their files content-addressed in ``.dvc/cache``. A ``.dvcignore`` keeps DVC away from everything else
in FLOWSENSE_HOME (derived tables, MLflow, Dagster, reports).

:func:`snapshot` re-adds the raw tables (cheap when nothing changed: DVC re-hashes only new/modified
files) and returns a :class:`DataVersion` whose id (``dvc-<16 hex>``) is a hash of the tables' DVC
directory hashes; the ``.dvc`` files of every version are kept in ``FLOWSENSE_HOME/dvc-versions/<id>.json``
(without git there is no other history). Every model version carries this id (MLflow tag
``data_version``). :func:`restore` brings an older version's raw data back byte for byte: in place
(``lake/<table>.dvc`` rewritten, ``dvc checkout --force``) or, with ``dest``, as a copy from the cache
that leaves the lake untouched. An optional DVC remote (``remote=`` a folder or URL) is pushed to on
snapshot.

``import dvc`` takes ~2 s: imported only inside the functions.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import logging
import shutil
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flowsense.config import Settings
from flowsense.errors import FlowSenseError

RAW_TABLES = ("events", "book", "trades")
VERSIONS_DIR = "dvc-versions"
DVCIGNORE = """\
# written by flowsense.models.dataversion: DVC tracks only the lake's raw tables
/*
!/lake
/lake/*
{keep}
!/lake/*.dvc
!/.dvc*
"""


class DataVersionError(FlowSenseError):
    """A data version is unknown, or its files are missing from the DVC cache."""


@dataclass(frozen=True)
class DataVersion:
    id: str
    tables: dict[str, str]  # table -> DVC directory hash (md5 ... .dir)
    files: dict[str, int] = field(default_factory=dict)  # table -> number of files
    dvc_files: dict[str, str] = field(default_factory=dict, repr=False)  # table -> lake/<table>.dvc text

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "tables": self.tables, "files": self.files, "dvc_files": self.dvc_files}


def _root(settings: Settings | None) -> Path:
    return (settings or Settings.from_env()).home


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    """One DVC operation at a time per FLOWSENSE_HOME (Dagster runs in parallel processes)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".dvc-flowsense.lock", "w") as fh, warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dvc's own (pygtrie) deprecations, not ours
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _repo(root: Path, tables: Sequence[str]) -> Any:
    from dvc.repo import Repo

    logging.getLogger("dvc").setLevel(logging.WARNING)
    if not (root / ".dvc").is_dir():
        with redirect_stdout(io.StringIO()):  # "Initialized DVC repository." must not reach --json output
            Repo.init(str(root), no_scm=True)
    ignore = DVCIGNORE.format(keep="\n".join(f"!/lake/{t}" for t in tables))
    path = root / ".dvcignore"
    if not path.exists() or path.read_text() != ignore:
        path.write_text(ignore)
    return Repo(str(root))


def version_id(tables: dict[str, str]) -> str:
    h = hashlib.sha256("\n".join(f"{t}:{tables[t]}" for t in sorted(tables)).encode()).hexdigest()
    return f"dvc-{h[:16]}"


def snapshot(settings: Settings | None = None, *, tables: Sequence[str] = RAW_TABLES,
             remote: str | None = None) -> DataVersion:
    """Track the raw tables' current content; return (and record) its data version."""
    root = _root(settings)
    present = [t for t in tables if (root / "lake" / t).is_dir()]
    if not present:
        raise DataVersionError(f"{root / 'lake'}: no raw tables ({', '.join(tables)}) to version; ingest data first")
    with _locked(root):
        repo = _repo(root, tables)
        try:
            stages = repo.add([str(root / "lake" / t) for t in present])
            hashes = {t: str(s.outs[0].hash_info.value) for t, s in zip(present, stages, strict=True)}
            files = {t: int(s.outs[0].meta.nfiles or 0) for t, s in zip(present, stages, strict=True)}
            if remote:
                with repo.config.edit() as conf:
                    conf["remote"]["flowsense"] = {"url": remote}
                    conf["core"]["remote"] = "flowsense"
                repo.push()
        finally:
            repo.close()
        dvc_files = {t: (root / "lake" / f"{t}.dvc").read_text() for t in present}
        version = DataVersion(version_id(hashes), hashes, files, dvc_files)
        out = root / VERSIONS_DIR / f"{version.id}.json"
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_suffix(".tmp")
            tmp.write_text(json.dumps(version.to_dict(), indent=2))
            tmp.replace(out)
    return version


def get(version: str, settings: Settings | None = None) -> DataVersion:
    path = _root(settings) / VERSIONS_DIR / f"{version}.json"
    if not path.exists():
        known = list_versions(settings)
        hint = f"; known: {', '.join(v.id for v in known[:5])}" if known else "; none recorded yet"
        raise DataVersionError(f"{path}: unknown data version {version!r}{hint}")
    d = json.loads(path.read_text())
    return DataVersion(d["id"], d["tables"], d.get("files", {}), d.get("dvc_files", {}))


def list_versions(settings: Settings | None = None) -> list[DataVersion]:
    """Every recorded version, oldest first."""
    d = _root(settings) / VERSIONS_DIR
    if not d.is_dir():
        return []
    paths = sorted(d.glob("dvc-*.json"), key=lambda p: p.stat().st_mtime)
    return [get(p.stem, settings) for p in paths]


def _cache_file(root: Path, md5: str) -> Path:
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def manifest(version: str | DataVersion, settings: Settings | None = None) -> dict[str, list[dict[str, str]]]:
    """table -> [{relpath, md5}] of the version's files (from DVC's directory objects in the cache)."""
    root = _root(settings)
    v = version if isinstance(version, DataVersion) else get(version, settings)
    out = {}
    for t, h in v.tables.items():
        path = _cache_file(root, h)
        if not path.exists():
            raise DataVersionError(f"{path}: directory object of {v.id}/{t} missing from the DVC cache")
        out[t] = json.loads(path.read_text())
    return out


def restore(version: str, settings: Settings | None = None, *, dest: str | Path | None = None) -> Path:
    """Bring the raw tables of ``version`` back byte for byte.

    Without ``dest``: in place, with DVC (``lake/<table>.dvc`` rewritten to the version, ``checkout``
    forced; derived tables are not touched, recompute them). With ``dest``: a copy under
    ``dest/<table>/...`` straight from the DVC cache; the lake stays as it is. Returns the folder.
    """
    root = _root(settings)
    v = get(version, settings)
    if dest is not None:
        dest = Path(dest)
        for table, entries in manifest(v, settings).items():
            for e in entries:
                src = _cache_file(root, e["md5"])
                if not src.exists():
                    raise DataVersionError(f"{src}: file {table}/{e['relpath']} of {v.id} missing from the cache")
                target = dest / table / e["relpath"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, target)
        return dest
    with _locked(root):
        for table, text in v.dvc_files.items():
            (root / "lake" / f"{table}.dvc").write_text(text)
        repo = _repo(root, list(v.tables))
        try:
            repo.checkout(targets=[str(root / "lake" / f"{t}.dvc") for t in v.tables], force=True)
        finally:
            repo.close()
    return root / "lake"


def partition_hashes(version: str | DataVersion, symbols: Sequence[str] | None = None,
                     dates: Sequence[str] | None = None, settings: Settings | None = None) -> str:
    """A hash of just the partitions a model saw (``symbols`` x ``dates`` of every raw table) in
    ``version``: two models trained on the same window of unchanged partitions share it."""
    man = manifest(version, settings)
    syms = None if symbols is None else {f"symbol={s}" for s in symbols}
    days = None if dates is None else {f"date={d}" for d in dates}
    h = hashlib.sha256()
    for table in sorted(man):
        for e in sorted(man[table], key=lambda e: e["relpath"]):
            parts = e["relpath"].split("/")
            if (syms is None or parts[0] in syms) and (days is None or (len(parts) > 1 and parts[1] in days)):
                h.update(f"{table}/{e['relpath']}:{e['md5']}\n".encode())
    return h.hexdigest()[:16]
