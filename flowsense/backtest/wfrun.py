"""The bar-level walk-forward of one lake partition (``flowsense walkforward``): built-in strategies, a
registered model's out-of-sample predictions, baselines, costs and per-regime results.

Strategies (:data:`BAR_STRATEGIES`), each decided at a bar's close and held from the next bar
(:func:`flowsense.backtest.walkforward.walk_forward`: one-bar delay, flat into each test window):

* ``ofi_ridge``: :class:`~flowsense.backtest.predictors.OfiLinearPredictor` fitted on each fold's training
  bars; long/short on the sign of the predicted next-bar return when it exceeds the round's cost
  (``fee_rate + slippage_bps``);
* ``ofi_threshold``: the event strategy's rule on bars (:class:`~flowsense.trading.strategies.OfiThreshold`
  ``threshold`` and ``window_ns``): the OFI summed over the trailing window of bars; long above
  ``threshold``, short below ``-threshold``, flat when it turns against the position, else hold;
* ``model_signal``: a registered model (``model=flowsense-xgboost@champion``): ``P(up)`` of each bar's last
  event (:func:`~flowsense.trading.strategies.model_signal.bar_predictions`); long at ``>= threshold``,
  short at ``<= 1 - threshold``, else hold. Nothing is fitted per fold (the model was trained before), and
  **a fold whose test window overlaps the version's training window is refused**
  (:class:`~flowsense.trading.strategies.model_signal.ModelWindowError`, one line) before anything runs.

Baselines: ``flat``, ``buy_and_hold``, ``last_return_sign`` on the same windows. Per-regime results use
the causally filtered HMM regimes: the partition's ``regimes`` table when present (``regime_source`` =
``hmm_table``), else an HMM fitted on each fold's training bars and filtered forward through its test
bars (``hmm_fold_train``); rolling-volatility terciles only when neither works (``rolling_vol_terciles``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from flowsense.backtest.walkforward import WalkForwardResult, make_folds, rolling_vol_regimes, walk_forward
from flowsense.data.lake import Lake, Partition
from flowsense.errors import ConfigError, FlowSenseError

DEFAULT_FEE_RATE = 0.0008  # = MakerTakerFees().taker_rate, 0.08 %
DEFAULT_SLIPPAGE_BPS = 1.0  # = FixedBpsSlippage().bps


@dataclass(frozen=True, slots=True)
class OfiRidge:
    """Ridge regression of the next bar's return on OFI features, refitted on each fold's training bars."""

    ridge: float = 1.0

    def validate(self) -> None:
        if not self.ridge >= 0:
            raise ConfigError(f"ofi_ridge: ridge must be >= 0, got {self.ridge}")


def _strategy_classes() -> dict[str, type]:
    from flowsense.trading.strategies import ModelSignal, OfiThreshold

    return {"ofi_ridge": OfiRidge, "ofi_threshold": OfiThreshold, "model_signal": ModelSignal}


BAR_STRATEGIES = ("ofi_ridge", "ofi_threshold", "model_signal")


def strategy_config(name: str, params: Mapping[str, Any]) -> Any:
    """The validated config of a bar strategy (unknown names or parameters raise :class:`ConfigError`)."""
    classes = _strategy_classes()
    if name not in classes:
        raise ConfigError(f"unknown walk-forward strategy {name!r}; have {', '.join(BAR_STRATEGIES)}")
    cls = classes[name]
    known = {f.name for f in dataclasses.fields(cls)}
    bad = [k for k in params if k not in known]
    if bad:
        raise ConfigError(f"{name}: unknown parameter(s) {', '.join(bad)}; parameters: {', '.join(sorted(known))}")
    cfg = cls(**params)
    if isinstance(cfg, OfiRidge):
        cfg.validate()
    return cfg


def _hold(signal: np.ndarray, against: np.ndarray | None = None) -> np.ndarray:
    """Positions from signals (+1 / -1 / 0 = none): keep the last signal; flat where ``against`` (the raw
    indicator) turns against the position."""
    out = np.zeros(signal.size)
    pos = 0.0
    for i, s in enumerate(signal):
        if s != 0:
            pos = float(s)
        elif against is not None and ((pos > 0 and against[i] < 0) or (pos < 0 and against[i] > 0)):
            pos = 0.0
        out[i] = pos
    return out


def _column(name: str) -> Callable[[pl.DataFrame], Callable[[pl.DataFrame], np.ndarray]]:
    """A ``fit`` that learns nothing: the predictor reads a precomputed column of the test rows."""
    def fit(train: pl.DataFrame) -> Callable[[pl.DataFrame], np.ndarray]:
        return lambda frame: frame[name].cast(pl.Float64).to_numpy()

    return fit


@dataclass
class WalkForwardRun:
    result: WalkForwardResult
    payload: dict[str, Any]
    out_dir: Path | None


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat().replace("+00:00", "Z")


def run_walkforward(
    lake: Lake,
    symbol: str,
    date: dt.date,
    strategies: Mapping[str, Mapping[str, Any]],
    *,
    clock: str = "1s",
    train: str = "2h",
    test: str = "30m",
    fee_rate: float = DEFAULT_FEE_RATE,
    slippage_bps: float = DEFAULT_SLIPPAGE_BPS,
    periods_per_year: float | None = None,
    reports: Path | None = None,
    settings: Any = None,
) -> WalkForwardRun:
    """Walk forward ``strategies`` (name -> parameters) on the ``features_<clock>`` bars of one partition."""
    from flowsense.backtest.predictors import OfiLinearPredictor
    from flowsense.trading.strategies.model_signal import ModelWindowError, bar_predictions, training_window

    if not strategies:
        raise ConfigError("no walk-forward strategy given")
    configs = {name: strategy_config(name, params) for name, params in strategies.items()}
    part = Partition(symbol, date)
    table = f"features_{clock}"
    if not lake.exists(table, part):
        raise FlowSenseError(f"no {table} for {symbol} on {date} in {lake.root}; run `flowsense features --symbol "
                             f"{symbol} --date {date}` first")
    bars = lake.read(table, part).sort("ts")
    if "partial" in bars.columns:
        bars = bars.filter(~pl.col("partial"))
    bars = bars.filter(pl.col("mid_close").is_not_null())
    folds = make_folds(bars["ts"], train, test)
    if not folds:
        raise FlowSenseError(f"{symbol} {date}: no walk-forward fold of train {train} / test {test} fits in the "
                             f"{bars.height} {clock} bars")
    band = fee_rate + slippage_bps * 1e-4
    fits: dict[str, Any] = {}
    to_pos: dict[str, Callable[[np.ndarray], np.ndarray]] = {}
    model_info: dict[str, Any] | None = None
    for name, cfg in configs.items():
        if name == "ofi_ridge":
            fits[name] = OfiLinearPredictor(ridge=cfg.ridge)
            to_pos[name] = lambda pred, band=band: np.where(np.abs(pred) > band, np.sign(pred), 0.0)
        elif name == "ofi_threshold":
            ts = bars["ts"].dt.epoch("ns").to_numpy()
            bar_ns = int(np.median(np.diff(ts))) if ts.size > 1 else 1
            w = max(1, round(cfg.window_ns / max(bar_ns, 1)))
            ofi = bars["ofi_l1"].cast(pl.Float64).fill_null(0.0).fill_nan(0.0).rolling_sum(w, min_samples=1)
            bars = bars.with_columns(ofi.alias("_ofi_window"))
            fits[name] = _column("_ofi_window")
            to_pos[name] = lambda v, t=float(cfg.threshold): _hold(np.where(v > t, 1.0, np.where(v < -t, -1.0, 0.0)),
                                                                 against=v)
        elif name == "model_signal":
            p, info = bar_predictions(cfg.model, lake, symbol, date, bars, settings)
            window = training_window(info)
            if window is None:
                raise ModelWindowError(f"{info.uri}: no training window recorded; cannot prove any walk-forward "
                                       "test window is out of sample")
            a, b = window
            for f in folds:  # every test window must lie outside the model's training window
                if f.test_start <= b and f.test_end >= a:
                    raise ModelWindowError(
                        f"{info.name} v{info.version} was trained on {_iso(a)}..{_iso(b)}, which overlaps walk-forward "
                        f"fold {f.index}'s test window {_iso(f.test_start)}..{_iso(f.test_end)} ({symbol} {date}): "
                        f"walk forward after {_iso(b)} or use a version trained earlier")
            bars = bars.with_columns(pl.Series("_p_model_signal", p))
            fits[name] = _column("_p_model_signal")
            to_pos[name] = lambda pr, t=float(cfg.threshold): _hold(
                np.where(pr >= t, 1.0, np.where(pr <= 1.0 - t, -1.0, 0.0)))
            model_info = {"name": info.name, "version": info.version, "uri": info.uri,
                          "train_window": [_iso(a), _iso(b)], "data_version": info.data_version,
                          "folds": info.folds, "predicted_bars": int(np.isfinite(p).sum())}
    labels, regime_source = walkforward_regimes(lake, symbol, date, bars, folds)
    if periods_per_year is None:
        ts = bars["ts"].dt.epoch("ns").to_numpy()
        bar_s = float(np.median(np.diff(ts))) / 1e9 if ts.size > 1 else 1.0
        periods_per_year = 252 * 23_400 / max(bar_s, 1e-9)
    result = walk_forward(bars, fits, folds=folds, price_col="mid_close", to_position=to_pos, regime=labels,
                          regime_source=regime_source, fee_rate=fee_rate, slippage_bps=slippage_bps,
                          periods_per_year=periods_per_year)
    payload: dict[str, Any] = {
        "symbol": symbol, "date": date.isoformat(), "clock": clock, "train": train, "test": test,
        "fee_rate": fee_rate, "slippage_bps": slippage_bps, "periods_per_year": periods_per_year,
        "strategies": {n: _describe(c) for n, c in configs.items()}, "model": model_info,
        "regime_source": regime_source, "folds": [f.describe() for f in result.folds],
        "summary": result.summary.to_dicts(), "fold_metrics": result.fold_metrics.to_dicts(),
        "regimes": result.regimes.to_dicts() if result.regimes is not None else [],
    }
    out_dir = None
    if reports is not None:
        from flowsense.backtest.metrics import jsonable

        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        out_dir = reports / f"walkforward_{symbol}_{date.isoformat()}_{'+'.join(configs)}_{stamp}"
        k = 1
        while out_dir.exists():
            k += 1
            out_dir = out_dir.with_name(f"{out_dir.name.split('__')[0]}__{k}")
        out_dir.mkdir(parents=True)
        result.oos.write_parquet(out_dir / "oos.parquet")
        payload["report_dir"] = str(out_dir)
        payload = jsonable(payload)
        (out_dir / "summary.json").write_text(json.dumps(payload, indent=2, default=str))
    return WalkForwardRun(result, payload, out_dir)


def _describe(cfg: Any) -> dict[str, Any]:
    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if not f.name.startswith("_")}


def walkforward_regimes(lake: Lake, symbol: str, date: dt.date, bars: pl.DataFrame, folds: list[Any]
                        ) -> tuple[np.ndarray, str]:
    """A regime label per bar and its source (see the module docstring): ``hmm_table``, ``hmm_fold_train``
    or the fallback ``rolling_vol_terciles``."""
    try:
        from flowsense.models import hmm  # lazily: hmmlearn loads only when regimes are needed
    except ImportError:  # pragma: no cover - hmmlearn not installed
        hmm = None
    if hmm is not None:
        frame = hmm.table_regimes(lake, symbol, date)
        if frame is not None:
            left = bars.select(pl.col("ts").dt.epoch("ns").alias("_t"))
            right = frame.select(pl.col("ts").dt.epoch("ns").alias("_t"), "regime").sort("_t")
            got = left.join_asof(right, on="_t", strategy="backward")["regime"].fill_null("warmup")
            return np.asarray(got.to_list(), dtype=object), "hmm_table"
        labels = hmm.fold_regimes(bars, folds)
        if labels is not None:
            return labels, "hmm_fold_train"
    window = min(300, max(bars.height // 10, 2))
    return np.asarray(rolling_vol_regimes(bars["mid_close"], window=window).to_list(), dtype=object), \
        "rolling_vol_terciles"
