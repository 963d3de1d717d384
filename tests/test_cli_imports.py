"""``flowsense --help`` stays fast: no command module imports a heavy library at its top level.

A test of imports, not of time (timing is in ``bench/cli.py``): the command modules of every helper are
imported by ``flowsense.cli``, so one eager ``import polars`` anywhere brings back the 2 s start-up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
HEAVY = ("polars", "numba", "numpy", "duckdb", "pyarrow", "pandas", "mlflow", "torch", "xgboost", "sklearn",
         "dagster", "fastapi", "redis", "matplotlib", "scipy", "rich.markdown", "rich.traceback")

PROBE = """
import json, sys
sys.argv = ["flowsense", *sys.argv[1:]]
import flowsense.cli
if len(sys.argv) > 1:
    try:
        flowsense.cli.app()
    except SystemExit:
        pass
sys.stderr.write(json.dumps(sorted(sys.modules)))
"""


def _modules(*argv: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env,
                         cwd=REPO, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    return set(json.loads(res.stderr.strip().splitlines()[-1]))


def _heavy(mods: set[str]) -> list[str]:
    return sorted(h for h in HEAVY if h in mods)


def test_import_flowsense_cli_loads_no_heavy_library() -> None:
    mods = _modules()
    assert "flowsense.cli" in mods
    assert _heavy(mods) == [], "imported at the top level of a CLI module; move it into the command function"


@pytest.mark.parametrize("argv", [("--help",), ("ingest", "--help"), ("catalog", "--help"),
                                  ("partitions", "list", "--help"), ("backtest", "--help")])
def test_help_loads_no_heavy_library(argv: tuple[str, ...]) -> None:
    assert _heavy(_modules(*argv)) == []


def test_every_command_module_registers() -> None:
    import flowsense.cli as cli

    missing = [m for m in cli.COMMAND_MODULES if f"flowsense.cli.{m}" not in sys.modules
               and (REPO / "flowsense" / "cli" / f"{m}.py").exists()]
    assert missing == []


def test_inlined_constants_agree_with_the_library() -> None:
    from flowsense.backtest.runner import US_EQUITY_MINUTES_PER_YEAR
    from flowsense.cli import backtest

    assert backtest.US_EQUITY_MINUTES_PER_YEAR == US_EQUITY_MINUTES_PER_YEAR
    from flowsense.cli import partitions
    from flowsense.data.lake import RAW_TABLES

    assert partitions.RAW_TABLES == RAW_TABLES
