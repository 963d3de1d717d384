"""Bar-path benchmark: SMA(10)/SMA(30) long/flat on ~1M bars in backtrader, vectorbt and FlowSense.

Data
----
The real 1-minute bars in ``../shared/data/backtrader_datas/2006-01-02-volume-min-001.txt`` (30,888
bars of what looks like the Euro Stoxx 50 future, Jan-Feb 2006, integer index points) are *mirror
tiled* to ``--bars`` bars: the file forwards, then backwards in time, then forwards... Each tile starts
at the previous tile's last close, so the series is continuous, stays in the real price range and keeps
integer prices (every framework then sums its SMA windows exactly, so ties compare the same way
everywhere). Time stamps are synthetic consecutive minutes.

Strategy and execution (identical in the three frameworks)
----------------------------------------------------------
At each bar's close: long (all cash, fractional units) when SMA(10) > SMA(30), else flat; the order
executes at the *same bar's close* (decide on the close, hold the next bar: FlowSense
``backtest_positions(delay=1)``, backtrader ``set_coc(True)``, vectorbt's default ``price=close``). No
fees, no slippage (with fees the frameworks size an all-in buy differently, so final values would
differ by construction). Initial cash 100,000. Decisions are flat while the slow SMA is undefined.

Compared: the list of orders (bar index, side) and the final value, on the subset that backtrader runs
(``--subset`` bars; backtrader runs ~15K bars/s, so its rate on the full series is extrapolated
linearly from the subset, which it is: per-bar work is constant). Timed: from in-memory arrays to the
final value and the order list (backtrader: ``cerebro.run()``, incl. its feed preload; vectorbt: two
``MA.run`` + signals + ``Portfolio.from_signals`` + ``final_value`` + order records; FlowSense:
``sma_crossover_positions`` + ``backtest_positions`` + order indices), after a warm-up run (JIT
compiled), best of ``--repeat``.

Peers run in their own virtualenvs under ``bench/.venvs/`` (created on first use); this file is also
the peer entry point (``--peer NAME``), importing only numpy/pandas and the peer library there.

Run: ``.venv/bin/python bench/backtest_bars.py [--bars 1000000] [--subset 100000] [--repeat 3]``.
Prints a table and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DATA_FILE = REPO.parent / "shared" / "data" / "backtrader_datas" / "2006-01-02-volume-min-001.txt"
VENVS = HERE / ".venvs"
CACHE = HERE / ".cache"
FAST, SLOW = 10, 30
CASH = 100_000.0

PEERS: dict[str, list[str]] = {
    "backtrader": ["backtrader", "numpy", "pandas"],
    "vectorbt": ["numpy>=2.4.6", "vectorbt"],
}


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------


def load_bars(n_bars: int) -> dict[str, np.ndarray]:
    """open/high/low/close of ``n_bars`` mirror-tiled real 1-minute bars (see module docstring)."""
    rows = np.loadtxt(DATA_FILE, delimiter=",", skiprows=1, usecols=(2, 3, 4, 5), dtype=np.float64)
    o, h, lo, c = rows.T
    tiles_o, tiles_h, tiles_l, tiles_c = [], [], [], []
    total = 0
    k = 0
    last = None
    while total < n_bars:
        if k % 2 == 0:
            to, th, tl, tc = o, h, lo, c
        else:  # time-reversed bar: open and close swap
            to, th, tl, tc = c[::-1], h[::-1], lo[::-1], o[::-1]
        shift = 0.0 if last is None else last - tc[0]  # start where the previous tile ended
        tiles_o.append(to + shift)
        tiles_h.append(th + shift)
        tiles_l.append(tl + shift)
        tiles_c.append(tc + shift)
        last = float(tiles_c[-1][-1])
        total += tc.size
        k += 1
    out = {"open": np.concatenate(tiles_o)[:n_bars], "high": np.concatenate(tiles_h)[:n_bars],
           "low": np.concatenate(tiles_l)[:n_bars], "close": np.concatenate(tiles_c)[:n_bars]}
    if not np.all(out["close"] > 0):
        raise RuntimeError("tiled prices went non-positive")
    return out


# ------------------------------------------------------------------------------------------------
# peers (run inside their own venvs)
# ------------------------------------------------------------------------------------------------


def _peer_backtrader(bars: dict[str, np.ndarray], repeat: int) -> dict[str, Any]:
    import backtrader as bt
    import pandas as pd

    class FractionalPerc(bt.CommInfoBase):
        """Zero commission, stock-like, fractional sizes (all cash / price)."""

        params = (("stocklike", True), ("commtype", bt.CommInfoBase.COMM_PERC), ("percabs", True),
                  ("commission", 0.0))

        def getsize(self, price: float, cash: float) -> float:
            return self.p.leverage * (cash / price)

    class SmaCross(bt.Strategy):
        params = (("fast", FAST), ("slow", SLOW))

        def __init__(self) -> None:
            self.f = bt.ind.SMA(self.data.close, period=self.p.fast)
            self.s = bt.ind.SMA(self.data.close, period=self.p.slow)
            self.log: list[tuple[int, int]] = []
            self.completed = 0
            self.rejected = 0

        def notify_order(self, order: Any) -> None:
            if order.status == order.Completed:
                self.completed += 1
            elif order.status in (order.Margin, order.Rejected, order.Canceled):
                self.rejected += 1

        def next(self) -> None:
            long = self.f[0] > self.s[0]
            if long and not self.position:
                self.buy(size=self.broker.getcash() / self.data.close[0])
                self.log.append((len(self) - 1, 1))
            elif not long and self.position:
                self.close()
                self.log.append((len(self) - 1, -1))

    n = bars["close"].size
    idx = pd.date_range("2006-01-02 09:01", periods=n, freq="1min")
    df = pd.DataFrame({"open": bars["open"], "high": bars["high"], "low": bars["low"],
                       "close": bars["close"], "volume": 0.0, "openinterest": 0.0}, index=idx)
    best = float("inf")
    result: dict[str, Any] = {}
    for _ in range(repeat):
        cerebro = bt.Cerebro(stdstats=False)
        cerebro.adddata(bt.feeds.PandasData(dataname=df))
        cerebro.addstrategy(SmaCross)
        cerebro.broker.set_cash(CASH)
        cerebro.broker.set_coc(True)
        cerebro.broker.addcommissioninfo(FractionalPerc())
        t0 = time.perf_counter()
        strat = cerebro.run()[0]
        value = cerebro.broker.getvalue()
        dt_s = time.perf_counter() - t0
        if dt_s < best:
            best = dt_s
            result = {"orders": strat.log, "final_value": value, "completed": strat.completed,
                      "rejected": strat.rejected}
    return {"bars": n, "seconds": best, "version": bt.__version__, **result}


def _peer_vectorbt(bars: dict[str, np.ndarray], repeat: int) -> dict[str, Any]:
    import pandas as pd
    import vectorbt as vbt

    def once(close_arr: np.ndarray) -> tuple[Any, float, np.ndarray]:
        close = pd.Series(close_arr)
        fast = vbt.MA.run(close, FAST)
        slow = vbt.MA.run(close, SLOW)
        entries = fast.ma_above(slow)
        exits = ~entries
        pf = vbt.Portfolio.from_signals(close, entries, exits, init_cash=CASH, fees=0.0, size=np.inf)
        value = float(pf.final_value())
        rec = pf.orders.values
        return pf, value, rec

    once(bars["close"][:5000])  # compile
    best = float("inf")
    value = 0.0
    rec: Any = None
    for _ in range(repeat):
        t0 = time.perf_counter()
        _, value, rec = once(bars["close"])
        best = min(best, time.perf_counter() - t0)
    orders = [(int(i), 1 if int(s) == 0 else -1) for i, s in zip(rec["idx"], rec["side"], strict=True)]
    return {"bars": int(bars["close"].size), "seconds": best, "version": vbt.__version__,
            "orders": orders, "final_value": value}


def peer_main(name: str, data: Path, n: int, repeat: int, out: Path) -> None:
    z = np.load(data)
    bars = {k: np.ascontiguousarray(z[k][:n]) for k in ("open", "high", "low", "close")}
    fn = {"backtrader": _peer_backtrader, "vectorbt": _peer_vectorbt}[name]
    res = fn(bars, repeat)
    out.write_text(json.dumps(res))


# ------------------------------------------------------------------------------------------------
# FlowSense (this interpreter)
# ------------------------------------------------------------------------------------------------


def flowsense_run(close: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    from flowsense.backtest.vectorized import backtest_positions, position_changes, sma_crossover_positions

    pos = sma_crossover_positions(close, FAST, SLOW)
    res = backtest_positions(close, pos, initial_equity=CASH)
    decisions, change = position_changes(pos)  # bar of each order (executes at its close) and size
    return res.final_equity, decisions, np.sign(change)


def bench_flowsense(bars: dict[str, np.ndarray], subset: int, repeat: int) -> dict[str, Any]:
    from flowsense.backtest.vectorized import sweep_sma

    close = bars["close"]
    t0 = time.perf_counter()
    flowsense_run(close[:1000])
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(max(repeat, 5)):
        t0 = time.perf_counter()
        flowsense_run(close)
        best = min(best, time.perf_counter() - t0)
    value, dec, sides = flowsense_run(close[:subset])
    full_value, full_dec, full_sides = flowsense_run(close)
    # sweep throughput: a 10 x 10 (fast, slow) grid in one parallel call
    fasts = np.arange(5, 55, 5)
    slows = np.arange(60, 260, 20)
    sweep_sma(close[:2000], fasts, slows)
    sbest = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        frame = sweep_sma(close, fasts, slows)
        sbest = min(sbest, time.perf_counter() - t0)
    return {
        "bars": int(close.size), "seconds": best, "first_call_s": first,
        "subset": {"orders": [(int(i), int(s)) for i, s in zip(dec, sides, strict=True)], "final_value": value},
        "full": {"orders": [(int(i), int(s)) for i, s in zip(full_dec, full_sides, strict=True)],
                 "final_value": full_value},
        "sweep": {"settings": frame.height, "seconds": sbest,
                  "bar_settings_per_s": close.size * frame.height / sbest},
    }


# ------------------------------------------------------------------------------------------------
# orchestration
# ------------------------------------------------------------------------------------------------


def ensure_venv(name: str) -> Path | None:
    """The peer's python, creating ``bench/.venvs/<name>`` on first use; None (with a reason) on failure."""
    py = VENVS / name / "bin" / "python"
    if py.exists():
        check = subprocess.run([str(py), "-c", f"import {name}"], capture_output=True, text=True)
        if check.returncode == 0:
            return py
    try:
        VENVS.mkdir(parents=True, exist_ok=True)
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(VENVS / name)], check=True,
                           capture_output=True, text=True)
        r = subprocess.run([str(py), "-m", "pip", "install", "-q", *PEERS[name]], capture_output=True,
                           text=True, timeout=1800)
        if r.returncode != 0:
            print(f"[skip] {name}: pip install failed: {r.stderr.strip()[-500:]}", file=sys.stderr)
            return None
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"[skip] {name}: could not create its venv: {exc}", file=sys.stderr)
        return None
    return py


