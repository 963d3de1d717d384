"""The library boundary: ``flowsense`` never imports Dagster, FastAPI or the outer packages.

1. Every module under ``flowsense/`` (found on disk, so a module nobody imports yet is checked too) is
   imported in a fresh interpreter whose meta-path refuses ``dagster*``, ``flowsense_dagster`` and
   ``flowsense_api``: it must import, and none of them may end up in ``sys.modules``.
2. No import statement in ``flowsense/`` (top level or inside a function, so lazy imports count) names
   ``dagster*``, ``fastapi``, ``starlette``, ``uvicorn``, ``flowsense_dagster`` or ``flowsense_api``; the one
   exception is the ``flowsense api`` launcher command (``flowsense/cli/api.py``), which starts the server
   package lazily inside its commands. FastAPI is only checked statically: Feast and MLflow import it
   themselves.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("dagster", "dagster_postgres", "dagster_celery", "dagster_webserver", "dagster_graphql",
           "flowsense_dagster", "flowsense_api")
FORBIDDEN = (*BLOCKED, "fastapi", "starlette", "uvicorn")
ALLOWED = {"flowsense/cli/api.py": {"flowsense_api"}}  # the launcher (imports inside its commands only)

SCRIPT = r"""
import importlib, importlib.abc, json, pkgutil, sys, traceback
BLOCKED = set(json.loads(sys.argv[1]))

class Blocker(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is outside the library boundary (blocked by the test)")
        return None

sys.meta_path.insert(0, Blocker())
if len(sys.argv) > 2:
    names = sys.argv[2:]
else:
    import flowsense
    names = sorted(m.name for m in pkgutil.walk_packages(flowsense.__path__, "flowsense."))
failed = {}
for name in names:
    try:
        importlib.import_module(name)
    except BaseException as exc:  # SystemExit from a CLI module counts too
        failed[name] = "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1]
leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print(json.dumps({"modules": names, "failed": failed, "leaked": leaked}))
"""


def _run(tmp: Path, *modules: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(BLOCKED), *modules],
        cwd=tmp, capture_output=True, text=True, timeout=300,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": str(tmp), "MPLBACKEND": "Agg",
             "FLOWSENSE_HOME": str(tmp / "home")},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_every_module_imports_with_dagster_unimportable(tmp_path: Path) -> None:
    out = _run(tmp_path)
    assert len(out["modules"]) > 50, out["modules"]  # every module on disk, not a handful
    assert {"flowsense.data.inbox", "flowsense.reporting.summary", "flowsense.config"} <= set(out["modules"])
    assert out["failed"] == {}, out["failed"]
    assert out["leaked"] == []


def test_blocker_really_blocks(tmp_path: Path) -> None:
    """The same harness reports a module that imports Dagster (so the test above can fail)."""
    out = _run(tmp_path, "flowsense_dagster.partitions")
    assert "outside the library boundary" in out["failed"]["flowsense_dagster.partitions"]


def _imported(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_no_import_statement_crosses_the_boundary() -> None:
    bad = {}
    files = sorted((REPO / "flowsense").rglob("*.py"))
    assert len(files) > 50
    for path in files:
        rel = path.relative_to(REPO).as_posix()
        crossing = (_imported(ast.parse(path.read_text(), rel)) & set(FORBIDDEN)) - ALLOWED.get(rel, set())
        if crossing:
            bad[rel] = sorted(crossing)
    assert bad == {}
    assert _imported(ast.parse("import dagster\nfrom fastapi import FastAPI\n")) >= {"dagster", "fastapi"}


# lower layers of the library never import the upper ones (docs/ARCHITECTURE.md)
LAYERS = {
    "config": {"errors"},
    "errors": set(),
    "data": {"config", "errors"},
    "features": {"data", "config", "errors"},
    "reporting": {"data", "config", "errors"},
}
VENDOR_SDKS = {"redis", "ib_async", "ib_insync", "prometheus_client"}  # only under flowsense/adapters/<name>/


def _flowsense_imports(tree: ast.AST) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
        out |= {m.split(".")[1] for m in mods if m.startswith("flowsense.") and m.count(".") >= 1}
    return out


def test_layers_and_vendor_sdks() -> None:
    bad: dict[str, list[str]] = {}
    for path in sorted((REPO / "flowsense").rglob("*.py")):
        rel = path.relative_to(REPO / "flowsense")
        package = rel.parts[0].removesuffix(".py")
        tree = ast.parse(path.read_text(), str(rel))
        if package in LAYERS:
            upward = _flowsense_imports(tree) - LAYERS[package] - {package}
            if upward:
                bad[f"flowsense/{rel.as_posix()}"] = sorted(upward)
        if package != "adapters" and _imported(tree) & VENDOR_SDKS:
            bad[f"flowsense/{rel.as_posix()}"] = sorted(_imported(tree) & VENDOR_SDKS)
        if package != "cli" and "cli" in _flowsense_imports(tree):
            bad[f"flowsense/{rel.as_posix()}"] = ["cli"]
    assert bad == {}
    assert _flowsense_imports(ast.parse("from flowsense.backtest.engine import x\nimport flowsense.live")) == {
        "backtest", "live"}
