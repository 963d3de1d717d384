"""Running a worker: build the pieces from names, recover, loop over the source, shut down cleanly.

Sources share one interface: ``symbol``, ``date``, ``levels``, ``n``, ``finite``; ``replay_upto(id)``
(the entries up to a committed id, for the recovery replay); ``read() -> (ids, records) | None``;
``ack(ids)``; ``close()``; ``id_key(id)`` orders ids. :class:`ReplaySource` (a lake partition, as fast as
possible or at a speed factor), :class:`flowsense.adapters.redis.streams.StreamSource` (Redis Streams,
consumer group) and :class:`flowsense.adapters.ib.source.IBSource` (Interactive Brokers market data).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from flowsense.errors import FlowSenseError
from flowsense.live.ticks import levels_of
from flowsense.live.worker import Worker, WorkerConfig


class ReplaySource:
    """A lake partition replayed in order; message ids are the records' positions."""

    finite = True

    def __init__(self, records: np.ndarray, symbol: str, date: str, *, speed: float | None = None,
                 batch: int = 1000) -> None:
        self.records = records
        self.symbol, self.date = symbol, date
        self.levels = levels_of(records.dtype)
        self.n = int(records.shape[0])
        self.speed = speed
        self.batch = batch
        self._pos = 0
        self._t0: float | None = None

    @staticmethod
    def id_key(entry_id: str) -> tuple[int, int]:
        return int(entry_id), 0

    def _ids(self, a: int, b: int) -> list[str]:
        return [str(k) for k in range(a, b)]  # positions in the partition (a bad tick's seq is no id)

    def replay_upto(self, last_id: str) -> Iterator[tuple[list[str], np.ndarray]]:
        stop = int(last_id) + 1
        for a in range(0, stop, 20_000):
            b = min(a + 20_000, stop)
            yield self._ids(a, b), self.records[a:b]
        self._pos = stop

    def read(self) -> tuple[list[str], np.ndarray] | None:
        if self._pos >= self.n:
            raise StopIteration
        a = self._pos
        b = min(a + self.batch, self.n)
        if self.speed:
            ts = self.records["ts"]
            if self._t0 is None:
                self._t0 = time.perf_counter() - (int(ts[a]) - int(ts[0])) / 1e9 / self.speed
            b = a + 1
            due = self._t0 + (int(ts[a]) - int(ts[0])) / 1e9 / self.speed
            # everything already due goes in one batch
            now = time.perf_counter()
            if due > now:
                time.sleep(min(due - now, 0.5))
                if due > time.perf_counter():
                    return None
            limit = (time.perf_counter() - self._t0) * self.speed * 1e9 + int(ts[0])
            b = max(a + 1, min(int(np.searchsorted(ts, limit, side="right")), a + self.batch))
        self._pos = b
        return self._ids(a, b), self.records[a:b]

    def ack(self, ids: list[str]) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class RunOptions:
    exit_when_idle: float | None = None
    metrics_port: int | None = None
    stop_after_ticks: int | None = None  # tests: stop cleanly after this many ticks


