"""Backtest benchmarks.

``python bench/backtest.py --section event|bars|all``

* ``event``: the event-driven engine (flowsense.backtest.engine, compiled path) on the LOBSTER GOOG
  2012-06-21 level-10 day (147,916 messages): ``ofi_threshold`` (1 s window, threshold 400, size 100,
  max position 100) with the risk-averse queue, 1 ms feed/order/response latencies, 0.08% taker fee, and
  marketable orders filled whole at the touch (``FixedBpsSlippage(0, walk_book=False)``, the fill rule of
  hftbacktest's no-partial-fill exchange). LOBSTER messages per second, best of ``--repeat`` runs, split
  into *prepare* (Polars tables -> arrays), *run* (the simulation loop) and *frames* (result tables).
  Then the same day and strategy in hftbacktest 2.4.4, run in its own virtual environment
  (bench/.venvs/hftbacktest, numpy < 2.3) through bench/hftbacktest_ofi.py (see its docstring for the
  data conversion and the port): messages/s of its backtest loop (its data conversion is reported
  separately, not counted), the speed ratio, and an order-by-order comparison of the fills.
* ``bars``: delegated to bench/backtest_bars.py when that file exists.

The last line printed is one JSON object with every number.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
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
TICK = 100  # GOOG tick ($0.01) in LOBSTER price units (1/10_000 $)


def _fill_stats(res) -> dict:
    o = res.orders.filter(pl.col("filled") > 0)
    buys, sells = o.filter(pl.col("side") == 1), o.filter(pl.col("side") == -1)

    def vwap(x):
        return float((x["avg_price"] * x["filled"]).sum() / x["filled"].sum()) if x.height else None

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
        "vwap_buy": vwap(buys),
        "vwap_sell": vwap(sells),
        "fees": float(res.fills["fee"].sum()),
    }


def _compare_orders(res, hbt_orders: list) -> dict:
    """Order by order, keyed by the message each order reacts to (exchange ts) and side: FlowSense's
    (size, filled, price in cents) vs hftbacktest's."""
    o = res.orders
    feed = PARAMS["feed_ns"]
    fs = {(int(t) - feed, int(sd)): (int(sz), int(f), None if p is None else round(p * 10_000 / TICK))
          for t, sd, sz, f, p in zip(o["ts_submit"].dt.epoch("ns"), o["side"], o["size"], o["filled"],
                                     o["avg_price"], strict=True)}
    hb = {(t, sd): (q, eq, px if eq > 0 else None) for t, sd, q, eq, px, _st in hbt_orders}
    both = fs.keys() & hb.keys()
    same = sum(1 for k in both if fs[k] == hb[k])
    first_diff = min((k for k in (fs.keys() ^ hb.keys()) | {k for k in both if fs[k] != hb[k]}), default=None)
    return {"flowsense_orders": len(fs), "hftbacktest_orders": len(hb), "same_time_and_side": len(both),
            "identical": same, "only_flowsense": len(fs.keys() - hb.keys()),
            "only_hftbacktest": len(hb.keys() - fs.keys()),
            "first_difference_ns": None if first_diff is None else first_diff[0]}


