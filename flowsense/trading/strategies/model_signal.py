"""``model_signal``: trade a registered model's out-of-sample predictions.

``flowsense backtest --symbol S --date D --strategy model_signal --param model=flowsense-xgboost@champion``

Before the replay, :meth:`ModelSignal.prepare` loads the model version from the MLflow registry (the
native predictor of :func:`flowsense.models.registry.load_model`), **refuses a model whose training
window overlaps the backtest day** (:class:`ModelWindowError`: its ``train_window_ns`` tag, first training
event to the last label it saw, against the day's first and last event), reads the day's feature rows
from the lake (:func:`flowsense.models.dataset.load_symbol`: causal features, event ``t`` uses only events
``<= t``) and predicts ``P(up)`` for every event. During the replay the strategy reads ``P(up)`` of the
last event it has received (``view.seq``, on its latency-delayed clock), so it never sees a prediction
made from a later event.

**Live** (``flowsense worker run --strategy model_signal --model flowsense-xgboost``): :meth:`ModelSignal.create`
gives a strategy without precomputed predictions; the worker hands it the champion with
``set_model(predictor, version)`` (at start and at each hot swap, between ticks) and the tick's streaming
features in ``view.features`` / ``view.feature_names``. The model's inputs are taken from them by name;
the dataset's derived columns are rebuilt from the same row (``qi_l1``, ``spread_bps``, ``micro_rel``,
``ofi_sum_10``); columns the stream does not carry (closed-bar ``b1_``/``m1_`` features, ``tod``) are NaN,
which XGBoost treats as missing - a model trained with ``inputs=tick`` (no bar features) sees live
exactly what it was trained on.

Rule (one market order at a time, like ``ofi_threshold``): target ``+size`` when ``P(up) >= threshold``,
``-size`` when ``P(up) <= 1 - threshold``, otherwise keep the position; a position is held at least
``min_hold_events`` events before it is reversed or closed; flat on the last event; clamped to
``max_position``. Costs are the backtest's (fees, latency, slippage, queue).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from flowsense.errors import FlowSenseError
from flowsense.trading.orders import OrderRequest, Request
from flowsense.trading.strategy import StrategyBase, StrategyConfig
from flowsense.trading.view import BookView


class ModelWindowError(FlowSenseError):
    """The model was trained on data that overlaps the day it would trade (in-sample)."""


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def training_window(info: Any) -> tuple[int, int] | None:
    """The version's training window ``(first, last)`` in ns (its ``train_window_ns`` tag, else the whole
    ``train_end`` day), or None when it recorded neither."""
    raw = info.tags.get("train_window_ns", "")
    try:
        a, b = (int(x) for x in raw.split(","))
        return a, b
    except ValueError:
        end = info.train_end
        if end is None:
            return None
        return 0, int(dt.datetime.combine(end, dt.time(23, 59, 59), dt.UTC).timestamp() * 1e9)


def check_window(info: Any, day_first_ns: int, day_last_ns: int, day: str, *,
                 what: str = "the backtest day") -> None:
    """Raise :class:`ModelWindowError` when the version's training window overlaps ``[first, last]``
    (``what`` names that span in the message: the backtest day, a walk-forward fold's test window)."""
    window = training_window(info)
    if window is None:
        raise ModelWindowError(f"{info.uri}: no training window recorded; cannot prove {what} {day} is out of "
                               "sample")
    a, b = window
    if day_first_ns <= b and day_last_ns >= a:
        raise ModelWindowError(
            f"{info.name} v{info.version} was trained on {_iso(a)}..{_iso(b)}, which overlaps {what} "
            f"{day}: trade after {_iso(b)} or use a version trained earlier")


def day_predictions(model: str, lake: Any, symbol: str, date: dt.date, n_events: int,
                    day_first_ns: int, day_last_ns: int, settings: Any = None, *, check: bool = True
                    ) -> tuple[np.ndarray, Any]:
    """``P(up)`` per event (index = ``seq``; NaN where the model gives none) and the version info.

    ``check=False`` leaves the in-sample check to the caller (the bar walk-forward checks each fold's test
    window, which may start after a training window ending inside the day)."""
    from flowsense.models.dataset import add_cross_asset, load_symbol
    from flowsense.models.registry import load_model

    predictor, info = load_model(model, settings)
    if check:
        check_window(info, day_first_ns, day_last_ns, date.isoformat())
    try:
        data = load_symbol(lake, symbol, [date])
    except FileNotFoundError:
        raise FlowSenseError(f"no features_tick for {symbol} on {date} in {lake.root}; run `flowsense features "
                             f"--symbol {symbol} --date {date}` first") from None
    names = list(predictor.feature_names)
    missing = [c for c in names if c not in data.frame.columns]
    if missing and any(c.startswith(("g0_", "gc_")) for c in missing):
        others = {}
        for s in info.symbols:
            if s != symbol:
                try:
                    others[s] = load_symbol(lake, s, [date])
                except FileNotFoundError:
                    continue
        datas = {symbol: data, **others}
        add_cross_asset(datas)
        data = datas[symbol]
        missing = [c for c in names if c not in data.frame.columns]
    if missing:
        raise FlowSenseError(f"{info.name} v{info.version} needs feature(s) {', '.join(missing[:5])} that "
                             f"{symbol} {date} does not have")
    X = data.X(names)
    seq_len = info.tags.get("seq_len")
    if seq_len:  # a sequence network: the window of the last seq_len rows, zero-padded at the day's start
        T = int(seq_len)
        pad = np.vstack([np.zeros((T - 1, X.shape[1])), np.nan_to_num(X)])
        X = np.lib.stride_tricks.sliding_window_view(pad, (T, X.shape[1]))[:, 0]
    proba = np.asarray(predictor.predict_proba(X))
    up = list(info.classes).index(1) if 1 in info.classes else proba.shape[1] - 1
    p = proba[:, up].astype(np.float64)
    out = np.full(n_events, np.nan)
    seq = data.frame["seq"].to_numpy()
    ok = (seq >= 0) & (seq < n_events)
    out[seq[ok]] = p[ok]
    return out, info


def bar_predictions(model: str, lake: Any, symbol: str, date: dt.date, bars: Any, settings: Any = None
                    ) -> tuple[np.ndarray, Any]:
    """``P(up)`` per bar of ``bars`` (a ``features_<clock>`` table: ``last_seq`` = the bar's last event) and the
    version info: the prediction of the bar's last event, known at the bar's close; an empty bar keeps the
    previous bar's. **No in-sample check here**: the caller checks the windows it trades
    (:func:`check_window` per walk-forward fold)."""
    from flowsense.data.lake import Partition

    ts = lake.read("events", Partition(symbol, date), columns=["ts"])["ts"].dt.epoch("ns")
    p, info = day_predictions(model, lake, symbol, date, int(ts.len()), int(ts.min()), int(ts.max()), settings,
                              check=False)
    last = bars["last_seq"].fill_null(-1).to_numpy().astype(np.int64)
    ok = (last >= 0) & (last < p.size)
    out = np.full(last.size, np.nan)
    out[ok] = p[last[ok]]
    idx = np.where(np.isfinite(out), np.arange(out.size), -1)
    idx = np.maximum.accumulate(idx)  # forward fill: an empty bar keeps the last known prediction
    filled = np.where(idx >= 0, out[np.maximum(idx, 0)], np.nan)
    return filled, info


_RAW = ("bid_sz_1", "ask_sz_1", "spread", "mid", "micro_dev", "ofi_l1")


class ModelSignalStrategy(StrategyBase):
    """Stateful side of :class:`ModelSignal`: the day's ``P(up)`` per event and the order in flight."""

    config: ModelSignal

    def __init__(self, config: ModelSignal, p_up: np.ndarray | None = None, info: Any = None) -> None:
        self.p_up = None if p_up is None else np.asarray(p_up)
        self.info = info
        self.predictor: Any = None
        self.version: str | None = None
        self._index: tuple[list[str], list[int], dict[str, int]] | None = None
        self._seq: np.ndarray | None = None
        super().__init__(config)

    def reset(self) -> None:
        self.inflight: int | None = None
        self.held_since = -1
        self.signals = 0
        self._ofi: list[float] = []
        self.last_prediction: float | None = None  # P(up) of the last on_book (None when it made none)

    # ---- live: the worker's champion and streaming features ---------------------------------------------
    def set_model(self, predictor: Any, version: str | None) -> None:
        """The worker's hot reload: a native predictor (registry.load_model) and its version."""
        self.predictor, self.version, self._index = predictor, version, None

    def _live_p_up(self, view: BookView) -> float:
        row = getattr(view, "features", None)
        names = getattr(view, "feature_names", None)
        if self.predictor is None or row is None or names is None:
            return math.nan
        if self._index is None or self._index[0] is not names:
            pos = {n: k for k, n in enumerate(names)}
            self._index = (names, [pos.get(n, -1) for n in self.predictor.feature_names],
                           {n: pos.get(n, -1) for n in _RAW})
        _, cols, raw = self._index
        row = np.asarray(row, dtype=np.float64)
        v = {n: (float(row[k]) if k >= 0 else math.nan) for n, k in raw.items()}
        self._ofi.append(v["ofi_l1"])
        derived = {
            "qi_l1": v["bid_sz_1"] - v["ask_sz_1"],
            "spread_bps": v["spread"] / v["mid"] * 1e4 if v["mid"] else math.nan,
            "micro_rel": v["micro_dev"] / v["spread"] if v["spread"] > 0 else 0.0,
            "ofi_sum_10": float(np.nansum(self._ofi[-10:])),
        }
        x = np.array([row[k] if k >= 0 else derived.get(n, math.nan)
                      for n, k in zip(self.predictor.feature_names, cols, strict=True)])
        seq = getattr(self.predictor, "seq_len", None)
        if seq:  # a sequence network: the last seq_len vectors
            if self._seq is None or self._seq.shape != (int(seq), x.size):
                self._seq = np.zeros((int(seq), x.size))
            self._seq = np.vstack([self._seq[1:], np.nan_to_num(x)[None, :]])
            x = self._seq
        proba = np.asarray(self.predictor.predict_proba(x))
        classes = list(getattr(self.predictor, "classes", [-1, 1]))
        return float(proba[0, classes.index(1) if 1 in classes else -1])

    def on_book(self, view: BookView) -> Sequence[Request]:
        c = self.config
        i = view.seq
        if self.inflight is not None:
            if not view.order_status(self.inflight).is_done:
                self.last_prediction = None
                return []
            self.inflight = None
        pos = view.position
        if self.p_up is not None:
            p = self.p_up[i] if i < self.p_up.size else math.nan
        else:
            p = self._live_p_up(view)
        self.last_prediction = p
        if view.is_last:
            tgt = 0
        elif pos != 0 and i - self.held_since < c.min_hold_events:
            tgt = pos
        elif p >= c.threshold:
            tgt = c.size
        elif p <= 1.0 - c.threshold:
            tgt = -c.size
        else:
            tgt = pos
        tgt = max(-c.max_position, min(c.max_position, tgt))
        d = tgt - pos
        if d == 0:
            return []
        if tgt != 0:
            self.held_since = i
            self.signals += 1
        self.inflight = view.next_order_id
        return [OrderRequest.market(1 if d > 0 else -1, abs(d))]


@dataclass(frozen=True, slots=True)
class ModelSignal(StrategyConfig):
    """Trade a registered model's ``P(up)``: long at ``>= threshold``, short at ``<= 1 - threshold``.

    ``model``: a registry reference (``flowsense-xgboost@champion``, ``xgboost@challenger``,
    ``flowsense-xgboost/3``). Needs :meth:`prepare` (the backtest runner calls it) to load the model and
    predict the day; a model trained on the backtest day is refused.
    """

    model: str = "flowsense-xgboost@champion"
    threshold: float = 0.6
    size: int = 100
    max_position: int = 100
    min_hold_events: int = 50
    name = "model_signal"
    strategy_class = ModelSignalStrategy

    def validate(self) -> None:
        self._require(bool(self.model.strip()), "model", "a registry reference such as flowsense-xgboost@champion")
        self._require(0.5 < self.threshold < 1.0, "threshold", "in (0.5, 1)")
        self._require(self.size > 0, "size", "> 0")
        self._require(self.max_position > 0, "max_position", "> 0")
        self._require(self.min_hold_events >= 0, "min_hold_events", ">= 0")

    def prepare(self, *, lake: Any, symbol: str, date: dt.date, events: Any, book: Any,
                settings: Any = None) -> ModelSignalStrategy:
        """Load the model, refuse an in-sample day, predict every event; the strategy to run."""
        ts = events["ts"].dt.epoch("ns")
        p, info = day_predictions(self.model, lake, symbol, date, int(events.height), int(ts.min()), int(ts.max()),
                                  settings)
        return ModelSignalStrategy(self, p, info)

    def create(self) -> ModelSignalStrategy:
        """The live strategy: predictions from the worker's model (``set_model``) on ``view.features``."""
        return ModelSignalStrategy(self)
