"""Backtest benchmarks.

``python bench/backtest.py --section event|bars|all``

* ``event``: the event-driven engine (flowsense.backtest.engine) on the LOBSTER GOOG 2012-06-21 level-10
  day: ``ofi_threshold`` (1 s window) with risk-averse queue, 1 ms feed/order/response latencies, 0.08%
  taker fee; LOBSTER messages per second (best of ``--repeat`` runs, the whole ``run_backtest`` call
  including converting the Polars tables). Then the same day and strategy in hftbacktest 2.4.4, run in
  its own virtual environment (bench/.venvs/hftbacktest, numpy < 2.3) through bench/hftbacktest_ofi.py,
  and a comparison of speed (messages/s of its strategy loop, data conversion excluded) and fills.
* ``bars``: delegated to bench/backtest_bars.py when that file exists.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared/data/lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip"
if not DATA.exists():
    DATA = Path("/work/shared/data/lobster_2012-06-21/LOBSTER_SampleFile_GOOG_2012-06-21_10.zip")
HBT_VENV = ROOT / "bench/.venvs/hftbacktest"
HBT_SCRIPT = ROOT / "bench/hftbacktest_ofi.py"
CACHE = ROOT / "bench/.cache"

PARAMS = {"threshold": 400.0, "size": 100, "window_ns": 1_000_000_000, "max_position": 100,
          "feed_ns": 1_000_000, "order_ns": 1_000_000, "response_ns": 1_000_000, "taker_fee": 0.0008}


def _fill_stats(res) -> dict:
    o = res.orders.filter(pl.col("filled") > 0)
    buys, sells = o.filter(pl.col("side") == 1), o.filter(pl.col("side") == -1)
    return {
        "n_orders": res.orders.height,
        "n_filled_orders": o.height,
        "n_fills": res.fills.height,
        "buy_orders": buys.height,
        "sell_orders": sells.height,
        "buy_qty": int(buys["filled"].sum()),
        "sell_qty": int(sells["filled"].sum()),
        "avg_buy_px": float(buys["avg_price"].mean()) if buys.height else None,
        "avg_sell_px": float(sells["avg_price"].mean()) if sells.height else None,
        "fees": float(res.fills["fee"].sum()),
    }


def run_event(repeat: int = 3) -> dict:
    from flowsense.backtest.engine import BacktestConfig, run_backtest
    from flowsense.backtest.models import ConstantLatency, MakerTakerFees, RiskAverseQueue
    from flowsense.backtest.strategies import OfiThreshold
    from flowsense.data.lobster import read_lobster

    if not DATA.exists():
        print(f"[event] skipped: LOBSTER sample not found at {DATA}")
        return {}
    day = read_lobster(DATA)[0]
    n = day.events.height
    strat = OfiThreshold(threshold=PARAMS["threshold"], size=PARAMS["size"], window_ns=PARAMS["window_ns"],
                         max_position=PARAMS["max_position"])
    cfg = BacktestConfig(
        queue=RiskAverseQueue(),
        latency=ConstantLatency(PARAMS["feed_ns"], PARAMS["order_ns"], PARAMS["response_ns"]),
        fees=MakerTakerFees(0.0, PARAMS["taker_fee"]),
    )
    run_backtest(day.events.head(2000), day.book.head(2000), strat, cfg)  # compile / load cache
    times, res = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = run_backtest(day.events, day.book, strat, cfg)
        times.append(time.perf_counter() - t0)
    best = min(times)
    fs = {"messages": n, "best_s": best, "runs_s": times, "msgs_per_s": n / best, **_fill_stats(res)}
    print(f"[event] FlowSense ofi_threshold: {n:,} LOBSTER messages, best {best:.3f}s of {repeat} "
          f"-> {n / best:,.0f} msgs/s; {fs['n_filled_orders']} filled orders ({fs['buy_orders']} buys, "
          f"{fs['sell_orders']} sells), avg buy {fs['avg_buy_px']}, avg sell {fs['avg_sell_px']}")
    out = {"flowsense": fs}
    hbt = _run_hftbacktest(day, repeat)
    if hbt is None:
        return out
    out["hftbacktest"] = hbt
    hbt_rate = n / hbt["run_s"]
    ratio = fs["msgs_per_s"] / hbt_rate
    out["ratio_flowsense_over_hftbacktest"] = ratio
    print(f"[event] hftbacktest 2.4.4: best {hbt['run_s']:.3f}s -> {hbt_rate:,.0f} msgs/s "
          f"({hbt['n_hbt_events']:,} hbt events; conversion {hbt['convert_s']:.2f}s not counted); "
          f"{hbt['n_filled_orders']} filled orders ({hbt['buy_orders']} buys, {hbt['sell_orders']} sells), "
          f"avg buy {hbt['avg_buy_exec_px']}, avg sell {hbt['avg_sell_exec_px']}")
    print(f"[event] ratio FlowSense / hftbacktest = {ratio:.2f}x")
    print("[event] fills: " + ", ".join(
        f"{k}: {fs[a]} vs {hbt[b]}" for k, a, b in (
            ("filled orders", "n_filled_orders", "n_filled_orders"), ("buys", "buy_orders", "buy_orders"),
            ("sells", "sell_orders", "sell_orders"), ("buy qty", "buy_qty", "buy_qty"),
            ("sell qty", "sell_qty", "sell_qty"))))
    return out


def _run_hftbacktest(day, repeat: int) -> dict | None:
    py = HBT_VENV / "bin/python"
    if not py.exists():
        print(f"[event] hftbacktest comparison skipped: no venv at {HBT_VENV} (create it with "
              f"`python3 -m venv {HBT_VENV} && {HBT_VENV}/bin/pip install hftbacktest==2.4.4 'numpy<2.3' polars`)")
        return None
    from flowsense.backtest.engine import _market_data

    md = _market_data(day.events, day.book, 10_000)
    ts, etype, eside, epx, esz, apx, asz, bpx, bsz = md
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "goog_2012-06-21_10.npz"
    f = np.float64
    np.savez(path, ts=ts, etype=etype, eside=eside, epx=epx / 1e4, esz=esz.astype(f),
             apx=np.where(asz > 0, apx / 1e4, np.nan), asz=asz.astype(f),
             bpx=np.where(bsz > 0, bpx / 1e4, np.nan), bsz=bsz.astype(f))
    params = dict(PARAMS, repeat=repeat)
    try:
        proc = subprocess.run([str(py), str(HBT_SCRIPT), str(path), json.dumps(params)],
                              capture_output=True, text=True, timeout=1200)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"[event] hftbacktest comparison skipped: {exc}")
        return None
    if proc.returncode != 0:
        print(f"[event] hftbacktest comparison skipped: it failed (rc={proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_bars() -> None:
    path = Path(__file__).with_name("backtest_bars.py")
    if not path.exists():
        print("[bars] skipped: bench/backtest_bars.py not present")
        return
    spec = importlib.util.spec_from_file_location("backtest_bars", path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    fn = getattr(mod, "main", None) or getattr(mod, "run", None)
    if fn is None:
        print("[bars] skipped: bench/backtest_bars.py has no main()")
        return
    saved = sys.argv
    sys.argv = [str(path)]  # its own parser must not see our flags
    try:
        fn()
    finally:
        sys.argv = saved


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--section", choices=["bars", "event", "all"], default="all")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the event results here")
    args = ap.parse_args(argv)
    if args.section in ("bars", "all"):
        run_bars()
    if args.section in ("event", "all"):
        out = run_event(args.repeat)
        if args.json:
            args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
