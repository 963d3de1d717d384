"""Fault tolerance with real processes and a real Redis stream: SIGKILL the worker mid-stream several
times at random points, restart it each time; every tick must take effect exactly once.

A slice of the real GOOG day (the first 12,000 events) keeps the test short: each restart replays the
stream up to its watermark to rebuild the strategy/exchange state, so a full day would repeat 150k ticks
per kill."""

from __future__ import annotations

import random
import signal
import subprocess
import time

import pytest

from flowsense.live.state import StateStore
from tests.live.conftest import FLOWSENSE_BIN, GOOG, cli_env, flowsense, last_json

N_TICKS = 12_000


def _run_args(stream: str, group: str, state, redis_url: str) -> list[str]:
    return ["worker", "run", "--source", "redis", "--stream", stream, "--group", group, "--strategy",
            "ofi_threshold", "--param", "threshold=300", "--broker", "paper", "--state", str(state),
            "--redis-url", redis_url, "--exit-when-idle", "20", "--json"]


def _orders(state) -> list[tuple]:
    """Orders without the session prefix of their client order id: (number, side, size, status, filled)."""
    s = StateStore(state, readonly=True)
    return [(o["client_order_id"].rsplit("-", 1)[1], o["side"], o["size"], o["status"], o["filled"], o["ts_submit"])
            for o in s.all_orders()]


def test_sigkill_restarts_exactly_once(goog_home, tmp_path, redis_url, stream_key):
    symbol, date = GOOG
    pub = last_json(flowsense(goog_home, "publish", "--symbol", symbol, "--date", date, "--stream", stream_key,
                              "--limit", str(N_TICKS), "--redis-url", redis_url, "--json").stdout)
    assert pub["published"] == N_TICKS

    # the uninterrupted run: its own consumer group on the same stream, in this process (same code as
    # the CLI: run_worker), to save a process start on a busy machine
    from flowsense.adapters.redis.streams import StreamSource
    from flowsense.live.runner import run_worker
    from flowsense.live.worker import WorkerConfig

    ref_state = tmp_path / "ref"
    src = StreamSource(redis_url, stream_key, "ref", "ref-1")
    ref = run_worker(WorkerConfig(symbol, date, "ofi_threshold", {"threshold": 300.0}, source="redis"), src,
                     StateStore(ref_state), signals=False)
    assert ref["session_done"] and ref["ticks"] == N_TICKS and ref["n_orders"] > 20

    rng = random.Random(20120621)
    state = tmp_path / "fault"
    kills_mid_stream = 0
    for _ in range(3):
        proc = subprocess.Popen([str(FLOWSENSE_BIN), *_run_args(stream_key, "fault", state, redis_url)],
                                env=cli_env(goog_home), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        # wait until it is trading (past recovery), then kill it at a random point
        deadline = time.monotonic() + 60
        start = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                st = StateStore(state, readonly=True).status()
            except Exception:  # not created yet (or being created)
                st = None
            if st is not None:
                if start is None and st["last_tick_seq"] is not None:
                    start = st["last_tick_seq"]
                if start is not None and st["last_tick_seq"] is not None and st["last_tick_seq"] > start:
                    break
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.1))  # an idle machine replays the slice in ~2 s
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            st = StateStore(state, readonly=True).status()
            if st["last_tick_seq"] is not None and st["last_tick_seq"] < N_TICKS - 1:
                kills_mid_stream += 1
        else:
            proc.communicate()
    assert kills_mid_stream >= 2, "the worker finished before it could be killed mid-stream"

    final = last_json(flowsense(goog_home, *_run_args(stream_key, "fault", state, redis_url)).stdout)
    assert final["session_done"]
    assert final["restarts"] >= kills_mid_stream
    for key in ("n_orders", "n_fills", "position"):
        assert final[key] == ref[key], key
    assert final["pnl"] == pytest.approx(ref["pnl"], abs=1e-6)
    assert final["unique_client_order_ids"] == final["n_orders"]
    assert _orders(state) == _orders(ref_state)  # same orders, same ids, same outcome
    fills = StateStore(state, readonly=True).all_fills()
    assert len({f["fill_id"] for f in fills}) == len(fills) == ref["n_fills"]
    # everything acknowledged: nothing left pending in the group
    import redis

    pending = redis.Redis.from_url(redis_url).xpending(stream_key, "fault")
    assert pending["pending"] == 0