def run_peer(name: str, data: Path, n: int, repeat: int) -> dict[str, Any] | None:
    py = ensure_venv(name)
    if py is None:
        return None
    out = CACHE / f"peer_{name}_{n}.json"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    r = subprocess.run([str(py), str(Path(__file__).resolve()), "--peer", name, "--data", str(data),
                        "--bars", str(n), "--repeat", str(repeat), "--out", str(out)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        print(f"[skip] {name}: run failed:\n{r.stderr.strip()[-1500:]}", file=sys.stderr)
        return None
    return json.loads(out.read_text())


def _compare(a: dict[str, Any], b_orders: list, b_value: float) -> dict[str, Any]:
    ao = [tuple(x) for x in a["orders"]]
    bo = [tuple(x) for x in b_orders]
    same = ao == bo
    first_diff = None
    if not same:
        first_diff = next((i for i, (x, y) in enumerate(zip(ao, bo, strict=False)) if x != y), min(len(ao), len(bo)))
    rel = abs(a["final_value"] - b_value) / abs(b_value)
    return {"orders_identical": same, "n_orders": len(ao), "n_orders_flowsense": len(bo),
            "first_order_diff": first_diff, "final_value": a["final_value"], "final_value_rel_diff": rel}


def run_bench(bars: int = 1_000_000, subset: int = 100_000, repeat: int = 3,
              peers: tuple[str, ...] = ("backtrader", "vectorbt")) -> dict[str, Any]:
    """Run the whole comparison; returns the result dict (also what the JSON line holds)."""
    data = load_bars(bars)
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"bars_{bars}.npz"
    np.savez(path, **data)
    fs = bench_flowsense(data, subset, repeat)
    res: dict[str, Any] = {
        "benchmark": "backtest_bars", "strategy": f"SMA({FAST})/SMA({SLOW}) long/flat, all-in at close, no fees",
        "bars": bars, "subset": subset, "data": f"{DATA_FILE.name} mirror-tiled",
        "flowsense": {"bars_per_s": bars / fs["seconds"], "seconds": fs["seconds"],
                      "first_call_s": fs["first_call_s"], "final_value": fs["full"]["final_value"],
                      "n_orders": len(fs["full"]["orders"]), "sweep": fs["sweep"]},
    }
    for name in peers:
        n = subset if name == "backtrader" else bars
        rep = 1 if name == "backtrader" else repeat
        out = run_peer(name, path, n, rep)
        if out is None:
            res[name] = {"skipped": True}
            continue
        entry: dict[str, Any] = {"version": out.get("version"), "bars_run": out["bars"], "seconds": out["seconds"],
                                 "bars_per_s": out["bars"] / out["seconds"]}
        ref = fs["subset"] if n == subset else fs["full"]
        entry["check"] = _compare(out, ref["orders"], ref["final_value"])
        if name == "backtrader":
            entry["rejected"] = out.get("rejected")
            entry["extrapolated_full_s"] = out["seconds"] * bars / out["bars"]
        entry["flowsense_speedup"] = res["flowsense"]["bars_per_s"] / entry["bars_per_s"]
        res[name] = entry
    return res


def print_table(res: dict[str, Any]) -> None:
    print(f"\nBar-path backtest: {res['strategy']}; {res['bars']:,} bars ({res['data']})")
    print(f"{'framework':<12}{'bars run':>12}{'seconds':>12}{'bars/s':>16}{'FlowSense x':>14}  orders/final value")
    fs = res["flowsense"]
    print(f"{'flowsense':<12}{res['bars']:>12,}{fs['seconds']:>12.4f}{fs['bars_per_s']:>16,.0f}{1.0:>14.1f}"
          f"  {fs['n_orders']:,} orders, final {fs['final_value']:,.4f}")
    for name in ("backtrader", "vectorbt"):
        e = res.get(name)
        if not e or e.get("skipped"):
            print(f"{name:<12}{'skipped':>12}")
            continue
        c = e["check"]
        ok = "identical" if c["orders_identical"] else f"DIFFER at #{c['first_order_diff']}"
        print(f"{name:<12}{e['bars_run']:>12,}{e['seconds']:>12.4f}{e['bars_per_s']:>16,.0f}"
              f"{e['flowsense_speedup']:>14.1f}  {c['n_orders']:,} orders {ok}, value rel diff {c['final_value_rel_diff']:.2e}")
    sw = fs["sweep"]
    print(f"FlowSense sweep: {sw['settings']} SMA settings x {res['bars']:,} bars in {sw['seconds']:.3f}s "
          f"= {sw['bar_settings_per_s']:,.0f} bar-settings/s; first call (JIT/cache load) {fs['first_call_s']:.2f}s")


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bars", type=int, default=1_000_000)
    ap.add_argument("--subset", type=int, default=100_000, help="bars backtrader runs (and is compared on)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated peers to skip (backtrader,vectorbt)")
    ap.add_argument("--peer", help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.peer:
        peer_main(a.peer, a.data, a.bars, a.repeat, a.out)
        return None
    sys.path.insert(0, str(REPO))
    peers = tuple(p for p in ("backtrader", "vectorbt") if p not in a.skip.split(","))
    res = run_bench(a.bars, min(a.subset, a.bars), a.repeat, peers)
    print_table(res)
    print(json.dumps(res))
    return res


if __name__ == "__main__":
    main()
