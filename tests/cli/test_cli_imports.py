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

REPO = Path(__file__).resolve().parents[2]
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


def test_ingest_of_a_lobster_file_starts_no_jit(tmp_path: Path) -> None:
    """``flowsense ingest`` of a LOBSTER day needs no Numba (nor the DBN reader, SciPy or rich's help)."""
    from tests.conftest import lobster_zip

    src = lobster_zip("GOOG", 1)
    env = {**os.environ, "PYTHONPATH": str(REPO), "FLOWSENSE_HOME": str(tmp_path / "home")}
    res = subprocess.run([sys.executable, "-c", PROBE, "ingest", str(src)], capture_output=True, text=True,
                         env=env, cwd=REPO, timeout=120, check=False)
    mods = set(json.loads(res.stderr.strip().splitlines()[-1]))
    assert "polars" in mods and (tmp_path / "home" / "lake" / "events" / "symbol=GOOG").exists(), res.stdout
    assert not {"numba", "scipy", "flowsense.data.dbn", "rich.markdown"} & mods


def test_numpy_transition_count_equals_the_loop() -> None:
    """The vectorized count (small books) and the compiled loop (large ones) agree, mismatches included."""
    import numpy as np

    from flowsense.data import validate as V

    rng = np.random.default_rng(7)
    n, levels = 3_000, 3
    book = np.full((n, 4 * levels), np.nan)
    for lv in range(levels):  # a plausible book: asks above bids, some empty deep levels
        book[:, 4 * lv] = 100.0 + 0.01 * (lv + 1) + 0.01 * rng.integers(0, 3, n)
        book[:, 4 * lv + 1] = rng.integers(1, 5, n) * 100
        book[:, 4 * lv + 2] = 100.0 - 0.01 * lv - 0.01 * rng.integers(0, 3, n)
        book[:, 4 * lv + 3] = rng.integers(1, 5, n) * 100
    book[rng.choice(n, 300), 4 * (levels - 1)] = np.nan
    kind = rng.integers(-1, 2, n)
    side = np.where(rng.random(n) < 0.5, 1, -1)
    price = np.where(side == 1, book[:, 2], book[:, 0]) + 0.01 * rng.integers(-1, 2, n)
    price[rng.choice(n, 50)] = np.nan
    size = rng.integers(0, 5, n).astype(np.float64) * 100
    expected = V._transition_loop(kind, side, price, size, book)  # the plain Python reference
    assert expected > 100
    assert V._transition_numpy(kind, side, price, size, book) == expected
    assert V._transition_numpy(kind, side, price, size, np.asfortranarray(book), chunk=257) == expected
    assert V._numba_loop()(kind, side, price, size, book) == expected
