"""Scale-out and scale-with-data of the pipeline, on this machine.

(a) ``--section workers``: the same backfill with 1 and then 2 Celery workers (production profile: Dagster
    on PostgreSQL, the daemon's run queue, RabbitMQ, ``flowsense_dagster.stack.ephemeral``). The inbox
    sensor requests one ``all_assets_job`` run per simulated symbol-day; the time measured is from the
    first run's start to the last run's end (run records), so the sensor's polling interval is not
    counted. Prints the speed-up (goal >= 1.6x on 2 cores).
(b) ``--section days``: the pipeline's cost per event as the number of days grows (1, 2, 5, 10, 20 days of
    one simulated symbol): ingest -> features -> event-driven backtest per day, in-process, the work each
    partition's steps do. Cost per event should stay flat (total cost linear in days).

    python bench/scale.py --section all
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def backfill_seconds(workers: int, symbols: list[str], days: int, scale: float) -> tuple[float, dict]:
    from flowsense.sim import simulate
    from flowsense_dagster.stack import ephemeral, run_stats

    with tempfile.TemporaryDirectory(prefix="fs-scale-") as tmp:
        home = Path(tmp)
        simulate(symbols, days, home / "inbox", seed=5, scale=scale)
        n = len(symbols) * days
        with ephemeral(home, workers=workers, daemon=True) as stack:
            import dagster as dg

            deadline = time.monotonic() + 3600
            runs: list = []
            while time.monotonic() < deadline:
                runs = list(stack.instance.get_runs(filters=dg.RunsFilter(job_name="all_assets_job")))
                done = [r for r in runs if r.status.value in ("SUCCESS", "FAILURE", "CANCELED")]
                if len({r.tags.get("dagster/partition") for r in done if r.status.value == "SUCCESS"}) >= n:
                    break
                time.sleep(2.0)
            records = [stack.instance.get_run_record_by_id(r.run_id) for r in runs]
            ok = [r for r in records if r.dagster_run.status.value == "SUCCESS"]
            start = min(r.start_time for r in ok)
            end = max(r.end_time for r in ok)
            stats = run_stats(stack.instance, [r.dagster_run.run_id for r in ok])
            stats["runs"] = len(runs)
            stats["failed"] = len(runs) - len(ok)
            return end - start, stats


def section_workers(args: argparse.Namespace) -> None:
    symbols = [f"S{i}" for i in range(args.symbols)]
    print(f"backfill: {len(symbols)} symbols x {args.days} days, scale {args.scale}, all_assets_job")
    t1, s1 = backfill_seconds(1, symbols, args.days, args.scale)
    print(f"  1 worker : {t1:7.1f} s  ({s1['steps']} steps, workers {s1['workers']}, failed runs {s1['failed']})")
    t2, s2 = backfill_seconds(2, symbols, args.days, args.scale)
    print(f"  2 workers: {t2:7.1f} s  ({s2['steps']} steps, workers {s2['workers']}, failed runs {s2['failed']})")
    print(f"  speed-up : {t1 / t2:.2f}x (goal >= 1.6x)")


def section_days(args: argparse.Namespace) -> None:
    from flowsense.backtest.engine import BacktestConfig
    from flowsense.backtest.runner import run_partition
    from flowsense.data.ingest import ingest_file
    from flowsense.data.lake import Lake
    from flowsense.features.pipeline import compute_partition
    from flowsense.sim import simulate

    counts = [int(x) for x in args.day_counts.split(",")]
    with tempfile.TemporaryDirectory(prefix="fs-days-") as tmp:
        root = Path(tmp)
        # the simulator writes NASDAQ trading days only (the backtest refuses a day the calendar has closed)
        files = simulate(["D"], max(counts), root / "raw", seed=3, scale=args.scale)
        # warm-up: compile every Numba kernel once, outside the timings
        warm = Lake(root / "warm")
        (res,) = ingest_file(files[0], warm)
        compute_partition(warm, res.partition)
        run_partition(warm, root / "warm-reports", res.partition.symbol, res.partition.date, "ofi_threshold", {},
                      BacktestConfig())
        print("| days | events | ingest s | features s | backtest s | total s | µs/event |")
        print("|---|---|---|---|---|---|---|")
        for n in counts:
            lake = Lake(root / f"lake{n}")
            t = {"ingest": 0.0, "features": 0.0, "backtest": 0.0}
            events = 0
            for path in files[:n]:
                t0 = time.perf_counter()
                (res,) = ingest_file(path, lake)
                t1 = time.perf_counter()
                compute_partition(lake, res.partition)
                t2 = time.perf_counter()
                run_partition(lake, root / f"reports{n}", res.partition.symbol, res.partition.date,
                              "ofi_threshold", {}, BacktestConfig())
                t3 = time.perf_counter()
                t["ingest"] += t1 - t0
                t["features"] += t2 - t1
                t["backtest"] += t3 - t2
                events += res.report.rows if hasattr(res.report, "rows") else lake.read("events", res.partition).height
            total = sum(t.values())
            print(f"| {n} | {events:,} | {t['ingest']:.2f} | {t['features']:.2f} | {t['backtest']:.2f} | "
                  f"{total:.2f} | {total / events * 1e6:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--section", choices=("workers", "days", "all"), default="all")
    ap.add_argument("--symbols", type=int, default=3)
    ap.add_argument("--days", type=int, default=2)
    ap.add_argument("--scale", type=float, default=0.5, help="simulator event-rate scale (1.0 ~ 146k msgs/day)")
    ap.add_argument("--day-counts", default="1,2,5,10,20")
    args = ap.parse_args()
    print(f"bench/scale.py {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    if args.section in ("workers", "all"):
        section_workers(args)
    if args.section in ("days", "all"):
        section_days(args)


if __name__ == "__main__":
    main()
