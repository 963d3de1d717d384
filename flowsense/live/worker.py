"""The worker loop: ticks -> the backtest's features and strategy -> risk manager -> broker, durably.

Per tick (in order): validate (NaN, crossed, out of order, duplicate -> counted and skipped) -> append to
the session columns and the broker's market data -> when the tick's decision is due (see
:mod:`flowsense.live.paper` for the simulated feed latency), bring the broker to that moment, deliver
order reports to the strategy, update the streaming features with the same step functions as the batch
tables, swap in a newly promoted model if one is ready, call the strategy's ``on_book`` with a
:class:`~flowsense.live.view.LiveBookView`, pass every request through the
:class:`~flowsense.live.risk.RiskManager`, **write the order to the state store and commit**, and only
then hand it to the broker.

Events for the API (``StateStore.publish``, with ``publish_decisions``): each order intent is a ``signals``
event of kind ``order`` (tick ``ts``/``seq``; ``p_up``, the strategy's ``last_prediction`` or the
:class:`~flowsense.live.risk.Signal`'s ``prob_up``, null for a rule strategy; ``model`` = ``name@version`` in
effect; ``side``, ``qty``, ``type``; ``risk`` = ``accepted`` | ``scaled`` (``scale``, ``qty_sent``) |
``rejected`` (``reason``: halted, max_position, ...); ``latency_us`` of that tick), at most
``decision_events_max`` per publish interval. Once per interval (wall time), with the book and PnL: a
``signals`` event of kind ``tick`` (the last tick's prediction, position, trading state, its latency and the
rolling p50/p99 over the last ``latency_window`` ticks) and one ``trades`` event, the newest
``trades_per_publish`` market trades since the last one (rows ``ts, seq, price, size, aggressor_side``).
The tick path only keeps scalars (and the trade records of a batch); the dicts are built when sent.

Durability (exactly once in effect): everything a tick changes is deterministic given the ticks before
it, client order ids are ``<session>-<n>`` in submission order, and the store's primary keys reject a
second use of an id. After each batch the worker commits the batch's effects together with the id of its
last message (the watermark) and only then acknowledges the batch on the stream. A restarted worker
first replays the messages up to the watermark through the same pipeline without acting (rebuilding the
strategy, features, risk and paper-exchange state), checks that what it rebuilt matches the store (each
regenerated client order id must be there, positions must agree) - the reconciliation - and then goes on
with the messages after the watermark.
"""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowsense.errors import FlowSenseError
from flowsense.live.risk import ACTIVE, HALTED, REDUCING, RiskConfig, RiskManager, Signal
from flowsense.live.state import StateError, StateStore
from flowsense.live.view import LiveBookView, SessionColumns
from flowsense.trading.orders import CancelRequest, OrderRequest, OrderStatus

STATE_CODES = {ACTIVE: 0, REDUCING: 1, HALTED: 2}
ORDER_TYPES = {0: "market", 1: "limit", 2: "ioc"}


class ReconciliationError(FlowSenseError):
    """What the worker rebuilt from the stream disagrees with its state store or the broker."""


@dataclass(frozen=True)
class WorkerConfig:
    symbol: str
    date: str
    strategy: str
    params: dict[str, Any] = field(default_factory=dict)
    source: str = "replay"
    broker: str = "paper"
    initial_cash: float = 1_000_000.0
    risk: RiskConfig = field(default_factory=RiskConfig)
    equity_interval_ns: int = 1_000_000_000  # equity samples in the store, exchange time
    publish_interval_s: float = 0.25  # book / pnl / sampled-decision / trades events at most this often (wall time)
    publish_decisions: bool = True  # `signals` per order intent + a sampled tick decision; `trades` (market)
    decision_events_max: int = 50  # order-intent `signals` events per publish interval (the rest are counted)
    trades_per_publish: int = 100  # newest market trades in one `trades` event (the rest are counted)
    latency_window: int = 4096  # ticks in the rolling tick-to-decision p50/p99 of the sampled event
    lake_root: str | None = None  # where the session's live_orders / live_fills go at its end


def _now() -> float:
    return time.perf_counter()


def _num(v: Any) -> float | None:
    """A finite float for an event payload (6 significant decimals), else None."""
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return round(f, 6) if math.isfinite(f) else None


