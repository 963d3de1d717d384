"""API load and fan-out benchmark (issue 11): worker-state and order-book endpoints under wrk beside a
running worker, and WebSocket fan-out to N clients at full replay speed without slowing the worker.

Everything is real and runs on this machine: a simulated LOBSTER day ingested into a temporary
FLOWSENSE_HOME, the streaming worker (`flowsense worker run --source replay`, its own process), the API
(`flowsense api`, its own process, one uvicorn worker), wrk as the load generator, N asyncio WebSocket
clients in this process.

1. load: the worker replays the day at ``--speed`` (so it trades for the whole measurement) while wrk hits
   ``/api/v1/health`` (baseline: no key, no data), ``/api/v1/state`` and ``/api/v1/book/SYM`` for
   ``--seconds`` each with ``--connections`` connections; requests/s and latency percentiles from wrk.
2. fan-out: the worker replays the day at full speed twice, with a fresh state store each time: without
   clients, then with ``--clients`` WebSocket clients subscribed to every topic; the worker's own
   tick-to-decision p50/p99 (its ``--json`` summary) for both, events delivered per client, and the
   delivery delay (receive time - the event's publish time).

    python bench/api.py                      # defaults: sim scale 0.1, 10 s per endpoint, 50 clients
    python bench/api.py --fanout-only --rounds 2   # only 2.: 0 / 50 clients alternated twice (< 2 min)

The worker publishes its decision events (``signals``: one per order intent with the prediction, risk
decision and tick-to-decision latency, and a sampled tick with the rolling p50/p99) and the market
``trades`` besides book/pnl/fills, so the fan-out carries every topic the Live page shows.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-c", "from flowsense.cli import app; app()"]
SYMBOL, DATE = "AAA", "2024-01-02"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build_home(home: Path, scale: float) -> None:
    from flowsense.config import Settings
    from flowsense.data.ingest import ingest_file
    from flowsense.data.lake import Lake
    from flowsense.sim import simulate

    s = Settings(home=home)
    for z in simulate([SYMBOL], 1, s.inbox, scale=scale, seed=5):
        ingest_file(z, Lake(s.lake))


def make_key(home: Path) -> str:
    from flowsense_api.keys import KeyStore

    _, token = KeyStore(home / "api" / "keys.db").create("read", name="bench", rate_limit=1e9)
    return token


class Api:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.fh = open(log, "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([*CLI, "api", "--port", str(self.port), "--no-access-log"], env=env,
                                     stdout=self.fh, stderr=subprocess.STDOUT)
        import httpx

        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"the API exited ({self.proc.returncode}); see {log}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise SystemExit("the API did not start")

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.fh.close()


def start_worker(env: dict[str, str], state: Path, speed: float | None) -> subprocess.Popen[bytes]:
    cmd = [*CLI, "worker", "run", "--source", "replay", "--symbol", SYMBOL, "--date", DATE, "--state", str(state),
           "--json"]
    if speed:
        cmd += ["--speed", str(speed)]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def worker_summary(proc: subprocess.Popen[bytes], timeout: float = 900) -> dict[str, Any]:
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"worker failed: {err.decode()[-2000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


_UNIT = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def wrk(url: str, token: str | None, seconds: int, connections: int) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "5s"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {}
    for p, v, u in re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M):
        pct[f"p{p}_ms"] = float(v) * _UNIT[u]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    total = re.search(r"(\d+) requests in", out)
    return {"rps": rps, **pct, "requests": int(total.group(1)) if total else 0,
            "non_2xx": int(non2xx.group(1)) if non2xx else 0, "socket_errors": errors.group(0) if errors else ""}


class Clients:
    """N WebSocket clients (one asyncio loop in a thread), subscribed to every topic of every symbol."""

    def __init__(self, url: str, token: str, n: int) -> None:
        self.url, self.token, self.n = url.replace("http", "ws") + "/ws", token, n
        self.counts = [0] * n
        self.delays: list[float] = []
        self.stop = threading.Event()
        self.ready = threading.Event()
        self.errors: list[str] = []
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.thread.start()
        if not self.ready.wait(120):
            raise SystemExit(f"clients did not connect: {self.errors[:3]}")

    async def _client(self, i: int, connected: asyncio.Event, n_ok: list[int]) -> None:
        from websockets.asyncio.client import connect

        async with connect(self.url, max_size=None, open_timeout=60) as ws:
            await ws.send(json.dumps({"op": "auth", "key": self.token}))
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "topics": ["book", "trades", "signals", "fills", "pnl",
                                                                      "state"]}))
            n_ok[0] += 1
            if n_ok[0] == self.n:
                connected.set()
            while not self.stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                msg = json.loads(raw)
                if msg.get("type") != "events":
                    continue
                self.counts[i] += len(msg["items"])
                if i == 0:  # delivery delay sampled on one client (they share the frame)
                    for e in msg["items"]:
                        with contextlib.suppress(TypeError, ValueError):
                            self.delays.append(now - dt.datetime.fromisoformat(e["ts"]).timestamp())

    async def _main(self) -> None:
        connected = asyncio.Event()
        n_ok = [0]
        tasks = [asyncio.create_task(self._client(i, connected, n_ok)) for i in range(self.n)]
        try:
            await asyncio.wait_for(connected.wait(), 120)
            self.ready.set()
        except TimeoutError:
            self.errors.append("timeout connecting")
        done = await asyncio.gather(*tasks, return_exceptions=True)
        self.errors += [repr(d) for d in done if isinstance(d, BaseException)]

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=0.1, help="simulator intensity of the replayed day")
    ap.add_argument("--seconds", type=int, default=10, help="wrk duration per endpoint")
    ap.add_argument("--connections", type=int, default=16, help="wrk connections")
    ap.add_argument("--clients", type=int, default=50, help="WebSocket clients in the fan-out phase")
    ap.add_argument("--speed", type=float, default=400.0, help="replay speed of the worker during the load phase")
    ap.add_argument("--keep", action="store_true", help="keep the temporary FLOWSENSE_HOME")
    ap.add_argument("--fanout-only", action="store_true", help="skip 1. (wrk load); only the fan-out phase")
    ap.add_argument("--rounds", type=int, default=1, help="fan-out: (0 clients, N clients) pairs, alternated")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="fs-bench-api-"))
    home = tmp / "home"
    t0 = time.perf_counter()
    build_home(home, args.scale)
    token = make_key(home)
    print(f"home {home} built in {time.perf_counter() - t0:.1f} s", flush=True)
    base_env = {**os.environ, "FLOWSENSE_HOME": str(home), "FLOWSENSE_PROFILE": "local", "PYTHONWARNINGS": "ignore",
                "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    results: dict[str, Any] = {"cores": os.cpu_count(), "scale": args.scale,
                               "loadavg_1m_at_start": os.getloadavg()[0]}
    try:
        load = run_load(args, tmp, base_env, token) if not args.fanout_only else {}
        results["load"] = load

        # ---- 2. fan-out at full replay speed --------------------------------------------------
        fan: dict[str, dict[str, Any]] = {}
        ratios = []
        for rnd in range(args.rounds):
            pair = []
            for n in (0, args.clients):
                label = (f"with {n} clients" if n else "without clients") + (f" #{rnd + 1}" if args.rounds > 1 else "")
                row = fanout_phase(base_env, tmp / f"state-{rnd}-{n}", tmp / f"api-{rnd}-{n}.log", token, n)
                fan[label] = row
                pair.append(row)
                print(f"{label:>22}: worker {row['ticks']} ticks, {row['ticks_per_s']:.0f} ticks/s, tick-to-decision "
                      f"p50 {row['tick_to_decision_p50_us']:.0f} us p99 {row['tick_to_decision_p99_us']:.0f} us"
                      + (f"; {row['events_per_client_min']}-{row['events_per_client_max']} of {row['events_in_store']} "
                         f"events per client, delay p50 {row['delay_p50_ms']:.1f} ms p99 {row['delay_p99_ms']:.1f} ms"
                         if n else ""), flush=True)
            ratios.append(pair[1]["tick_to_decision_p99_us"] / pair[0]["tick_to_decision_p99_us"])
            print(f"round {rnd + 1}: worker tick-to-decision p99 without clients "
                  f"{pair[0]['tick_to_decision_p99_us']:.0f} us, with {args.clients} clients "
                  f"{pair[1]['tick_to_decision_p99_us']:.0f} us, ratio {ratios[-1]:.2f}", flush=True)
        results["fanout"] = fan
        results["p99_ratio_with_vs_without"] = ratios if len(ratios) > 1 else ratios[0]
        results["p99_ratio_median"] = statistics.median(ratios)
        for name in ("state", "book") if load else ():
            results[f"{name}_vs_health_rps"] = load[name]["rps"] / load["health (baseline)"]["rps"]
        results["loadavg_1m_at_end"] = os.getloadavg()[0]
        results["wall_s"] = time.perf_counter() - t0
        print(json.dumps(results, indent=1, default=str))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def run_load(args: argparse.Namespace, tmp: Path, base_env: dict[str, str], token: str) -> dict[str, Any]:
    """1. wrk against health / state / book beside a worker replaying at ``--speed``."""
    state = tmp / "state-load"
    env = {**base_env, "FLOWSENSE_STATE_DSN": str(state)}
    api = Api(env, tmp / "api-load.log")
    worker = start_worker(env, state, args.speed)
    import httpx

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # until the worker has published a book and the API serves it
        r = httpx.get(f"{api.url}/api/v1/book/{SYMBOL}", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        s = httpx.get(f"{api.url}/api/v1/state", headers={"Authorization": f"Bearer {token}"}, timeout=10)
        if r.status_code == 200 and r.json().get("source") == "worker" and s.status_code == 200:
            break
        time.sleep(0.5)
    else:
        raise SystemExit("the worker's book never reached the API")
    load: dict[str, Any] = {}
    for name, path, key in (("health (baseline)", "/api/v1/health", None), ("state", "/api/v1/state", token),
                            ("book", f"/api/v1/book/{SYMBOL}?levels=10", token)):
        load[name] = wrk(api.url + path, key, args.seconds, args.connections)
        print(f"{name:>18}: {load[name]['rps']:8.0f} req/s  p50 {load[name].get('p50_ms', 0):6.2f} ms  "
              f"p99 {load[name].get('p99_ms', 0):6.2f} ms  non-2xx {load[name]['non_2xx']}", flush=True)
    still_running = worker.poll() is None
    worker.send_signal(signal.SIGTERM)
    with contextlib.suppress(SystemExit):
        worker_summary(worker, 120)
    api.stop()
    load["worker_running_through_load"] = still_running
    return load


def fanout_phase(base_env: dict[str, str], state: Path, log: Path, token: str, n: int) -> dict[str, Any]:
    """One full-speed replay by a fresh worker (own state store) with an API and ``n`` WebSocket clients."""
    env = {**base_env, "FLOWSENSE_STATE_DSN": str(state)}
    api = Api(env, log)
    clients = Clients(api.url, token, n) if n else None
    w0 = time.perf_counter()
    summary = worker_summary(start_worker(env, state, None))
    wall = time.perf_counter() - w0
    time.sleep(1.0)  # let the hub deliver the tail
    row = {k: summary.get(k) for k in ("ticks", "ticks_per_s", "tick_to_decision_p50_us",
                                       "tick_to_decision_p99_us", "n_orders", "n_fills", "pnl", "decision_events")}
    row["wall_s"] = wall
    from collections import Counter

    from flowsense.live.state import StateStore

    st = StateStore(state, readonly=True)
    events = st.events_since(0, limit=10_000_000)[0]
    row["events_by_topic"] = dict(Counter(e["topic"] for e in events))
    if clients is not None:
        clients.close()
        row.update(events_in_store=len(events), events_per_client_min=min(clients.counts),
                   events_per_client_max=max(clients.counts),
                   delivered_events_per_s=sum(clients.counts) / wall,
                   delay_p50_ms=1e3 * statistics.median(clients.delays) if clients.delays else None,
                   delay_p99_ms=1e3 * sorted(clients.delays)[int(0.99 * (len(clients.delays) - 1))]
                   if clients.delays else None, client_errors=clients.errors[:3])
    api.stop()
    return row


if __name__ == "__main__":
    main()
