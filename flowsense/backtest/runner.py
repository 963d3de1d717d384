"""Run one backtest on a lake partition and write its report: shared by the CLI and the Dagster assets.

Output folder: ``{reports}/backtest_<symbol>_<date>_<strategy>_<UTC timestamp>/`` with ``report.html``,
``report.pdf``, ``metrics.json``, ``fills.parquet``, ``orders.parquet`` and ``equity.parquet``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from flowsense.data.lake import Lake, Partition
from flowsense.errors import FlowSenseError

US_EQUITY_MINUTES_PER_YEAR = 252 * 390


class MissingPartitionError(FlowSenseError):
    """The partition a backtest needs is not in the lake."""


@dataclass(frozen=True)
class BacktestRun:
    payload: dict[str, Any]  # JSON-able metrics + run information (what metrics.json holds)
    summary_rows: list[tuple[str, str]]  # formatted (label, value) rows for tables
    out_dir: Path
    pngs: dict[str, bytes]  # report figures, for Dagster metadata
    orders: pl.DataFrame | None = None  # the engine's order and fill tables
    fills: pl.DataFrame | None = None

    def records(self) -> dict[str, list[dict[str, Any]]]:
        """``{"orders": [...], "fills": [...]}`` as JSON-able rows (timestamps as integer ns since the
        epoch, missing values as None): what ``flowsense backtest --json`` prints and the live worker's
        parity test compares against."""
        return {"orders": frame_records(self.orders), "fills": frame_records(self.fills)}


def frame_records(frame: pl.DataFrame | None) -> list[dict[str, Any]]:
    """Rows of ``frame`` as dicts, datetimes as integer ns since the epoch, NaN as None."""
    if frame is None:
        return []
    out = frame.with_columns(pl.col(c).dt.epoch("ns") for c, t in frame.schema.items() if t.is_temporal())
    out = out.with_columns(pl.col(c).fill_nan(None) for c, t in out.schema.items() if t.is_float())
    return out.to_dicts()


def describe(obj: Any) -> Any:
    """A JSON-able description of a (nested) config dataclass."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {"model": type(obj).__name__,
                **{f.name: describe(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                   if not f.name.startswith("_")}}
    if isinstance(obj, tuple) and len(obj) > 8:
        return f"<{len(obj)} values>"
    return obj


def out_dir_for(reports: Path, symbol: str, date: dt.date, strategy: str) -> Path:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    base = reports / f"backtest_{symbol}_{date.isoformat()}_{strategy}_{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}_{k}")
    return out


FUTURES_FEE_PER_CONTRACT = 2.5  # USD per contract per side: exchange + clearing + a retail commission


def instrument_defaults(config: Any, instrument: Any, explicit: frozenset[str] | set[str] = frozenset()) -> Any:
    """``config`` with the asset class's defaults for what the user did not set explicitly.

    Futures: fees per contract (``PerShareFees(FUTURES_FEE_PER_CONTRACT, FUTURES_FEE_PER_CONTRACT)``, not
    0.08% of a notional that the multiplier makes 50x larger) and slippage that keeps every fill on a
    recorded book price (``BookWalkSlippage``: an equity's 1 bp is ~2 ES ticks and lands between price
    levels). Equities and crypto keep the engine defaults.
    """
    from dataclasses import replace

    from flowsense.backtest.models import BookWalkSlippage, PerShareFees

    if getattr(instrument, "asset_class", "") != "future":
        return config
    kw: dict[str, Any] = {}
    if "slippage" not in explicit:
        kw["slippage"] = BookWalkSlippage()
    if "fees" not in explicit:
        kw["fees"] = PerShareFees(maker=FUTURES_FEE_PER_CONTRACT, taker=FUTURES_FEE_PER_CONTRACT)
    return replace(config, **kw) if kw else config


