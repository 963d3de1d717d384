"""Streaming worker benchmarks (issue: streaming worker). Run from the repo root:

    FLOWSENSE_HOME=<home with GOOG 2012-06-21 level 10 ingested> .venv/bin/python bench/worker.py [--ticks N]

1. tick-to-decision latency, in process: one tick per call through validation, the streaming features
   (TickFeatureEngine), an XGBoost champion called as registry.load_model serves it (the booster compiled to
   an ONNX tree ensemble) and natively (inplace_predict, 1 thread) on every tick,
   the risk manager (Kelly sizing, limits) and the paper broker; p50/p99/p99.9. Baseline in the same
   run: the same pipeline with the model called through a DMatrix + ``Booster.predict`` (the non-native
   path most code uses).
2. sustained ticks/s consumed from Redis Streams with XREADGROUP + XACK (the worker's StreamSource, batches
   of 2000), and the whole worker (paper broker, ofi_threshold) from a stream; baseline: the same
   consumer reading 10 entries per call.
4. publishing cost: the whole worker with its decision (``signals``) and market ``trades`` events on vs off,
   alternated (ABAB) in one run: tick-to-decision p50/p99, wall and CPU time per tick, and their ratios.
3. restart-to-trading after SIGKILL: a worker process killed mid-day on a stream, restarted; seconds
   until it commits past its old watermark (process start + imports + recovery replay + reconciliation),
   and the recovery replay alone.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SYMBOL, DATE = "GOOG", "2012-06-21"


class _Handle:
    def __init__(self, predictor, version="1"):
        self._cur = (predictor, version)

    def swap_if_ready(self):
        return None

    def current(self):
        return self._cur

    def load_version(self, v):
        return self._cur[0]


class ModelEveryTick:
    """P(up) from the champion on every tick's features -> a Kelly-sized Signal when it changes side."""

    def __init__(self, names):
        self.names = names
        self.pred = None
        self.idx = None
        self.last = 0

    def set_model(self, predictor, version):
        self.pred = predictor

    def on_book(self, view):
        from flowsense.live.risk import Signal

        if self.idx is None:
            self.idx = np.array([view.feature_names.index(n) for n in self.names])
        p = float(self.pred.predict_proba(view.features[self.idx])[0, 1])
        side = 1 if p > 0.55 else (-1 if p < 0.45 else 0)
        if side != self.last:
            self.last = side
            return [Signal(prob_up=p, payoff=1.0)]
        return []


class DMatrixPredictor:
    def __init__(self, booster, names):
        self.booster, self.feature_names = booster, names

    def predict_proba(self, X):
        import xgboost as xgb

        p = self.booster.predict(xgb.DMatrix(np.asarray(X, dtype=np.float32).reshape(1, -1),
                                             feature_names=self.feature_names))
        return np.column_stack([1 - p, p])


def bench_latency(rec, n: int) -> dict:
    import xgboost as xgb

    from flowsense.features.streaming import TickFeatureEngine
    from flowsense.live.paper import PaperBroker
    from flowsense.live.state import StateStore
    from flowsense.live.worker import Worker, WorkerConfig
    from flowsense.models.registry import BoosterPredictor

    names = ["spread", "microprice", "micro_dev", "ofi_l1", "ofi_int", "depth_imb_1", "depth_imb_3", "depth_imb_5",
             "bid_sz_1", "ask_sz_1", "signed_volume"]
    cols = TickFeatureEngine(10).columns
    idx = [cols.index(c) for c in names]
    # a small real champion: 100 trees of depth 4 on the day's first 20k ticks' features, 100-event label
    eng = TickFeatureEngine(10)
    from flowsense.data.schemas import EVENT_TYPES
    from flowsense.features import kernels as K
    from flowsense.features.tick import EVENT_CODES

    fcode = np.array([EVENT_CODES.get(t, K.ET_OTHER) for t in EVENT_TYPES], np.int8)
    m = min(20_000, rec.shape[0] - 200)
    X = np.empty((m, len(names)))
    for k in range(m):
        r = rec[k]
        X[k] = eng.update(int(r["ts"]), int(fcode[r["ev"]]), float(r["size"]), float(r["price"]), float(r["agg"]),
                          np.ascontiguousarray(r["book"]))[idx]
    mid = 0.5 * (rec["book"][:, 0] + rec["book"][:, 2])
    y = (mid[100:m + 100] > mid[:m]).astype(float)
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 4, "eta": 0.1, "nthread": 1},
                        xgb.DMatrix(X, label=y, feature_names=names), 100)

    def run(predictor) -> np.ndarray:
        from flowsense.live.worker import STATE_CODES  # noqa: F401  (import cost outside the loop)

        d = tempfile.mkdtemp()
        w = Worker(WorkerConfig(SYMBOL, DATE, "model_every_tick"), StateStore(d), PaperBroker(levels=10),
                   ModelEveryTick(names), 10, model=_Handle(predictor))
        for k in range(n):
            w.process(rec[k:k + 1])
            if k % 1000 == 999:
                w.commit(str(k))  # commits as a stream consumer would (per batch), outside the timed step
        return np.asarray(w.latencies[200:]) * 1e6, w

    from flowsense.models.registry import compile_booster

    compiled = compile_booster(booster, names, [-1, 1])  # what registry.load_model returns for a champion
    onnx = run(compiled)[0] if compiled is not None else None
    native, w = run(BoosterPredictor(booster, names, [-1, 1]))
    base, _ = run(DMatrixPredictor(booster, names))

    def q(a):
        return {"p50_us": float(np.percentile(a, 50)), "p99_us": float(np.percentile(a, 99)),
                "p999_us": float(np.percentile(a, 99.9)), "max_us": float(a.max()), "n": int(a.size)}

    out = {"onnx_tree_ensemble": q(onnx) if onnx is not None else None,
           "native": q(native), "baseline_dmatrix": q(base), "orders": w.orders_sent,
           "ratio_p99": float(np.percentile(base, 99) / np.percentile(native, 99)),
           "ratio_p50": float(np.percentile(base, 50) / np.percentile(native, 50))}
    return out


