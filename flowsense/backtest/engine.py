"""Event-driven backtest over the canonical ``events``/``book`` tables (LOBSTER-style MBO messages).

``run_backtest(events, book, strategy, config)`` replays one day through a Numba exchange simulator:

* market data reaches the strategy after the feed latency; orders reach the exchange after the order
  latency and are matched against the book after every event with ``ts <=`` their arrival; reports
  (ack, fill, cancel, reject) come back after the response latency;
* a marketable order walks the visible levels of the recorded book at its arrival (our own taker orders
  do not deplete the recorded book); a remainder rests (limit) or is cancelled (market, IOC);
* a resting limit order keeps a queue position (``config.queue``) and fills when executions at its
  price consume the queue ahead, or when the market trades through its price or the opposite best quote
  reaches it (maker fills at our price);
* an order that could take the position beyond ``max_position`` (position + open orders on that side +
  the order) is rejected on arrival;
* cash, position, average-cost realized PnL, fees (``config.fees``) and taker slippage
  (``config.slippage``) are tracked; every order and fill is returned as a Polars frame.

The events table must carry, for executions/cancels, the side and price of the *resting* order (as
LOBSTER and MBO feeds do). Built-in strategies (``strategies.STRATEGIES``) run entirely compiled; any
object with ``on_book(view)`` runs through the Python driver with the same exchange core.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from flowsense.backtest import exchange as E
from flowsense.backtest.models import (
    ConstantLatency,
    FeeModel,
    FixedBpsSlippage,
    LatencyModel,
    MakerTakerFees,
    QueueModel,
    RiskAverseQueue,
    SlippageModel,
)
from flowsense.data.schemas import TS, book_levels
from flowsense.trading.orders import (
    LIQUIDITY_NAMES,
    ORDER_TYPE_NAMES,
    REASON_NAMES,
    STATUS_NAMES,
    CancelRequest,
    Fill,
    Liquidity,
    OrderReport,
    OrderRequest,
    OrderStatus,
    RejectReason,
    ReportKind,
)
from flowsense.trading.strategy import StrategyConfig
from flowsense.trading.view import BookView

EVENT_CODES = {
    "add": E.EV_ADD,
    "cancel": E.EV_CANCEL,
    "delete": E.EV_DELETE,
    "execute_visible": E.EV_EXEC,
    "fill": E.EV_EXEC,
    "execute_hidden": E.EV_HIDDEN,
}
NO_LIMIT = 2**61


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    """Everything that shapes a run besides the data and the strategy.

    ``equity_interval_ns``: the equity curve has one row per bucket of this length (exchange time) with
    the state after the last event in the bucket, stamped with that event's ``ts``, plus a final row after
    the end-of-day orders were processed; 0 gives one row per event. ``price_scale``: price ticks per
    dollar used internally (10_000 = LOBSTER's 1/100 cent).
    """

    initial_cash: float = 1_000_000.0
    queue: QueueModel = field(default_factory=RiskAverseQueue)
    latency: LatencyModel = field(default_factory=ConstantLatency)
    fees: FeeModel = field(default_factory=MakerTakerFees)
    slippage: SlippageModel = field(default_factory=lambda: FixedBpsSlippage(1.0))
    max_position: int | None = None
    seed: int = 0
    equity_interval_ns: int = 1_000_000_000
    price_scale: int = 10_000


@dataclass(frozen=True)
class BacktestResult:
    """Orders, fills and the equity curve of one run (see module docstring for the conventions)."""

    orders: pl.DataFrame
    fills: pl.DataFrame
    equity: pl.DataFrame
    config: BacktestConfig
    strategy: str = ""
    n_events: int = 0
    wall_s: float = 0.0
    realized_pnl: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    multiplier: float = 1.0  # currency per (price x stored size unit): the instrument's, 1 for equities

    def summary(self) -> dict[str, Any]:
        """n_orders, n_fills, fill_rate (orders with at least one fill / orders), fees, final_equity,
        pnl (final equity - initial cash, after fees), turnover (traded notional, in currency: price x
        units x the contract multiplier), and a few more."""
        n_orders = self.orders.height
        filled_orders = int((self.orders["filled"] > 0).sum()) if n_orders else 0
        last = self.equity.row(-1, named=True) if self.equity.height else None
        final_equity = float(last["equity"]) if last else self.config.initial_cash
        return {
            "strategy": self.strategy,
            "n_events": self.n_events,
            "n_orders": n_orders,
            "n_fills": self.fills.height,
            "n_rejected": int((self.orders["status"] == "rejected").sum()) if n_orders else 0,
            "fill_rate": filled_orders / n_orders if n_orders else 0.0,
            "fees": float(self.fills["fee"].sum()) if self.fills.height else 0.0,
            "slippage": float(self.fills["slippage"].sum()) if self.fills.height else 0.0,
            "turnover": float((self.fills["price"] * self.fills["size"]).sum()) * self.multiplier
            if self.fills.height else 0.0,
            "final_position": int(last["position"]) if last else 0,
            "final_equity": final_equity,
            "pnl": final_equity - self.config.initial_cash,
            "realized_pnl": self.realized_pnl,
            "wall_s": self.wall_s,
            "events_per_s": self.n_events / self.wall_s if self.wall_s > 0 else float("nan"),
        }


# ----------------------------------------------------------------------------------------- preparing


def _ticks(col: pl.Series, scale: int, null: int) -> np.ndarray:
    return (col * scale).round(0).fill_null(null).cast(pl.Int64).to_numpy()


def _event_codes(col: pl.Series) -> np.ndarray:
    """Engine event codes (int8). An Enum/Categorical column is mapped through its category codes (one
    lookup per category, then a numpy gather) instead of string-replacing every row."""
    if isinstance(col.dtype, pl.Enum):
        cats = col.dtype.categories.to_list()
        lut = np.array([EVENT_CODES.get(c, E.EV_OTHER) for c in cats] + [E.EV_OTHER], dtype=np.int8)
        codes = col.to_physical().fill_null(len(cats)).to_numpy()
        return lut[codes]
    et = col.cast(pl.String).replace_strict(EVENT_CODES, default=E.EV_OTHER, return_dtype=pl.Int8)
    return et.fill_null(E.EV_OTHER).to_numpy().astype(np.int8)


def _column(frame: pl.DataFrame, name: str, dtype: pl.DataType, null: float | int) -> np.ndarray:
    """One column as a contiguous numpy array of ``dtype``, nulls replaced (zero-copy when possible)."""
    col = frame[name]
    if col.dtype != dtype:
        col = col.cast(dtype)
    if col.null_count():
        col = col.fill_null(null)
    return np.ascontiguousarray(col.to_numpy())


def _market_data(events: pl.DataFrame, book: pl.DataFrame, scale: int) -> tuple:
    """Polars tables -> the engine's arrays, once per run and vectorized: each book column is taken
    zero-copy from Polars and one compiled pass (``exchange.book_arrays``) turns them into integer ticks /
    sizes; the event type goes through the Enum's category codes."""
    if events.height != book.height:
        raise ValueError(f"events ({events.height} rows) and book ({book.height} rows) must align row by row")
    if events.height == 0:
        raise ValueError("no events to backtest")
    if "seq" in events.columns and "seq" in book.columns and not events["seq"].equals(book["seq"]):
        raise ValueError("events and book rows are not aligned by seq")
    ts = events["ts"].cast(pl.Int64).to_numpy().astype(np.int64, copy=False)
    if ts.size > 1 and bool((ts[1:] < ts[:-1]).any()):
        raise ValueError("events must be sorted by ts")
    etype = _event_codes(events["event_type"])
    eside = events["side"].fill_null(0).cast(pl.Int8).to_numpy()
    epx = _ticks(events["price"], scale, -1)
    esz = events["size"].fill_null(0).cast(pl.Int64).to_numpy()
    levels = book_levels(book.columns)
    cols = {side: (tuple(_column(book, f"{side}_px_{k + 1}", pl.Float64, float("nan")) for k in range(levels)),
                   tuple(_column(book, f"{side}_sz_{k + 1}", pl.Int64, 0) for k in range(levels)))
            for side in ("ask", "bid")}
    apx, asz, bpx, bsz = E.book_arrays(*cols["ask"], *cols["bid"], float(scale))
    c = np.ascontiguousarray
    return (c(ts), c(etype, np.int8), c(eside, np.int8), c(epx, np.int64), c(esz, np.int64), apx, asz, bpx, bsz)


def _new_sim(md: tuple, config: BacktestConfig, multiplier: float = 1.0,
             sessions: np.ndarray | None = None) -> E.Sim:
    """The run's :class:`~flowsense.backtest.exchange.Sim`: market data, settings, model parameters and
    empty tables (they grow inside the core)."""
    ts = md[0]
    feed, lat_order, lat_resp, lat_prof = config.latency.arrays()
    interval = int(config.equity_interval_ns)
    if interval <= 0 or ts.size == 0:
        n_eq = ts.size + 4
    else:  # number of distinct buckets (ts is sorted)
        b = ts // interval
        n_eq = 1 + int(np.count_nonzero(b[1:] != b[:-1])) + 4
    sess = np.zeros(0, np.int64) if sessions is None else np.ascontiguousarray(sessions, dtype=np.int64).ravel()
    if config.slippage.kind == 2 and not config.slippage.params()[2] > 0:
        raise ValueError("TickSlippage needs a tick: give tick= or run with the instrument")
    return E.new_sim(
        *md, feed, int(lat_resp.min()), interval,
        NO_LIMIT if config.max_position is None else int(config.max_position),
        float(config.price_scale), float(multiplier), sess,
        config.queue.kind, np.asarray(config.queue.params(), np.float64),
        config.fees.kind, np.asarray(config.fees.params(), np.float64),
        config.slippage.kind, np.asarray(config.slippage.params(), np.float64),
        np.ascontiguousarray(lat_order, np.int64), np.ascontiguousarray(lat_resp, np.int64),
        np.ascontiguousarray(lat_prof, np.int64), float(config.initial_cash), n_eq, 1024,
    )


# ------------------------------------------------------------------------------------------ results


def _to_ts(a: np.ndarray) -> pl.Series:
    return pl.Series(a, dtype=pl.Int64).cast(TS)


def _names(codes: np.ndarray, names: dict[int, str]) -> pl.Series:
    """Integer codes -> their names as a String series (one lookup per distinct code, not per row)."""
    lut = np.array([names[k] for k in range(max(names) + 1)], dtype=object)
    return pl.Series(lut[codes.astype(np.int64)].tolist(), dtype=pl.String)


def _frames(sim: E.Sim, config: BacktestConfig,
            multiplier: float = 1.0) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    o, f, reps, fi, ff, eq_ts, eq_f, _realized = E.tables(sim)
    scale = float(config.price_scale)
    n = o.shape[0]
    filled = o[:, E.O_FILLED]
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = np.where(filled > 0, f[:, E.OF_NOTIONAL] / np.maximum(filled, 1), np.nan)
    orders = pl.DataFrame(
        {
            "order_id": np.arange(1, n + 1, dtype=np.int64),
            "ts_submit": _to_ts(o[:, E.O_TSSUB]),
            "ts_exchange": _to_ts(o[:, E.O_TSEX]),
            "side": o[:, E.O_SIDE].astype(np.int8),
            "type": _names(o[:, E.O_TYPE], ORDER_TYPE_NAMES),
            "price": np.where(o[:, E.O_TYPE] == E.T_MARKET, np.nan, o[:, E.O_PX] / scale),
            "size": o[:, E.O_SIZE],
            "status": _names(o[:, E.O_STATUS], STATUS_NAMES),
            "filled": filled,
            "avg_price": avg,
            "fees": f[:, E.OF_FEES],
            "ts_done": _to_ts(o[:, E.O_TSDONE]),
            "reason": _names(o[:, E.O_REASON], REASON_NAMES),
            "queue_ahead_on_entry": np.where(f[:, E.OF_FRONT0] >= 0, f[:, E.OF_FRONT0], np.nan),
        }
    ).with_columns(
        pl.when(pl.col(c).dt.epoch("ns") < 0).then(None).otherwise(pl.col(c)).alias(c)
        for c in ("ts_exchange", "ts_done")
    ).with_columns(pl.col("price", "avg_price", "queue_ahead_on_entry").fill_nan(None))
    nf = fi.shape[0]
    fill_reps = reps[reps[:, E.P_KIND] == E.K_FILL]
    ts_report = np.full(nf, -1, dtype=np.int64)
    ts_report[fill_reps[:, E.P_FIDX]] = fill_reps[:, E.P_DLV]
    fills = pl.DataFrame(
        {
            "ts": _to_ts(fi[:nf, E.FI_TS]),
            "ts_report": _to_ts(ts_report),
            "order_id": fi[:nf, E.FI_OIDX] + 1,
            "side": fi[:nf, E.FI_SIDE].astype(np.int8),
            "price": ff[:nf, E.FF_PX],
            "size": fi[:nf, E.FI_QTY],
            "fee": ff[:nf, E.FF_FEE],
            "liquidity": _names(fi[:nf, E.FI_LIQ], LIQUIDITY_NAMES),
            "slippage": ff[:nf, E.FF_SLIP],
            "book_price": fi[:nf, E.FI_BOOKPX] / scale,
        }
    )
    ne = eq_ts.shape[0]
    equity = pl.DataFrame(
        {
            "ts": _to_ts(eq_ts[:ne]),
            "cash": eq_f[:ne, 0],
            "position": eq_f[:ne, 1].astype(np.int64),
            "mid": eq_f[:ne, 2],
        }
    ).with_columns(pl.col("mid").fill_nan(None)).with_columns(
        (pl.col("cash") + pl.col("position") * pl.col("mid").fill_null(0.0) * multiplier).alias("equity")
    )
    return orders, fills, equity


# ---------------------------------------------------------------------------------------- the runner


def _resolve_strategy(strategy: Any) -> Any:
    if isinstance(strategy, str):
        from flowsense.backtest.strategies import STRATEGIES

        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; built-ins: {sorted(STRATEGIES)}")
        return STRATEGIES[strategy]()
    return strategy


def run_backtest(
    events: pl.DataFrame,
    book: pl.DataFrame,
    strategy: Any,
    config: BacktestConfig = BacktestConfig(),
    progress: Callable[[float], None] | None = None,
    *,
    force_python: bool = False,
    instrument: Any = None,
) -> BacktestResult:
    """Replay one day of ``events``/``book`` through ``strategy`` under ``config``.

    ``strategy``: a built-in config (instance or name from ``STRATEGIES``; runs compiled), any other
    :class:`~flowsense.trading.StrategyConfig` (its ``create()`` runs through the Python driver), or a
    stateful object with ``on_book(view)`` (and optionally ``on_fill``, ``on_order``, ``on_end``,
    ``reset``). ``progress`` is called with the fraction of events done. ``force_python`` runs a
    built-in config's Python strategy through the Python driver (the live worker's code path).

    ``instrument`` (a :class:`flowsense.data.instruments.Instrument`): PnL, equity, fees on notional and
    turnover use its contract multiplier (and size scale); the run trades only inside its trading
    sessions - events outside them are not delivered to the strategy (so "the first event" is the first
    one of the session) and an order that reaches the exchange outside a session is rejected
    (``market_closed``); a :class:`~flowsense.backtest.models.TickSlippage` without a tick takes the
    instrument's. Without one: multiplier 1, always open (the equity conventions).
    """
    from flowsense.backtest.strategies import compiled_spec

    strategy = _resolve_strategy(strategy)
    spec = None if force_python else compiled_spec(strategy, config.price_scale)
    name = type(strategy).__name__
    if spec is None and isinstance(strategy, StrategyConfig):
        strategy = strategy.create()
    if spec is None and not hasattr(strategy, "on_book"):
        raise TypeError(f"{strategy!r} is neither a strategy config nor has on_book(view)")
    if spec is None and hasattr(strategy, "reset"):
        strategy.reset()
    t0 = time.perf_counter()
    multiplier, sessions, n_closed = 1.0, None, 0
    if instrument is not None:
        events, book, sessions, n_closed = _inside_sessions(events, book, instrument)
        multiplier = float(instrument.multiplier) / (int(instrument.size_scale) * int(instrument.price_scale))
        config = _with_instrument_tick(config, instrument)
    md = _market_data(events, book, config.price_scale)
    sim = _new_sim(md, config, multiplier, sessions)
    E.seed(int(config.seed))
    n_ev = md[0].size
    t1 = time.perf_counter()
    if spec is not None:
        _run_compiled(sim, n_ev, spec, progress)
    else:
        _run_python(sim, md[0], int(config.latency.arrays()[0]), strategy, events, book, progress,
                    config.price_scale)
    t2 = time.perf_counter()
    orders, fills, equity = _frames(sim, config, multiplier)
    t3 = time.perf_counter()
    return BacktestResult(
        orders=orders,
        fills=fills,
        equity=equity,
        config=config,
        strategy=name,
        n_events=n_ev,
        wall_s=t3 - t0,
        realized_pnl=float(E.tables(sim)[-1]),
        # seconds: tables -> arrays + state, the simulation loop, arrays -> result frames
        stats={"prepare_s": t1 - t0, "run_s": t2 - t1, "frames_s": t3 - t2, "compiled": spec is not None,
               "events_outside_sessions": n_closed},
        multiplier=multiplier,
    )


def _inside_sessions(events: pl.DataFrame, book: pl.DataFrame, instrument: Any):
    """The rows inside ``instrument``'s sessions, the session bounds as a flat sorted ``[open, close, ...]``
    array (UTC ns) for the core, and the number of rows dropped."""
    import datetime as _dt

    if instrument.always_open or events.height == 0:
        return events, book, None, 0
    ts = events["ts"].cast(pl.Int64).to_numpy()
    day0 = _dt.datetime.fromtimestamp(int(ts.min()) // 10**9, _dt.UTC).date()
    day1 = _dt.datetime.fromtimestamp(int(ts.max()) // 10**9, _dt.UTC).date()
    bounds = instrument.session_bounds(day0 - _dt.timedelta(days=2), day1 + _dt.timedelta(days=2))
    mask = instrument.open_mask(ts)
    n_closed = int(mask.size - mask.sum())
    if not mask.any():
        raise ValueError(f"no event of {instrument.symbol} lies inside its trading sessions "
                         f"({instrument.tz} {', '.join(f'{s.open}-{s.close}' for s in instrument.sessions)}); "
                         f"the market was closed for the whole of {day0}..{day1}")
    if n_closed:
        keep = pl.Series(mask)
        events, book = events.filter(keep), book.filter(keep)
    return events, book, bounds.ravel(), n_closed


def _with_instrument_tick(config: BacktestConfig, instrument: Any) -> BacktestConfig:
    from dataclasses import replace

    from flowsense.backtest.models import TickSlippage

    s = config.slippage
    if isinstance(s, TickSlippage) and s.tick == 0:
        return replace(config, slippage=replace(s, tick=float(instrument.tick_size)))
    return config


def _run_compiled(sim: E.Sim, n_ev: int, spec: tuple[int, np.ndarray], progress) -> None:
    """One call into the compiled loop (one per progress chunk when ``progress`` is given)."""
    from flowsense.backtest.builtins import run_builtin

    kind, sp = spec
    chunk = max(n_ev // 50, 1) if progress else n_ev
    stop = min(chunk, n_ev)
    while run_builtin(sim, kind, sp, stop) == 2:
        if progress:
            progress(stop / n_ev)
        stop = min(stop + chunk, n_ev)
    if progress:
        progress(1.0)


def _report_objects(sim: E.Sim, start: int, stop: int) -> list[tuple[OrderReport, Fill | None]]:
    _o, _f, rp, fi, ff, _et, _ef, _r = E.tables(sim)
    out = []
    for k in range(start, stop):
        r = rp[k]
        kind = ReportKind(int(r[E.P_KIND]))
        oid = int(r[E.P_OIDX]) + 1
        rep = OrderReport(
            ts=int(r[E.P_DLV]),
            ts_exchange=int(r[E.P_TSX]),
            order_id=oid,
            kind=kind,
            status=OrderStatus(int(r[E.P_STATUS])),
            filled=int(r[E.P_FILLED]),
            leaves=int(r[E.P_LEAVES]),
            reason=RejectReason(int(r[E.P_REASON])),
        )
        fill = None
        if kind == ReportKind.FILL:
            j = int(r[E.P_FIDX])
            fill = Fill(
                ts=int(r[E.P_DLV]),
                ts_exchange=int(fi[j, E.FI_TS]),
                order_id=oid,
                side=int(fi[j, E.FI_SIDE]),
                price=float(ff[j, E.FF_PX]),
                size=int(fi[j, E.FI_QTY]),
                fee=float(ff[j, E.FF_FEE]),
                liquidity=Liquidity(int(fi[j, E.FI_LIQ])).name.lower(),
                slippage=float(ff[j, E.FF_SLIP]),
            )
        out.append((rep, fill))
    return out


def _run_python(sim: E.Sim, ts: np.ndarray, feed: int, strategy: Any, events: pl.DataFrame, book: pl.DataFrame,
                progress, price_scale: int) -> None:
    """The Python driver: per event one call of the compiled loop
    (:func:`~flowsense.backtest.builtins.run_events` for that one event, no compiled strategy), then the
    strategy's ``on_book`` and its requests."""
    from flowsense.backtest.builtins import SK_EXTERNAL, run_events

    n_ev = ts.size
    scale = float(price_scale)
    book_cols = {c: book[c].to_numpy() for c in book.columns if c not in ("symbol", "date")}
    book_cols["ts"] = ts
    event_cols = {c: events[c].to_numpy() for c in events.columns if c not in ("symbol", "date", "event_type")}
    event_cols["ts"] = ts
    event_cols["event_type"] = events["event_type"].cast(pl.String).to_numpy()
    known, submit, cancel = E.known, E.submit, E.cancel
    no_params = np.zeros(0, np.float64)

    def known_status(order_id: int) -> OrderStatus:
        if not 1 <= order_id <= known(sim)[1]:
            raise KeyError(f"unknown order id {order_id}")
        return OrderStatus(int(E.known_status(sim, order_id - 1)))

    view = BookView(
        book_cols,
        event_cols,
        n_ev,
        known_position=lambda: int(known(sim)[0]),
        known_status=known_status,
        next_order_id=lambda: int(known(sim)[1]) + 1,
        price_scale=price_scale,
    )
    on_fill = getattr(strategy, "on_fill", None)
    on_order = getattr(strategy, "on_order", None)

    def dispatch(n_new: int) -> None:
        if n_new <= 0 or (on_fill is None and on_order is None):
            return
        cur = int(known(sim)[2])
        for rep, fill in _report_objects(sim, cur - n_new, cur):
            if on_order is not None:
                on_order(rep)
            if fill is not None and on_fill is not None:
                on_fill(fill)

    every = max(n_ev // 100, 1)
    for i in range(n_ev):
        dispatch(run_events(sim, SK_EXTERNAL, no_params, i + 1, False))
        local = int(ts[i]) + feed
        view._advance(i, local)
        reqs = strategy.on_book(view)
        for req in reqs or ():
            if isinstance(req, CancelRequest):
                if not 1 <= req.order_id <= known(sim)[1]:
                    raise KeyError(f"cancel of unknown order id {req.order_id}")
                cancel(sim, req.order_id - 1, local)
            elif isinstance(req, OrderRequest):
                px = 0 if req.price is None else round(req.price * scale)
                submit(sim, req.side, int(req.type), px, int(req.size), local)
            else:
                raise TypeError(f"strategy returned {req!r}; expected OrderRequest or CancelRequest")
        if progress and (i + 1) % every == 0:
            progress((i + 1) / n_ev)
    dispatch(E.finish_run(sim))
    if hasattr(strategy, "on_end"):
        strategy.on_end(view)
    if progress:
        progress(1.0)