class Runner:
    """Owns the loop. ``stop()`` (or SIGTERM / SIGINT) ends it after the current batch, committed."""

    def __init__(self, worker: Worker, source: Any, options: RunOptions | None = None) -> None:
        self.worker = worker
        self.source = source
        self.options = options or RunOptions()
        self._stop = threading.Event()
        self.recovery: dict[str, Any] | None = None

    def stop(self, *_: Any) -> None:
        self._stop.set()

    def install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def _key(self, entry_id: str) -> tuple[int, int]:
        return self.source.id_key(entry_id)

    def recover(self) -> None:
        w = self.worker
        if not w.resumed:
            return
        w.begin_recovery()
        for _ids, rec in self.source.replay_upto(w.watermark):
            w.process(rec, self.source.n)
        self.recovery = w.end_recovery()

    def run(self) -> dict[str, Any]:
        w, src, opt = self.worker, self.source, self.options
        self.recover()
        wm = self._key(w.watermark) if w.watermark else None
        idle_since = time.monotonic()
        try:
            while not self._stop.is_set() and not w.session_done:
                try:
                    got = src.read()
                except StopIteration:  # a finite source ended
                    w.end_session()
                    break
                if got is None:
                    w.store.set_meta("heartbeat", str(time.time()))
                    if opt.exit_when_idle is not None and time.monotonic() - idle_since > opt.exit_when_idle:
                        break
                    continue
                idle_since = time.monotonic()
                ids, rec = got
                if wm is not None and ids and self._key(ids[0]) <= wm:
                    # redelivered entries the store already has (committed, not yet acknowledged)
                    keep = np.array([self._key(i) > wm for i in ids], dtype=bool)
                    done = [i for i, k in zip(ids, keep, strict=True) if not k]
                    w.redelivered += len(done)
                    src.ack(done)
                    ids = [i for i, k in zip(ids, keep, strict=True) if k]
                    rec = rec[keep]
                    if not ids:
                        continue
                w.process(rec, src.n)
                w.commit(ids[-1])
                src.ack(ids)
                wm = self._key(ids[-1])
                if opt.stop_after_ticks is not None and w.ticks_in >= opt.stop_after_ticks:
                    break
        finally:
            w.shutdown()
            src.close()
        out = w.summary()
        if self.recovery is not None:
            out["recovery"] = self.recovery
        if w.session_done and w.config.lake_root:
            from flowsense.data.lake import Lake
            from flowsense.live.compare import write_session

            out["lake_tables"] = write_session(Lake(w.config.lake_root), out)
        return out


# ------------------------------------------------------------------------------------------- building


def make_strategy(name: str, params: dict[str, Any]) -> Any:
    """A stateful strategy (with ``on_book``) from the trading registry: a built-in name or a
    JSON/YAML strategy config file (then ``params`` override its values)."""
    from flowsense.trading import StrategyConfig, load_strategy_config, strategy_configs

    reg = strategy_configs()
    if name in reg:
        config = reg[name].from_params(params, source=f"--strategy {name}")
    elif name.lower().endswith((".json", ".yaml", ".yml")):
        base = load_strategy_config(name)
        config = type(base).from_params({**base.params(), **params}, source=name)
    else:
        raise FlowSenseError(f"unknown strategy {name!r}; built-in strategies: {', '.join(reg)} "
                             f"(or a .json/.yaml strategy config)")
    assert isinstance(config, StrategyConfig)
    return config.create()


def build_broker(name: str, levels: int, initial_cash: float, **kw: Any) -> Any:
    if name == "paper":
        from flowsense.backtest.engine import BacktestConfig
        from flowsense.live.paper import PaperBroker

        cfg = kw.get("backtest_config") or BacktestConfig(initial_cash=initial_cash)
        return PaperBroker(cfg, levels=levels)
    if name == "ib":
        from flowsense.adapters.ib.broker import IBBroker

        return IBBroker(initial_cash=initial_cash, **{k: v for k, v in kw.items() if k != "backtest_config"})
    raise FlowSenseError(f"unknown broker {name!r}; brokers: paper, ib")


def run_worker(config: WorkerConfig, source: Any, store: Any, *, options: RunOptions | None = None,
               broker: Any = None, strategy: Any = None, model: Any = None, metrics: Any = None,
               signals: bool = True) -> dict[str, Any]:
    """Build and run one worker to the end of its source (or a stop). Returns the summary."""
    strategy = strategy if strategy is not None else make_strategy(config.strategy, config.params)
    broker = broker if broker is not None else build_broker(config.broker, source.levels, config.initial_cash)
    w = Worker(config, store, broker, strategy, source.levels, metrics=metrics, model=model)
    r = Runner(w, source, options)
    if signals and threading.current_thread() is threading.main_thread():
        r.install_signals()
    return r.run()