def bench_publish(rec, n: int, rounds: int) -> dict:
    """What the decision / trades events cost the worker: the same ticks (one per call, a commit every 100
    as a stream consumer's batches) through the whole worker (ofi_threshold, risk, paper broker, SQLite
    store) with ``publish_decisions`` on and off, alternated ``rounds`` times (ABAB: drift of a shared
    machine hits both); tick-to-decision p50/p99 and wall time per tick (commits, where the sampled
    events are built and written, included)."""
    from flowsense.live.paper import PaperBroker
    from flowsense.live.runner import make_strategy
    from flowsense.live.state import StateStore
    from flowsense.live.worker import Worker, WorkerConfig

    def run(on: bool) -> dict:
        w = Worker(WorkerConfig(SYMBOL, DATE, "ofi_threshold", publish_decisions=on),
                   StateStore(tempfile.mkdtemp()), PaperBroker(levels=10), make_strategy("ofi_threshold", {}), 10)
        t, c = time.perf_counter(), time.process_time()
        for k in range(n):
            w.process(rec[k:k + 1])
            if k % 100 == 99:
                w.commit(str(k))
        w.commit(str(n - 1))
        wall, cpu = time.perf_counter() - t, time.process_time() - c
        lat = np.asarray(w.latencies[200:]) * 1e6
        ev = w.store.events_since(0, limit=10**7)[0]
        return {"p50_us": float(np.percentile(lat, 50)), "p99_us": float(np.percentile(lat, 99)),
                "wall_us_per_tick": wall / n * 1e6, "cpu_us_per_tick": cpu / n * 1e6, "events": len(ev), "orders": w.orders_sent,
                "signals_events": sum(e["topic"] == "signals" for e in ev),
                "trades_events": sum(e["topic"] == "trades" for e in ev)}

    run(True)  # warm-up (numba, imports, page cache)
    got: dict[str, list[dict]] = {"on": [], "off": []}
    for _ in range(rounds):
        for label in ("on", "off"):
            got[label].append(run(label == "on"))

    def med(label: str, key: str) -> float:
        return float(np.median([r[key] for r in got[label]]))

    out = {label: {k: med(label, k) for k in got[label][0]} for label in got}
    out["ticks"], out["rounds"] = n, rounds
    out["runs_wall_us_per_tick"] = {label: [round(r["wall_us_per_tick"], 1) for r in got[label]] for label in got}
    out["runs_cpu_us_per_tick"] = {label: [round(r["cpu_us_per_tick"], 1) for r in got[label]] for label in got}
    out["runs_p99_us"] = {label: [round(r["p99_us"], 1) for r in got[label]] for label in got}
    for k in ("p50_us", "p99_us", "wall_us_per_tick", "cpu_us_per_tick"):
        out[f"ratio_{k}"] = out["on"][k] / out["off"][k]
    return out


