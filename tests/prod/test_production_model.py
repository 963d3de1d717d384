"""Production profile: a model trained with `flowsense train` lands in the PostgreSQL-backed MLflow registry
(champion alias there), and the streaming worker loads that champion from it and trades a later day."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
FLOWSENSE = Path(sys.executable).parent / "flowsense"
PG = "postgresql://postgres@127.0.0.1:5432"


@pytest.fixture
def prod_home(pg_database: str, tmp_path: Path) -> tuple[Path, dict[str, str], str]:
    home = tmp_path / "home"
    env = {**os.environ, "FLOWSENSE_PROFILE": "production", "FLOWSENSE_HOME": str(home),
           "FLOWSENSE_MLFLOW_URI": f"{PG}/{pg_database}", "FLOWSENSE_STATE_DSN": str(tmp_path / "worker"),
           "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    return home, env, pg_database


def _flowsense(env: dict[str, str], *args: str) -> dict:
    out = subprocess.run([str(FLOWSENSE), *args], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, f"flowsense {' '.join(args)}: {out.stderr[-3000:]}"
    return json.loads([ln for ln in out.stdout.splitlines() if ln.startswith("{")][-1])


def test_model_trained_in_production_lands_in_postgres_registry_and_worker_loads_it(prod_home) -> None:
    import psycopg2

    from flowsense.data.ingest import ingest_file
    from flowsense.data.lake import Lake
    from flowsense.features.pipeline import compute_partition
    from flowsense.sim import simulate

    home, env, db = prod_home
    # five simulated days; features for the first four (the training window), the fifth is traded live
    files = simulate(["PM"], 5, home / "raw", seed=21, scale=0.1)
    lake = Lake(home / "lake")
    parts = [ingest_file(f, lake)[0].partition for f in files]
    for part in parts[:4]:
        compute_partition(lake, part)
    trained = _flowsense(env, "train", "--models", "xgboost", "--symbols", "PM", "--unit", "days",
                         "--train", "2", "--val", "1", "--test", "1", "--param", "xgboost.inputs=tick",
                         "--json")
    assert trained, trained
    # the registry is the PostgreSQL database: version and champion alias are rows there
    with psycopg2.connect(f"{PG}/{db}") as conn, conn.cursor() as cur:
        cur.execute("select version from model_versions where name = 'flowsense-xgboost'")
        versions = [r[0] for r in cur.fetchall()]
        cur.execute("select alias, version from registered_model_aliases where name = 'flowsense-xgboost'")
        aliases = dict(cur.fetchall())
    assert versions == [1], versions
    assert aliases.get("champion") == 1, aliases
    # the worker (production profile, same environment) loads the champion and trades the unseen day
    day = parts[4].date.isoformat()
    summary = _flowsense(env, "worker", "run", "--source", "replay", "--symbol", "PM", "--date", day,
                         "--strategy", "model_signal", "--model", "flowsense-xgboost", "--json")
    assert str(summary.get("model_version")) == "1", summary
    assert summary["orders"], "the model traded nothing"
    assert summary["unique_client_order_ids"] == len(summary["orders"])