class Worker:
    """One symbol's live session. Feed it with :meth:`process` (one batch of wire records at a time),
    :meth:`commit` after each batch, :meth:`end_session` at the end of a finite source."""

    def __init__(self, config: WorkerConfig, store: StateStore, broker: Any, strategy: Any, levels: int,
                 *, metrics: Any = None, model: Any = None) -> None:
        from flowsense.data.schemas import EVENT_TYPES
        from flowsense.features import kernels as K
        from flowsense.features.streaming import TickFeatureEngine
        from flowsense.features.tick import EVENT_CODES as FEATURE_CODES

        self.config = config
        self.store = store
        self.broker = broker
        self.strategy = strategy
        self.levels = levels
        self.metrics = metrics
        self.model = model
        self.symbol = config.symbol
        self.cols = SessionColumns(levels)
        self.view = LiveBookView(self.cols, -1, broker.known_position, broker.known_status, broker.next_order_id)
        self.features = TickFeatureEngine(levels)
        self.view.feature_names = list(self.features.columns)
        self.view.features = None
        self._fcode = np.array([FEATURE_CODES.get(t, K.ET_OTHER) for t in EVENT_TYPES], dtype=np.int8)
        self.holdback = bool(getattr(broker, "holdback", True))
        self.n = 0  # accepted ticks
        self.next_step = 0
        self.last_seq = -1
        self.last_ts = -(2**62)
        self._recent: deque[int] = deque()
        self._recent_set: set[int] = set()
        self.skipped: Counter[str] = Counter()
        self.redelivered = 0
        self.ticks_in = 0
        self.recovering = False
        self.session_done = False
        self.open_orders: dict[int, list[int]] = {}  # order id -> [side, leaves]
        self._dirty: set[int] = set()
        self._order_rows: dict[int, dict[str, Any]] = {}
        self._known_cids: set[str] = set()
        self._last_equity_bucket = -1
        self._last_publish = 0.0
        self._equity_rows: list[tuple] = []
        self._events: list[tuple[str, dict[str, Any]]] = []
        self.latencies: list[float] = []
        self._t_arrival = 0.0
        self.model_version: str | None = None
        self.model_ref: str | None = None  # "<registered name>@<version>" in effect, None without a model
        # decision events (see _decision_event / _publish_sampled): cheap per-tick scalars, dicts only when sent
        self._publish_decisions = bool(config.publish_decisions)
        self._lat_window: deque[float] = deque(maxlen=max(1, int(config.latency_window)))
        self._last_i = -1
        self._last_lat = math.nan
        self._last_pred: Any = None
        self._tick_decisions: list[dict[str, Any]] = []
        self._decisions_sent = 0  # order-intent events since the last publish
        self._decisions_suppressed = 0
        self._trade_recs: list[np.ndarray] = []
        self._trades_pending = 0
        self.decision_events = 0
        self.decisions_suppressed = 0
        self._et_trade = K.ET_TRADE
        self.orders_sent = 0
        self.refused = 0
        self.fills_seen = 0
        self._overrides: list[tuple[int, str]] = []
        self._poll_every = 2.0
        self._last_poll = _now()
        self.t_start = _now()
        self.restart_to_trading_s: float | None = None
        self._load_session()

    # ----------------------------------------------------------------------------- session

    def _load_session(self) -> None:
        s = self.store
        m = s.metas()
        cfg = self.config
        key = f"{cfg.symbol}|{cfg.date}|{cfg.strategy}|{json.dumps(cfg.params, sort_keys=True)}|{cfg.broker}"
        if m.get("session") and m.get("session_key") not in (None, key) and m.get("session_done") != "1":
            raise StateError(f"{s.location}: holds the unfinished session {m['session']} ({m.get('session_key')}); "
                             f"use another --state folder for {key}")
        if not m.get("session") or (m.get("session_done") == "1" and m.get("session_key") != key):
            session = f"{cfg.symbol}-{cfg.date.replace('-', '')}-{uuid.uuid4().hex[:6]}"
            s.set_metas({"session": session, "session_key": key, "session_done": "0", "symbol": cfg.symbol,
                         "date": cfg.date, "strategy": cfg.strategy, "params": json.dumps(cfg.params),
                         "source": cfg.source, "broker": cfg.broker, "initial_cash": cfg.initial_cash,
                         "last_stream_id": None, "last_tick_index": None, "last_tick_seq": None, "ticks": 0,
                         "restarts": 0, "state_overrides": "[]", "model_swaps": "[]", "model_version": None,
                         "risk": json.dumps(cfg.risk.to_dict())})
            m = s.metas()
            self.resumed = False
        else:
            self.resumed = m.get("last_stream_id") not in (None, "", "None")
            if self.resumed:
                s.set_meta("restarts", str(int(m.get("restarts", "0") or 0) + 1))
        self.session = m["session"]
        if hasattr(self.broker, "session"):
            self.broker.session = self.session
        self.session_done = m.get("session_done") == "1"
        self.watermark = m.get("last_stream_id") if self.resumed else None
        self._overrides = [tuple(x) for x in json.loads(m.get("state_overrides") or "[]")]
        self._swaps = [tuple(x) for x in json.loads(m.get("model_swaps") or "[]")] if self.resumed else []
        self.swaps_applied: list[tuple[int, str]] = []
        state = m.get("trading_state", ACTIVE)
        self.persisted_state = (state, m.get("trading_state_reason") or "")
        # the risk manager starts ACTIVE and is rebuilt by the recovery replay; the persisted state is
        # applied once recovery is done (a halt from a previous run stays until `worker resume`).
        self.risk = RiskManager(cfg.risk, cfg.symbol)
        if not self.resumed:
            self.risk.state, self.risk.reason = self.persisted_state
        self._known_cids = {o["client_order_id"] for o in s.all_orders() if o["client_order_id"].startswith(self.session)}
        s.set_metas({"pid": os.getpid(), "running": "1", "heartbeat": time.time()})

    def begin_recovery(self) -> None:
        self.recovering = True
        self._t_recovery = _now()
        if hasattr(self.broker, "recovering"):
            self.broker.recovering = True

    def end_recovery(self) -> dict[str, Any]:
        """Reconcile what the replay rebuilt with the store; then apply the persisted trading state."""
        self.recovering = False
        rebuilt = self.broker.account()
        m = self.store.metas()
        # what was committed together with the watermark (positions in the store may be ahead of it:
        # they are also written before each order, mid-batch)
        stored = {"position": int(m.get("wm_position") or 0), "orders": int(m.get("wm_orders") or 0),
                  "fills": int(m.get("wm_fills") or 0)}
        got = {"position": rebuilt["position"], "orders": self.broker.n_orders, "fills": self.broker.n_fills}
        report = {"ticks_replayed": self.n, "watermark": self.watermark, "stored": stored, "rebuilt": got}
        deterministic = getattr(self.broker, "deterministic", True)
        for k in ("position", "orders", "fills") if deterministic else ():
            if stored[k] != got[k]:
                raise ReconciliationError(f"{self.store.location}: {k} {stored[k]} committed at {self.watermark} "
                                          f"but {got[k]} rebuilt from the stream up to it")
        if hasattr(self.broker, "reconcile"):
            report["broker"] = self.broker.reconcile(self.store, self.session)
        if not deterministic:  # orders of the warm-up never went out: what is open is what the broker says
            self.open_orders = {oid: [o["side"], o["leaves"]] for oid, o in self.broker.orders.items()
                                if not o["status"].is_done}
        state, reason = self.persisted_state
        if state != self.risk.state:
            # the operator changed the state while the worker was down (e.g. `worker resume`): it takes
            # effect from the next decision, and is logged so that a later recovery replays it there too
            self._record_override(self.next_step, state)
            self._change_state(state, reason or "operator")
        # the fills / orders rebuilt are in the store already: start counting new ones from here
        self.broker.new_fills()
        self.broker.changed_orders()
        self._dirty.clear()
        self._equity_rows.clear()
        self._events.clear()
        self._tick_decisions.clear()
        self._trade_recs.clear()
        self.restart_to_trading_s = _now() - self._t_recovery
        report["recovery_s"] = self.restart_to_trading_s
        self.store.set_meta("last_recovery", json.dumps(report))
        return report

    # ----------------------------------------------------------------------------- ticks

    def _validate(self, rec: np.ndarray) -> np.ndarray:
        """Reason code per record: 0 ok, 1 nan, 2 crossed, 3 out_of_order, 4 duplicate."""
        m = rec.shape[0]
        book = rec["book"]
        sizes = book[:, 1::2]
        px = book[:, 0::2]
        nan = ~np.isfinite(sizes).all(axis=1) | (np.isnan(px) & (sizes > 0)).any(axis=1) | (rec["ts"] <= 0)
        nan |= np.isinf(px).any(axis=1)
        a, asz, b, bsz = book[:, 0], book[:, 1], book[:, 2], book[:, 3]
        with np.errstate(invalid="ignore"):
            crossed = (asz > 0) & (bsz > 0) & (b > a)
        code = np.where(nan, 1, np.where(crossed, 2, 0)).astype(np.int8)
        seqs = rec["seq"]
        tss = rec["ts"]
        last_seq, last_ts = self.last_seq, self.last_ts
        recent, rset = self._recent, self._recent_set
        for k in range(m):
            s = int(seqs[k])
            if s in rset:
                code[k] = 4
                continue
            if code[k]:
                continue
            t = int(tss[k])
            if s < last_seq or t < last_ts:
                code[k] = 3
                continue
            last_seq, last_ts = s, t
            recent.append(s)
            rset.add(s)
            if len(recent) > 4096:
                rset.discard(recent.popleft())
        self.last_seq, self.last_ts = last_seq, last_ts
        return code

    def process(self, rec: np.ndarray, n_expected: int | None = None) -> int:
        """Feed a batch of wire records (in stream order). Returns the number accepted."""
        self._t_arrival = _now()
        m = rec.shape[0]
        if m == 0:
            return 0
        self.ticks_in += m
        if n_expected is None:
            n_expected = int(rec["n"][-1])
        if n_expected != self.view.n_events and n_expected > 0:
            self.view.set_expected(n_expected)
        code = self._validate(rec)
        if code.any():
            names = ("", "nan", "crossed", "out_of_order", "duplicate")
            for c in np.unique(code[code > 0]):
                k = int((code == c).sum())
                self.skipped[names[c]] += k
                if self.metrics:
                    self.metrics.skipped.labels(reason=names[c]).inc(k)
            rec = rec[code == 0]
        if rec.shape[0] == 0:
            return 0
        if self.cols.append(rec):
            self.view.rebind()
        if self._publish_decisions and not self.recovering:
            self._note_trades(rec)
        self.broker.append(rec)
        self.n += rec.shape[0]
        if self.metrics:
            self.metrics.ticks.inc(rec.shape[0])
        if self.view.n_events > 0 and self.last_seq == self.view.n_events - 1:
            self.end_session()  # the day's last event arrived: no later tick will come
        else:
            self._run_due()
        return int(rec.shape[0])

    def _run_due(self) -> None:
        ts_last = int(self.cols.book["ts"][self.n - 1])
        while self.next_step < self.n:
            i = self.next_step
            if self.holdback and self.broker.bound(i) >= ts_last:
                break
            self._step(i)
            self.next_step = i + 1

    # ----------------------------------------------------------------------------- one decision

    def _step(self, i: int) -> None:
        broker = self.broker
        for rep, fill in broker.step(i):
            self._on_report(rep, fill)
        # streaming features: the batch tables' step function, for exactly the ticks delivered so far
        c = self.cols
        self.feature_row = self.features.update(int(c.book["ts"][i]), int(self._fcode[c.ev[i]]),
                                                float(c.events["size"][i]), float(c.events["price"][i]),
                                                float(c.agg[i]), c.mat[i])
        self.view.features = self.feature_row  # live extension: the streaming features of this tick
        if self.model is not None:
            self._maybe_swap(i)
        self._apply_overrides(i)
        local = broker.local(i)
        self.view._advance(i, local)
        reqs = self.strategy.on_book(self.view)
        if reqs:
            for req in reqs:
                self._handle(req, i, local)
        if not self.recovering:
            lat = _now() - self._t_arrival
            if self.metrics:
                self.metrics.latency.observe(lat)
            elif len(self.latencies) < 2_000_000:
                self.latencies.append(lat)
            if self._publish_decisions:
                self._lat_window.append(lat)
                self._last_i, self._last_lat = i, lat
                self._last_pred = getattr(self.strategy, "last_prediction", None)
                if self._tick_decisions:
                    us = round(lat * 1e6, 1)
                    for d in self._tick_decisions:
                        d["latency_us"] = us
                        self._events.append(("signals", d))
                    self._tick_decisions = []
        broker.done_step(i)
        self._mark(i)

    def _on_report(self, rep: Any, fill: Any) -> None:
        oo = self.open_orders.get(rep.order_id)
        if oo is not None:
            oo[1] = rep.leaves
            if OrderStatus(rep.status).is_done:
                self.open_orders.pop(rep.order_id, None)
        self._dirty.add(rep.order_id)
        if hasattr(self.strategy, "on_order"):
            self.strategy.on_order(rep)
        if fill is not None and hasattr(self.strategy, "on_fill"):
            self.strategy.on_fill(fill)

    def _open_qty(self) -> tuple[int, int]:
        b = s = 0
        for side, leaves in self.open_orders.values():
            if side > 0:
                b += leaves
            else:
                s += leaves
        return b, s

    def _handle(self, req: Any, i: int, local: int) -> None:
        broker = self.broker
        if isinstance(req, CancelRequest):
            broker.cancel(req.order_id, local)
            self._dirty.add(req.order_id)
            return
        pos = broker.known_position()
        ob, os_ = self._open_qty()
        mid = self.view.mid
        sig: Signal | None = None
        target: int | None = None
        if isinstance(req, Signal):
            sig = req
            equity = broker.account()["equity"]
            target = self.risk.target_from_signal(req, equity, mid)
            d = target - (pos + ob - os_)
            if d == 0:
                return
            req = OrderRequest.market(1 if d > 0 else -1, abs(d))
        if not isinstance(req, OrderRequest):
            raise TypeError(f"strategy returned {req!r}; expected OrderRequest, CancelRequest or Signal")
        dec = self.risk.check(req, pos, ob, os_, mid, local)
        oid = broker.next_order_id()
        cid = f"{self.session}-{oid}"
        if self._publish_decisions and not self.recovering:
            self._decision_event(i, req, dec, cid, sig, target)
        row = {"client_order_id": cid, "seq": oid, "symbol": self.symbol, "side": req.side,
               "type": ORDER_TYPES[int(req.type)], "price": req.price, "size": int(req.size),
               "filled": 0, "avg_price": None, "fees": 0.0, "ts_submit": local, "strategy": self.config.strategy,
               "model_version": self.model_version, "tick_seq": int(self.cols.book["seq"][i]),
               "wall_submit": time.time()}
        if dec.ok:
            req = dec.request
            row.update(size=int(req.size), status="new")
            if self.recovering and getattr(broker, "deterministic", True):
                if cid not in self._known_cids:
                    raise ReconciliationError(
                        f"{self.store.location}: replay regenerated order {cid}, which the store does not have "
                        f"(the stream up to {self.watermark} and the state disagree)")
            elif not self.recovering:
                # a client order id written ahead by a previous run is not written again (the broker's
                # submit is idempotent on it: the IB broker skips an orderRef it already knows)
                if cid not in self._known_cids:
                    self.store.insert_order(row)  # write ahead ...
                    self._known_cids.add(cid)
                self.commit_partial()  # ... and make it durable before acting
            got = broker.submit(req, local, cid)
            if got != oid:
                raise ReconciliationError(f"broker gave order id {got}, expected {oid}")
            self.open_orders[oid] = [req.side, int(req.size)]
            self.orders_sent += 1
            if self.metrics and not self.recovering:
                self.metrics.orders.labels(side="buy" if req.side > 0 else "sell").inc()
        else:
            broker.reject_locally(req, local)
            row.update(status="refused", reason=dec.reason)
            self.refused += 1
            if not self.recovering:
                self.store.upsert_orders([row])
                self._known_cids.add(cid)
                if self.metrics:
                    self.metrics.rejects.labels(reason=dec.reason).inc()
        self._order_rows[oid] = row
        self._dirty.add(oid)

    # ----------------------------------------------------------------------------- decision events

    def _decision_event(self, i: int, req: OrderRequest, dec: Any, cid: str, sig: Signal | None,
                        target: int | None) -> None:
        """One order intent and the risk manager's answer, as a small ``signals`` event (its latency is
        filled in once the tick's decision is complete, in :meth:`_step`)."""
        if self._decisions_sent >= self.config.decision_events_max:
            self.decisions_suppressed += 1
            return
        self._decisions_sent += 1
        self.decision_events += 1
        cb = self.cols.book
        p = sig.prob_up if sig is not None else getattr(self.strategy, "last_prediction", None)
        ev: dict[str, Any] = {"kind": "order", "ts": int(cb["ts"][i]), "seq": int(cb["seq"][i]), "p_up": _num(p),
                              "model": self.model_ref, "side": int(req.side), "qty": int(req.size),
                              "type": ORDER_TYPES[int(req.type)], "order": cid}
        if req.price is not None:
            ev["price"] = float(req.price)
        if sig is not None:
            ev["target"], ev["regime"] = target, sig.regime
        if not dec.ok:
            ev["risk"], ev["reason"] = "rejected", dec.reason
        elif dec.request is not None and int(dec.request.size) != int(req.size):
            ev["risk"], ev["scale"] = "scaled", round(int(dec.request.size) / int(req.size), 4)
            ev["qty_sent"] = int(dec.request.size)
            ev["reason"] = self.risk.state.lower()
        else:
            ev["risk"] = "accepted"
        self._tick_decisions.append(ev)

    def _note_trades(self, rec: np.ndarray) -> None:
        """Keep the newest market trades of the accepted records for the next ``trades`` event."""
        ev = rec["ev"]
        if ev.shape[0] == 1:  # a live source's one-tick batch: one scalar lookup
            if self._fcode[ev[0]] != self._et_trade:
                return
            t = rec
        else:
            is_trade = self._fcode[ev] == self._et_trade
            if not is_trade.any():
                return
            t = rec[is_trade]
        k = self.config.trades_per_publish
        self._trades_pending += int(t.shape[0])
        self._trade_recs.append(t[-k:])
        if len(self._trade_recs) > 32:
            self._trade_recs = [np.concatenate(self._trade_recs)[-k:]]

    def _publish_sampled(self) -> None:
        """At most once per publish interval: the market trades since the last time (newest
        ``trades_per_publish``, one ``trades`` event) and the last tick's decision with the rolling
        tick-to-decision p50/p99 (one ``signals`` event of kind ``tick``)."""
        if self._trade_recs:
            t = np.concatenate(self._trade_recs)[-self.config.trades_per_publish:]
            rows = [{"ts": int(ts), "seq": int(sq), "price": _num(px), "size": int(sz), "aggressor_side": int(ag)}
                    for ts, sq, px, sz, ag in zip(t["ts"].tolist(), t["seq"].tolist(), t["price"].tolist(),
                                                  t["size"].tolist(), t["agg"].tolist(), strict=True)]
            self._events.append(("trades", rows))
            self._trade_recs = []
            self._trades_pending = 0
        if self._last_i >= 0:
            w = np.fromiter(self._lat_window, dtype=np.float64, count=len(self._lat_window))
            p50, p99 = np.percentile(w, [50, 99]) * 1e6
            cb = self.cols.book
            i = self._last_i
            self._events.append(("signals", {
                "kind": "tick", "ts": int(cb["ts"][i]), "seq": int(cb["seq"][i]), "p_up": _num(self._last_pred),
                "model": self.model_ref, "position": int(self.broker.known_position()),
                "state": self.risk.state, "latency_us": round(self._last_lat * 1e6, 1),
                "lat_p50_us": round(float(p50), 1), "lat_p99_us": round(float(p99), 1), "lat_n": int(w.size),
                "decisions": self.decision_events, "suppressed": self.decisions_suppressed}))
            self._last_i = -1
        self._decisions_sent = 0

    def _maybe_swap(self, i: int) -> None:
        """Hot reload between two ticks. Live: take a newly loaded champion (and log the swap with this
        decision index); recovery: re-apply the logged swaps at their indices."""
        m = self.model
        version = None
        if self.recovering:
            while self._swaps and self._swaps[0][0] <= i:
                _, v = self._swaps.pop(0)
                m.load_version(v)
                version = v
        else:
            version = m.swap_if_ready()
            if version is None and self.model_version is None and m.current()[1] is not None:
                version = m.current()[1]  # the champion at start
            if version is not None:
                log = json.loads(self.store.get_meta("model_swaps") or "[]")
                log.append([i, version])
                self.store.set_metas({"model_swaps": json.dumps(log), "model_version": version})
                self._events.append(("signals", {"kind": "model_swap", "model_version": version,
                                                 "model": f"{getattr(m, 'name', None) or 'model'}@{version}",
                                                 "tick_seq": int(self.cols.book["seq"][i])}))
                if self.metrics:
                    self.metrics.set_model_version(version)
        if version is not None:
            predictor, version = m.current()
            self.model_version = version
            name = getattr(m, "name", None)
            self.model_ref = f"{name}@{version}" if name else str(version)
            self.swaps_applied.append((i, version))
            if hasattr(self.strategy, "set_model"):
                self.strategy.set_model(predictor, version)

    def _record_override(self, i: int, state: str) -> None:
        overrides = json.loads(self.store.get_meta("state_overrides") or "[]")
        overrides.append([i, state])
        self.store.set_meta("state_overrides", json.dumps(overrides))

    def _change_state(self, state: str, reason: str) -> None:
        self._set_state(state, reason, persist=False)
        if state == ACTIVE:  # a resume restarts the drawdown clock from the current equity
            self.risk.peak = -math.inf
            self.risk._halt_breaches = self.risk._alert_breaches = 0

    def _apply_overrides(self, i: int) -> None:
        """Trading-state changes made by an operator (``flowsense worker resume``), at the decision where
        they took effect (replayed there by a recovery)."""
        while self._overrides and self._overrides[0][0] <= i:
            _, state = self._overrides.pop(0)
            self._change_state(state, "operator")
        if not self.recovering and _now() - self._last_poll > self._poll_every:
            self._last_poll = _now()
            m = self.store.metas()
            st = m.get("trading_state", ACTIVE)
            if st != self.risk.state and m.get("trading_state_reason") == "operator":
                self._record_override(i, st)
                self._change_state(st, "operator")

    def _set_state(self, state: str, reason: str, persist: bool = True) -> None:
        prev = self.risk.state
        self.risk.state, self.risk.reason = state, reason
        if state == HALTED and prev != HALTED:
            for oid in list(self.open_orders):  # HALTED: only cancels - cancel what is open
                self.broker.cancel(oid, self.broker.local(self.next_step))
        if self.metrics and not self.recovering:
            self.metrics.state.set(STATE_CODES[state])
        if persist and not self.recovering:
            self.store.set_trading_state(state, reason)

    def _mark(self, i: int) -> None:
        acct = self.broker.account()
        eq = acct["equity"]
        if not math.isfinite(acct["mark"]):
            return
        change = self.risk.mark(eq)
        if change == "halt":
            self._set_state(HALTED, self.risk.reason)
            self.commit_partial()
        elif change in ("alert", "clear") and not self.recovering:
            self.store.set_metas({"drawdown_alert": "1" if change == "alert" else "0"})
            if self.risk.state == REDUCING:
                self._set_state(REDUCING, self.risk.reason)
        if self.recovering:
            return
        ts = int(self.cols.book["ts"][i])
        bucket = ts // self.config.equity_interval_ns
        if bucket != self._last_equity_bucket:
            self._last_equity_bucket = bucket
            self._equity_rows.append((ts, self.symbol, eq, acct["cash"], acct["position"], acct["mark"],
                                      self.risk.peak, self.risk.drawdown))
        if self.metrics:
            m = self.metrics
            m.position.set(acct["position"])
            m.pnl.set(eq - self.config.initial_cash)
            m.drawdown.set(self.risk.drawdown)

    # ----------------------------------------------------------------------------- durability

    def _collect(self) -> dict[str, Any]:
        fills = []
        for f in self.broker.new_fills():
            cid = f"{self.session}-{f['order_id']}"
            fills.append({"fill_id": f.get("fill_id") or f"{cid}:{f['fill_no']}", "client_order_id": cid, "symbol": self.symbol,
                          "ts": f["ts"], "side": f["side"], "price": f["price"], "size": f["size"], "fee": f["fee"],
                          "liquidity": f["liquidity"], "slippage": f["slippage"], "book_price": f["book_price"],
                          "tick_seq": int(self.cols.book["seq"][max(self.next_step - 1, 0)]),
                          "model_version": self._order_rows.get(f["order_id"], {}).get("model_version",
                                                                                      self.model_version)})
        changed = set(self.broker.changed_orders()) | self._dirty
        self._dirty = set()
        orders = []
        for oid in sorted(changed):
            if oid > self.broker.n_orders:
                continue
            base = self._order_rows.get(oid)
            live = self.broker.order_row(oid)
            if base is None:
                base = {"client_order_id": f"{self.session}-{oid}", "seq": oid, "symbol": self.symbol,
                        "strategy": self.config.strategy}
            row = {**base, **live}
            if base.get("status") == "refused":
                row["status"], row["reason"] = "refused", base.get("reason")
            self._order_rows[oid] = row
            orders.append(row)
        return {"fills": fills, "orders": orders}

    def commit_partial(self) -> None:
        """Make everything so far durable without moving the stream watermark (before acting)."""
        if self.recovering:
            self.broker.new_fills()
            self.broker.changed_orders()
            self._dirty.clear()
            return
        self._write(None)

    def commit(self, last_id: str | None) -> None:
        """After a batch: its effects and its last message id in one transaction (then ack)."""
        if self.recovering:
            self.broker.new_fills()
            self.broker.changed_orders()
            self._dirty.clear()
            return
        self._write(last_id)

    def _write(self, last_id: str | None) -> None:
        got = self._collect()
        acct = self.broker.account()
        s = self.store
        with s.transaction():
            if got["orders"]:
                s.upsert_orders(got["orders"])
            if got["fills"]:
                s.add_fills(got["fills"])
                self.fills_seen += len(got["fills"])
                if self.metrics:
                    self.metrics.fills.inc(len(got["fills"]))
                for f in got["fills"]:
                    self._events.append(("fills", {k: f[k] for k in ("client_order_id", "ts", "side", "price", "size",
                                                                     "fee", "liquidity")}))
            s.set_position({"symbol": self.symbol, "position": acct["position"], "avg_price": acct["avg_price"],
                            "cash": acct["cash"], "realized": acct["realized"], "fees": acct["fees"],
                            "mark": acct["mark"] if math.isfinite(acct["mark"]) else None,
                            "equity": acct["equity"], "updated": time.time()})
            for row in self._equity_rows:
                s.add_equity(*row)
            self._equity_rows = []
            meta: dict[str, Any] = {"heartbeat": time.time(), "ticks": self.n, "skipped": json.dumps(self.skipped),
                                    "peak_equity": self.risk.peak if math.isfinite(self.risk.peak) else None,
                                    "drawdown": self.risk.drawdown}
            if last_id is not None:
                meta.update(last_stream_id=last_id, last_tick_index=self.n - 1, last_tick_seq=self.last_seq,
                            wm_position=acct["position"], wm_orders=self.broker.n_orders,
                            wm_fills=self.broker.n_fills)
            s.set_metas(meta)
            now = _now()
            if now - self._last_publish >= self.config.publish_interval_s and self.n:
                self._last_publish = now
                i = self.n - 1
                cb = self.cols.book
                self._events.append(("book", {"ts": int(cb["ts"][i]), "seq": int(cb["seq"][i]),
                                              "bid": [float(cb[f"bid_px_{k}"][i]) for k in range(1, self.levels + 1)],
                                              "bid_size": [float(cb[f"bid_sz_{k}"][i]) for k in range(1, self.levels + 1)],
                                              "ask": [float(cb[f"ask_px_{k}"][i]) for k in range(1, self.levels + 1)],
                                              "ask_size": [float(cb[f"ask_sz_{k}"][i]) for k in range(1, self.levels + 1)]}))
                self._events.append(("pnl", {"equity": acct["equity"], "pnl": acct["equity"] - self.config.initial_cash,
                                             "position": acct["position"], "drawdown": self.risk.drawdown}))
                if self._publish_decisions:
                    self._publish_sampled()
            for topic, data in self._events:
                s.publish(topic, self.symbol, data)
            self._events = []
        if self.metrics:
            self.metrics.heartbeat()

    # ----------------------------------------------------------------------------- end

    def end_session(self) -> None:
        """End of a finite source: run the remaining decisions, then the exchange to the end of data."""
        if self.session_done and not self.recovering:
            return
        self._run_due_final()
        for rep, fill in self.broker.finish():
            self._on_report(rep, fill)
        if hasattr(self.strategy, "on_end"):
            self.strategy.on_end(self.view)
        self.session_done = True
        if not self.recovering:
            self._write(None)
            self.store.set_metas({"session_done": "1"})

    def _run_due_final(self) -> None:
        while self.next_step < self.n:
            i = self.next_step
            self._step(i)
            self.next_step = i + 1

    def shutdown(self) -> None:
        self.store.set_metas({"running": "0", "heartbeat": time.time()})

    def summary(self) -> dict[str, Any]:
        st = self.store.status()
        acct = self.broker.account()
        orders = [o for o in self.store.all_orders() if o["client_order_id"].startswith(self.session)]
        sent = [o for o in orders if o["status"] != "refused"]
        cids = [o["client_order_id"] for o in sent]
        fills = [f for f in self.store.all_fills() if f["client_order_id"].startswith(self.session)]
        lat = np.asarray(self.latencies) if self.latencies else None
        wall = _now() - self.t_start
        def oid(cid: str) -> int:
            return int(cid.rsplit("-", 1)[1])

        order_rows = [{"order_id": oid(o["client_order_id"]), "client_order_id": o["client_order_id"],
                       "ts_submit": o["ts_submit"], "side": o["side"], "type": o["type"], "price": o["price"],
                       "size": o["size"], "status": o["status"], "filled": o["filled"], "avg_price": o["avg_price"],
                       "fees": o["fees"], "ts_done": o["ts_done"], "reason": o["reason"],
                       "model_version": o["model_version"]} for o in sent]
        def fill_no(fid: str, k: int) -> int:
            tail = fid.rsplit(":", 1)[-1]
            return int(tail) if ":" in fid and tail.isdigit() else k + 1  # IB: execIds, in store order

        fill_rows = sorted(({"fill_no": fill_no(f["fill_id"], k), "ts": f["ts"],
                             "order_id": oid(f["client_order_id"]),
                             "client_order_id": f["client_order_id"], "side": f["side"], "price": f["price"],
                             "size": f["size"], "fee": f["fee"], "liquidity": f["liquidity"],
                             "slippage": f["slippage"], "book_price": f["book_price"],
                             "model_version": f["model_version"]} for k, f in enumerate(fills)),
                           key=lambda f: f["fill_no"])
        return {
            "symbol": self.symbol, "date": self.config.date, "strategy": self.config.strategy,
            "params": self.config.params, "session": self.session, "source": self.config.source,
            "broker": self.config.broker,
            # as `flowsense backtest --json`: orders and fills as rows, final position (units), net PnL
            "orders": order_rows, "fills": fill_rows, "n_orders": len(sent), "n_fills": len(fills),
            "position": int(acct["position"]),
            "pnl": float(acct["equity"] - self.config.initial_cash),
            "unique_client_order_ids": len(set(cids)),
            "refused": sum(1 for o in orders if o["status"] == "refused"),
            "fees": float(acct["fees"]), "realized_pnl": float(acct["realized"]),
            "ticks": self.n, "ticks_in": self.ticks_in, "skipped": dict(self.skipped),
            "redelivered": self.redelivered, "trading_state": self.risk.state,
            "trading_state_reason": self.risk.reason, "drawdown": self.risk.drawdown,
            "model_version": self.model_version, "restarts": st["restarts"],
            "decision_events": self.decision_events, "decision_events_suppressed": self.decisions_suppressed,
            "restart_to_trading_s": self.restart_to_trading_s, "session_done": self.session_done,
            "wall_s": wall, "ticks_per_s": self.ticks_in / wall if wall > 0 else None,
            "tick_to_decision_p50_us": float(np.percentile(lat, 50) * 1e6) if lat is not None else None,
            "tick_to_decision_p99_us": float(np.percentile(lat, 99) * 1e6) if lat is not None else None,
        }