def bench_redis(rec, url: str) -> dict:
    import redis

    from flowsense.adapters.redis.streams import StreamSource, publish
    from flowsense.live.runner import run_worker
    from flowsense.live.state import StateStore
    from flowsense.live.worker import WorkerConfig

    c = redis.Redis.from_url(url)
    key = f"fs-bench:{uuid.uuid4().hex[:8]}"
    try:
        t0 = time.perf_counter()
        publish(c, key, SYMBOL, DATE, rec)
        pub_s = time.perf_counter() - t0

        def consume(group: str, count: int) -> float:
            src = StreamSource(url, key, group, "c1", count=count, block_ms=50)
            n = 0
            t = time.perf_counter()
            while n < rec.shape[0]:
                got = src.read()
                if got is None:
                    break
                ids, _rec = got
                src.ack(ids)
                n += len(ids)
            return n / (time.perf_counter() - t)

        ours = consume("bench-2000", 2000)
        base = consume("bench-10", 10)
        t = time.perf_counter()
        out = run_worker(WorkerConfig(SYMBOL, DATE, "ofi_threshold", source="redis"),
                         StreamSource(url, key, "bench-worker", "w1"), StateStore(tempfile.mkdtemp()), signals=False)
        worker_tps = out["ticks"] / (time.perf_counter() - t)
        return {"published": int(rec.shape[0]), "publish_ticks_per_s": rec.shape[0] / pub_s,
                "consume_ack_ticks_per_s": ours, "baseline_count10_ticks_per_s": base, "ratio": ours / base,
                "worker_end_to_end_ticks_per_s": worker_tps, "worker_orders": out["n_orders"]}
    finally:
        c.delete(key, f"{key}:meta")


def bench_restart(home: str, url: str, n: int) -> dict:
    import redis

    from flowsense.live.state import StateStore

    key = f"fs-bench:{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, FLOWSENSE_HOME=home, PYTHONPATH=str(REPO))
    exe = str(Path(sys.executable).parent / "flowsense")
    subprocess.run([exe, "publish", "--symbol", SYMBOL, "--date", DATE, "--stream", key, "--limit", str(n),
                    "--redis-url", url], env=env, check=True, capture_output=True)
    state = tempfile.mkdtemp()
    args = [exe, "worker", "run", "--source", "redis", "--stream", key, "--group", "g", "--strategy",
            "ofi_threshold", "--state", state, "--redis-url", url, "--exit-when-idle", "5", "--json"]
    try:
        p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while True:
            time.sleep(0.05)
            try:
                st = StateStore(state, readonly=True).status()
            except Exception:
                continue
            if (st["last_tick_seq"] or 0) > n // 2:
                break
        p.send_signal(signal.SIGKILL)
        p.wait()
        wm = StateStore(state, readonly=True).status()["last_tick_seq"]
        t0 = time.perf_counter()
        p = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        while True:
            time.sleep(0.01)
            st = StateStore(state, readonly=True).status()
            if (st["last_tick_seq"] or 0) > wm:
                break
        to_trading = time.perf_counter() - t0
        out, _ = p.communicate(timeout=600)
        summary = json.loads(out.decode().strip().splitlines()[-1])
        import_s = subprocess.run([sys.executable, "-c", "import time; t=time.perf_counter(); import "
                                   "flowsense.live.runner, flowsense.adapters.redis.streams, flowsense.live.paper; "
                                   "print(time.perf_counter()-t)"], env=env, capture_output=True, text=True)
        return {"killed_at_tick": int(wm), "restart_to_trading_s": to_trading,
                "recovery_replay_s": summary["recovery"]["recovery_s"],
                "ticks_replayed": summary["recovery"]["ticks_replayed"],
                "import_s": float(import_s.stdout.strip() or "nan"),
                "orders_after": summary["n_orders"], "unique_ids": summary["unique_client_order_ids"]}
    finally:
        redis.Redis.from_url(url).delete(key, f"{key}:meta")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ticks", type=int, default=50_000, help="ticks for the latency run")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    ap.add_argument("--skip", default="", help="comma list of latency,publish,redis,restart to skip")
    ap.add_argument("--publish-ticks", type=int, default=20_000, help="ticks per run of the publish section")
    ap.add_argument("--publish-rounds", type=int, default=3, help="on/off pairs in the publish section")
    a = ap.parse_args()
    from flowsense.config import Settings
    from flowsense.live.ticks import lake_records

    s = Settings.from_env()
    rec = lake_records(str(s.lake), SYMBOL, DATE)
    skip = set(a.skip.split(","))
    res: dict = {"machine": f"{os.cpu_count()} cpus, load {os.getloadavg()[0]:.1f}"}
    if "latency" not in skip:
        res["latency"] = bench_latency(rec, min(a.ticks, rec.shape[0]))
        print(json.dumps({"latency": res["latency"]}), flush=True)
    if "publish" not in skip:
        res["publish"] = bench_publish(rec, min(a.publish_ticks, rec.shape[0]), a.publish_rounds)
        print(json.dumps({"publish": res["publish"]}), flush=True)
    if "redis" not in skip:
        res["redis"] = bench_redis(rec, a.redis_url)
        print(json.dumps({"redis": res["redis"]}), flush=True)
    if "restart" not in skip:
        res["restart"] = bench_restart(str(s.home), a.redis_url, rec.shape[0])
        print(json.dumps({"restart": res["restart"]}), flush=True)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