def run_event(repeat: int = 3) -> dict:
    from flowsense.backtest.engine import BacktestConfig, _market_data, run_backtest
    from flowsense.backtest.models import ConstantLatency, FixedBpsSlippage, MakerTakerFees, RiskAverseQueue
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
        slippage=FixedBpsSlippage(0.0, walk_book=False),
    )
    run_backtest(day.events.head(2000), day.book.head(2000), strat, cfg)  # compile / load the cache
    runs, res = [], None
    for _ in range(repeat):
        res = run_backtest(day.events, day.book, strat, cfg)
        runs.append({"total_s": res.wall_s, **{k: res.stats[k] for k in ("prepare_s", "run_s", "frames_s")}})
    best = {k: min(r[k] for r in runs) for k in runs[0]}  # each phase: its best run
    fs = {"messages": n, **best, "runs": runs, "msgs_per_s_total": n / best["total_s"],
          "msgs_per_s_run": n / best["run_s"], **_fill_stats(res)}
    out: dict = {"flowsense": fs}

    md = _market_data(day.events, day.book, 10_000)
    hbt = _run_hftbacktest(md, repeat)
    rows = [("FlowSense (numba)", f"{best['prepare_s'] * 1e3:8.1f}", f"{best['run_s'] * 1e3:8.1f}",
             f"{best['frames_s'] * 1e3:8.1f}", f"{best['total_s'] * 1e3:8.1f}", f"{n / best['run_s']:>12,.0f}",
             f"{n / best['total_s']:>12,.0f}")]
    if hbt is not None:
        out["hftbacktest"] = hbt
        hbt_rate = n / hbt["run_s"]
        out["ratio_run"] = fs["msgs_per_s_run"] / hbt_rate
        out["ratio_total"] = fs["msgs_per_s_total"] / hbt_rate
        out["order_comparison"] = _compare_orders(res, hbt.pop("orders"))
        rows.append(("hftbacktest 2.4.4", f"{hbt['convert_s'] * 1e3:8.1f}", f"{hbt['run_s'] * 1e3:8.1f}",
                     f"{'-':>8}", f"{hbt['run_s'] * 1e3:8.1f}", f"{hbt_rate:>12,.0f}", f"{hbt_rate:>12,.0f}"))
    print(f"[event] ofi_threshold on GOOG 2012-06-21 level 10, {n:,} LOBSTER messages, best of {repeat} "
          "(ms; hftbacktest's prepare = its data conversion, not counted in its msgs/s)")
    print(f"  {'engine':20s} {'prepare':>8} {'run':>8} {'frames':>8} {'total':>8} {'msgs/s run':>12} "
          f"{'msgs/s total':>12}")
    for r in rows:
        print(f"  {r[0]:20s} " + " ".join(r[1:]))
    if hbt is None:
        print("JSON " + json.dumps(out))
        return out
    print(f"  ratio FlowSense / hftbacktest: {out['ratio_run']:.2f}x (simulation loops), "
          f"{out['ratio_total']:.2f}x (FlowSense end to end incl. prepare + frames)")
    print(f"  {'fills':20s} {'FlowSense':>14} {'hftbacktest':>14}")
    for label, a, b in (("orders sent", "n_orders", "n_orders"), ("filled orders", "n_filled_orders", "n_filled_orders"),
                        ("buys", "buy_orders", "buy_orders"), ("sells", "sell_orders", "sell_orders"),
                        ("buy qty", "buy_qty", "buy_qty"), ("sell qty", "sell_qty", "sell_qty"),
                        ("avg buy px", "avg_buy_px", "avg_buy_px"), ("avg sell px", "avg_sell_px", "avg_sell_px"),
                        ("vwap buy", "vwap_buy", "vwap_buy"), ("vwap sell", "vwap_sell", "vwap_sell"),
                        ("fees", "fees", "fees")):
        x, y = fs[a], hbt[b]
        fmt = (lambda v: f"{v:>14,.4f}") if isinstance(x, float) else (lambda v: f"{v:>14,}")
        print(f"  {label:20s} {fmt(x)} {fmt(y)}")
    c = out["order_comparison"]
    print(f"  order by order: {c['identical']} of {c['flowsense_orders']} FlowSense / {c['hftbacktest_orders']} "
          f"hftbacktest orders identical (send time, side, size, filled, price); "
          f"{c['only_flowsense']} only in FlowSense, {c['only_hftbacktest']} only in hftbacktest")
    print("JSON " + json.dumps(out))
    return out


def _run_hftbacktest(md: tuple, repeat: int) -> dict | None:
    py = HBT_VENV / "bin/python"
    if not py.exists():
        print(f"[event] hftbacktest comparison skipped: no venv at {HBT_VENV} (create it with "
              f"`python3 -m venv {HBT_VENV} && {HBT_VENV}/bin/pip install hftbacktest==2.4.4 'numpy<2.3'`)")
        return None
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / "goog_2012-06-21_10.npz"
    np.savez(path, **dict(zip(("ts", "etype", "eside", "epx", "esz", "apx", "asz", "bpx", "bsz"), md, strict=True)))
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