def _instrument_params(cls: type, params: dict[str, Any], instrument: Any) -> dict[str, Any]:
    """A quoting strategy's ``tick`` defaults to the instrument's tick size."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    if "tick" in names and "tick" not in params:
        return {**params, "tick": float(instrument.tick_size)}
    return params


def _units(stored: Any, instrument: Any) -> int | float:
    q = instrument.quantity(int(stored))
    return int(q) if float(q).is_integer() else float(q)


def report_regimes(lake: Lake, symbol: str, date: dt.date, bars: pl.DataFrame) -> tuple[pl.Series, str]:
    """A regime label per report bar (``bars``: ``ts`` = bar start, ``mid``) and where the labels came from.

    In order: the partition's ``regimes`` table (``"hmm_table"``), else an HMM fitted on the symbol's
    earlier days and filtered forward over this day's 1 s bars (``"hmm_prior_days"``); a report bar gets
    the regime of the last 1 s bar that closed at or before its start (known when its return begins).
    Only without either (no table, no earlier day, no ``features_1s``, no hmmlearn) the documented fallback
    ``"rolling_vol_terciles"`` (:func:`~flowsense.backtest.walkforward.rolling_vol_regimes`, ex-post cut
    points) is used. Meanings: :data:`flowsense.models.hmm.REGIME_SOURCES`.
    """
    from flowsense.backtest.walkforward import rolling_vol_regimes

    frame, source = None, "rolling_vol_terciles"
    try:
        from flowsense.models import hmm  # lazily: hmmlearn/numba load only when a report needs regimes
    except ImportError:  # pragma: no cover - hmmlearn not installed
        hmm = None
    if hmm is not None:
        frame = hmm.table_regimes(lake, symbol, date)
        source = "hmm_table"
        if frame is None:
            frame = hmm.prior_day_regimes(lake, symbol, date, max_fit_bars=10_000)
            source = "hmm_prior_days"
    if frame is None:
        window = min(30, max(bars.height // 4, 2))
        return rolling_vol_regimes(bars["mid"], window=window), "rolling_vol_terciles"
    left = bars.select(pl.col("ts").dt.epoch("ns").alias("_t"))
    right = frame.select(pl.col("ts").dt.epoch("ns").alias("_t"), "regime").sort("_t")
    joined = left.join_asof(right, on="_t", strategy="backward")
    return joined["regime"].fill_null("warmup").rename("regime"), source


def run_partition(
    lake: Lake,
    reports: Path,
    symbol: str,
    date: dt.date,
    strategy: str,
    params: dict[str, Any],
    config: Any,
    *,
    periods_per_year: float = US_EQUITY_MINUTES_PER_YEAR,
    resample: str = "1m",
    progress: Callable[[float], None] | None = None,
    out_dir: Path | None = None,
    events: pl.DataFrame | None = None,
    book: pl.DataFrame | None = None,
    instrument: Any = None,
    explicit: frozenset[str] | set[str] = frozenset(),
) -> BacktestRun:
    """Load the partition (unless ``events`` and ``book`` are given), run the engine, compute metrics, write
    the report.

    The instrument (``instrument`` or :func:`flowsense.data.instruments.instrument_for` of ``symbol`` in
    the lake) sets the contract multiplier, the trading sessions and, for what the user did not set
    (``explicit`` names ``"slippage"``/``"fees"`` given on purpose), the defaults of its asset class
    (:func:`instrument_defaults`); a ``market_maker`` without ``tick`` quotes in the instrument's tick."""
    from flowsense.backtest.engine import run_backtest
    from flowsense.backtest.metrics import compute_metrics, jsonable
    from flowsense.backtest.report import write_report
    from flowsense.backtest.strategies import STRATEGIES
    from flowsense.backtest.walkforward import regime_metrics

    part = Partition(symbol, date)
    given = {"events": events, "book": book}
    missing = [t for t in ("events", "book") if given[t] is None and not lake.exists(t, part)]
    if missing:
        have = [p.key for p in lake.partitions("events") if p.symbol == symbol][:5]
        hint = f" (ingested for {symbol}: {', '.join(have)})" if have else ""
        raise MissingPartitionError(
            f"no {' / '.join(missing)} for {symbol} on {date} in the lake at {lake.root}{hint}; "
            f"run `flowsense ingest <files>` first (the engine needs events and a book)"
        )
    if strategy not in STRATEGIES:
        raise FlowSenseError(f"unknown strategy {strategy!r}; built-in strategies: {', '.join(STRATEGIES)}")
    events = lake.read("events", part) if events is None else events
    book = lake.read("book", part) if book is None else book
    if instrument is None:
        from flowsense.data.instruments import instrument_for

        instrument = instrument_for(symbol, lake)
    config = instrument_defaults(config, instrument, explicit)
    strat = STRATEGIES[strategy](**_instrument_params(STRATEGIES[strategy], params, instrument))
    prepare = getattr(strat, "prepare", None)
    if callable(prepare):  # a strategy that needs the day before the replay (model_signal: its predictions)
        strat = prepare(lake=lake, symbol=symbol, date=date, events=events, book=book)
    res = run_backtest(events, book, strat, config, progress=progress, instrument=instrument)

    equity = res.equity
    # metrics start from the initial cash at the first event (the engine's first row is after a bucket)
    start = pl.DataFrame({"ts": [events["ts"].min()], "equity": [float(config.initial_cash)]},
                         schema={"ts": equity["ts"].dtype, "equity": pl.Float64})
    eq_metrics = pl.concat([start, equity.select("ts", "equity", "mid")], how="diagonal_relaxed")
    metrics = compute_metrics(eq_metrics, res.fills, res.orders, periods_per_year=periods_per_year,
                              resample=resample, multiplier=res.multiplier)
    # per-regime: bars of the equity, labelled by the causally filtered HMM regimes (report_regimes)
    bars = (equity.sort("ts").group_by_dynamic("ts", every=resample).agg(pl.col("equity").last(),
                                                                          pl.col("mid").drop_nulls().last())
            .with_columns(pl.col("mid").forward_fill().backward_fill()))
    regimes, regime_source = None, None
    if bars.height > 2 and bars["mid"].null_count() < bars.height:
        labels, regime_source = report_regimes(lake, symbol, date, bars)
        rets = bars["equity"].pct_change().fill_null(0.0).fill_nan(0.0)
        regimes = regime_metrics(rets.to_numpy(), labels, periods_per_year=periods_per_year)
    engine_summary = res.summary()
    out = out_dir or out_dir_for(reports, symbol, date, strategy)
    art = write_report(
        out, equity=equity, metrics=metrics, fills=res.fills, book=book, regimes=regimes,
        params={"strategy": strategy, **params, "latency": type(config.latency).__name__,
                "queue": type(config.queue).__name__, "regime_source": regime_source or "none"},
        title=f"Backtest {symbol} {date} - {strategy}",
        subtitle=f"{engine_summary.get('n_events', 0):,} events, {engine_summary.get('n_orders', 0):,} orders, "
                 f"{engine_summary.get('n_fills', 0):,} fills",
    )
    res.fills.write_parquet(out / "fills.parquet")
    res.orders.write_parquet(out / "orders.parquet")
    equity.write_parquet(out / "equity.parquet")
    payload = {
        "symbol": symbol, "date": date.isoformat(), "strategy": strategy, "params": params,
        **metrics,
        # final position in units and net PnL (after fees) in the instrument's currency
        "position": _units(engine_summary.get("final_position", 0), instrument),
        "pnl": float(engine_summary.get("pnl", 0.0)),
        "currency": instrument.currency,
        "instrument": {k: instrument.to_dict()[k] for k in ("symbol", "venue", "asset_class", "currency",
                                                           "tick_size", "multiplier", "size_scale", "tz",
                                                           "source")},
        "engine": engine_summary,
        "config": describe(config),
        "regimes": regimes.to_dicts() if regimes is not None else [],
        "regime_source": regime_source,
        "report_dir": str(out), "report_html": str(art.html), "report_pdf": str(art.pdf),
    }
    payload = jsonable(payload)
    (out / "metrics.json").write_text(json.dumps(payload, indent=2, default=str))
    return BacktestRun(payload=payload, summary_rows=list(art.summary), out_dir=out, pngs=dict(art.pngs or {}),
                       orders=res.orders, fills=res.fills)
