"""Command-line start-up and end-to-end ingest, against in-process baselines measured in the same run.

Like ``hyperfine``: each command runs ``--repeat`` times as a fresh subprocess (after ``--warmup`` runs that
fill the bytecode and Numba caches); we report the minimum (least disturbed by other load) and the
median. Measured:

* ``flowsense --help``, next to ``python -c pass`` and ``python -c "import typer"`` (the floor);
* ``flowsense ingest GOOG_2012-06-21_10.zip`` into a fresh ``FLOWSENSE_HOME`` each run, next to
  ``ingest_file`` called in-process (warm: second and later calls in one process) - the issue's 0.32 s;
* with ``--baseline-rev REV``: the same two commands from a temporary ``git worktree`` of REV (e.g. the
  commit before this work), so before/after are measured in one run on one machine.

Usage: ``python bench/cli.py [--repeat 7] [--warmup 1] [--baseline-rev d33cf28]``. Prints a table and a
final JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOOG10 = REPO.parent / "shared/data/lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
if not GOOG10.exists():  # a worktree under /work/wt/<name>: the data is two levels up
    GOOG10 = REPO.parents[1] / "shared/data/lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"


def timed(cmd: list[str], env: dict[str, str], repeat: int, warmup: int, fresh_home: bool = False,
          cwd: Path = REPO) -> list[float]:
    """Wall seconds of ``repeat`` runs of ``cmd`` in ``cwd`` (``python -c`` imports from there first; each
    run must exit 0)."""
    out = []
    for i in range(warmup + repeat):
        run_env = dict(env)
        home = None
        if fresh_home:
            home = tempfile.mkdtemp(prefix="fs-bench-")
            run_env["FLOWSENSE_HOME"] = home
        t0 = time.perf_counter()
        res = subprocess.run(cmd, env=run_env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             check=False)
        dt = time.perf_counter() - t0
        if home:
            shutil.rmtree(home, ignore_errors=True)
        if res.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.decode()[-2000:]}")
        if i >= warmup:
            out.append(dt)
    return out


IN_PROCESS = """
import sys, tempfile, time, json
from flowsense.data.ingest import ingest_file
from flowsense.data.lake import Lake
path, repeat = sys.argv[1], int(sys.argv[2])
times = []
for i in range(repeat + 1):
    lake = Lake(tempfile.mkdtemp(prefix="fs-bench-"))
    t0 = time.perf_counter()
    ingest_file(path, lake)
    times.append(time.perf_counter() - t0)
print(json.dumps({"first": times[0], "warm": times[1:]}))
"""


def env_for(tree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FLOWSENSE_HOME")}
    env["PYTHONPATH"] = str(tree)
    env["NO_COLOR"] = "1"
    return env


def measure_tree(tree: Path, repeat: int, warmup: int) -> dict[str, list[float]]:
    env = env_for(tree)
    cli = [sys.executable, "-c", "import sys; from flowsense.cli import app; sys.argv[0] = 'flowsense'; app()"]
    res = {
        "help": timed([*cli, "--help"], env, repeat, warmup, cwd=tree),
        "ingest": timed([*cli, "ingest", str(GOOG10)], env, repeat, warmup, fresh_home=True, cwd=tree),
    }
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(GOOG10), str(repeat)], env=env, cwd=tree,
                         capture_output=True, text=True, check=True)
    d = json.loads(out.stdout.strip().splitlines()[-1])
    res["in_process_warm"] = d["warm"]
    res["in_process_first"] = [d["first"]]
    return res


def fmt(xs: list[float]) -> str:
    return f"{min(xs):.3f} / {statistics.median(xs):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--baseline-rev", default=None, help="git revision to measure as 'before' (worktree)")
    args = ap.parse_args()
    if not GOOG10.exists():
        raise SystemExit(f"real data not found: {GOOG10}")
    base_env = env_for(REPO)
    floor = {
        "python -c pass": timed([sys.executable, "-c", "pass"], base_env, args.repeat, args.warmup),
        "python -c 'import typer'": timed([sys.executable, "-c", "import typer"], base_env, args.repeat, args.warmup),
        "python -c 'import polars'": timed([sys.executable, "-c", "import polars"], base_env, args.repeat,
                                           args.warmup),
        "python -c 'import numba'": timed([sys.executable, "-c", "import numba"], base_env, args.repeat,
                                          args.warmup),
    }
    trees = {"this tree": REPO}
    tmp = None
    if args.baseline_rev:
        tmp = Path(tempfile.mkdtemp(prefix="fs-bench-base-"))
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tmp / "tree"),
                        args.baseline_rev], check=True, capture_output=True)
        trees[f"baseline {args.baseline_rev}"] = tmp / "tree"
    results: dict[str, dict[str, list[float]]] = {}
    try:
        for name, tree in trees.items():
            results[name] = measure_tree(tree, args.repeat, args.warmup)
    finally:
        if tmp is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tmp / "tree")],
                           check=False, capture_output=True)
            shutil.rmtree(tmp, ignore_errors=True)

    print(f"seconds, min / median of {args.repeat} (after {args.warmup} warm-up); data {GOOG10.name}")
    print(f"{'':44} " + " | ".join(f"{n:>24}" for n in results))
    rows = [("flowsense --help", "help"), ("flowsense ingest GOOG_10.zip (end to end)", "ingest"),
            ("in-process ingest_file, warm", "in_process_warm"), ("in-process ingest_file, first call", "in_process_first")]
    for label, key in rows:
        print(f"{label:44} " + " | ".join(f"{fmt(r[key]):>24}" for r in results.values()))
    for label, xs in floor.items():
        print(f"{label:44} {fmt(xs):>24}")
    summary: dict[str, object] = {"repeat": args.repeat, "floor": {k: min(v) for k, v in floor.items()}}
    for name, r in results.items():
        summary[name] = {k: min(v) for k, v in r.items()}
        ratio = min(r["ingest"]) / min(r["in_process_warm"])
        events_per_s = 147_916 / min(r["ingest"])
        typer_floor = min(floor["python -c 'import typer'"])
        print(f"{name}: end-to-end / in-process = {ratio:.2f}x; {events_per_s:,.0f} messages/s end to end; "
              f"--help {min(r['help']):.3f} s (floor: import typer {typer_floor:.3f} s)")
        summary[name]["ratio_cli_vs_in_process"] = ratio  # type: ignore[index]
    if len(results) == 2:
        (_, now), (_, before) = results.items()
        summary["speedup_help"] = min(before["help"]) / min(now["help"])
        summary["speedup_ingest"] = min(before["ingest"]) / min(now["ingest"])
        print(f"before -> after: --help {summary['speedup_help']:.2f}x faster, ingest end to end "
              f"{summary['speedup_ingest']:.2f}x faster")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
