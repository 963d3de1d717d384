"""Prometheus metrics of the live worker (``--metrics-port``), on their own registry.

Names (all labelled with ``symbol``): ``flowsense_ticks_total``, ``flowsense_skipped_ticks_total{reason}``,
``flowsense_tick_to_decision_seconds`` (histogram, buckets from 50 us: the default ones start at 5 ms),
``flowsense_orders_total{side}``, ``flowsense_fills_total``, ``flowsense_rejects_total{reason}``,
``flowsense_position``, ``flowsense_pnl``, ``flowsense_drawdown`` (fraction of the equity peak),
``flowsense_trading_state`` (0 ACTIVE, 1 REDUCING, 2 HALTED), ``flowsense_model_version`` (the champion
version in effect, as a number; also ``flowsense_model_info{version}``),
``flowsense_worker_heartbeat_timestamp_seconds``, and ``flowsense_model_accuracy`` (rolling accuracy of
the model's direction calls, set by a model strategy through :meth:`WorkerMetrics.set_accuracy`).
Ticks per second is ``rate(flowsense_ticks_total[1m])``.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

LATENCY_BUCKETS = (50e-6, 100e-6, 200e-6, 500e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 50e-3, 100e-3, 250e-3,
                   500e-3, 1.0, 2.5)

REJECT_REASONS = ("halted", "reducing", "max_order_size", "max_position", "max_notional", "no_book", "price_collar",
                  "throttle", "broker")


class _Bound:
    """A metric with the symbol label applied, keeping ``.labels(...)`` for the extra labels."""

    def __init__(self, metric: Any, symbol: str, extra: bool) -> None:
        self._m = metric
        self._symbol = symbol
        self._child = None if extra else metric.labels(symbol=symbol)

    def labels(self, **kw: str) -> Any:
        return self._m.labels(symbol=self._symbol, **kw)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._child, name)


class WorkerMetrics:
    def __init__(self, symbol: str, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry()
        s = symbol
        L = ["symbol"]
        self.ticks = _Bound(Counter("flowsense_ticks", "Ticks accepted", L, registry=r), s, False)
        self.skipped = _Bound(Counter("flowsense_skipped_ticks", "Bad ticks counted and skipped", [*L, "reason"],
                                      registry=r), s, True)
        self.latency = _Bound(Histogram("flowsense_tick_to_decision_seconds",
                                        "From receiving a tick to the decision it triggered", L,
                                        buckets=LATENCY_BUCKETS, registry=r), s, False)
        self.orders = _Bound(Counter("flowsense_orders", "Orders sent to the broker", [*L, "side"], registry=r),
                             s, True)
        self.fills = _Bound(Counter("flowsense_fills", "Fills", L, registry=r), s, False)
        self.rejects = _Bound(Counter("flowsense_rejects", "Orders refused by the risk manager or the broker",
                                      [*L, "reason"], registry=r), s, True)
        self.position = _Bound(Gauge("flowsense_position", "Position (units)", L, registry=r), s, False)
        self.pnl = _Bound(Gauge("flowsense_pnl", "Net PnL (equity - initial cash)", L, registry=r), s, False)
        self.drawdown = _Bound(Gauge("flowsense_drawdown", "Drawdown from the equity peak (fraction)", L,
                                     registry=r), s, False)
        self.state = _Bound(Gauge("flowsense_trading_state", "0 ACTIVE, 1 REDUCING, 2 HALTED", L, registry=r), s,
                            False)
        self.model_version = _Bound(Gauge("flowsense_model_version", "Champion model version in effect", L,
                                          registry=r), s, False)
        self.accuracy = _Bound(Gauge("flowsense_model_accuracy", "Rolling accuracy of the model's direction calls",
                                     L, registry=r), s, False)
        self.baseline_accuracy = _Bound(Gauge("flowsense_model_baseline_accuracy",
                                              "Accuracy of the model at promotion (registry)", L, registry=r), s,
                                        False)
        self._info = Info("flowsense_model", "Model in effect", L, registry=r)
        self._hb = _Bound(Gauge("flowsense_worker_heartbeat_timestamp_seconds", "Last commit (unix time)", L,
                                registry=r), s, False)
        self.symbol = symbol
        self._server: Any = None
        # every labelled series exists from the start (at 0), so dashboards and rate() see it
        for reason in ("nan", "crossed", "out_of_order", "duplicate"):
            self.skipped.labels(reason=reason)
        for reason in REJECT_REASONS:
            self.rejects.labels(reason=reason)
        for side in ("buy", "sell"):
            self.orders.labels(side=side)
        self.heartbeat()

    def heartbeat(self) -> None:
        self._hb.set(time.time())

    def set_model_version(self, version: str | None) -> None:
        if version is None:
            return
        with contextlib.suppress(ValueError):
            self.model_version.set(float(version))
        self._info.labels(symbol=self.symbol).info({"version": str(version)})

    def set_accuracy(self, accuracy: float, baseline: float | None = None) -> None:
        self.accuracy.set(accuracy)
        if baseline is not None:
            self.baseline_accuracy.set(baseline)

    def serve(self, port: int = 0, addr: str = "127.0.0.1") -> int:
        """Serve ``/metrics``; ``port=0`` takes a free port. Returns the port."""
        server, _thread = start_http_server(port, addr=addr, registry=self.registry)
        self._server = server
        return int(server.server_address[1])

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
