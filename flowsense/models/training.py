"""Train, score and register the production models: the nightly retrain behind ``flowsense train``,
the Dagster model assets and ``bench/train.py``.

A **registered model** (``flowsense-<model>``) is one model for every symbol of the window (a pooled fit:
the training rows of all symbols, each symbol's rows kept in time order as one block, so sequence models
read their own history), so a live worker loads one predictor. It is scored by the same walk-forward as
:mod:`flowsense.models.evaluate` (folds of :func:`flowsense.models.folds.make_folds` on each symbol's
events, labels purged at the next window's start, :func:`~flowsense.models.folds.assert_not_peeking`):

1. per fold, the model is fitted on the pooled training rows (validation rows for early stopping) and
   predicts every symbol's test rows; the scored events are the out-of-sample predictions
   (``symbol, date, seq, horizon, fold, y, pred, p_up``) logged with the version and used by promotion;
2. the version registered is the **last fold's model**: its own test window (the most recent days) is
   out of sample, scored and backtestable; its training window (first training event to the last label
   it saw, ``train_window_ns`` tag) is what ``model_signal`` refuses to trade on;
3. the version is tagged with the DVC data version of the raw lake, the feature list, the folds and the
   code revision, then :func:`flowsense.models.registry.promote` decides champion/challenger;
4. its run holds ``evaluation.json``: the walk-forward rows (``model, symbol, horizon, fold, test_start,
   test_end, n, accuracy, f1, log_loss``, ``kind`` = ``model``) beside the no-fit baselines ``majority``,
   ``ofi_sign``, ``qi_sign`` on the same folds (``kind`` = ``baseline``), as ``flowsense evaluate --json``
   scores them: the table the API's models page shows.

Models registered this way: ``logit_ofi``, ``xgboost``, ``transformer``, ``graph`` (row or sequence models
whose inputs are columns of the event frame). ``hawkes`` and ``ensemble`` need per-symbol processes or
member predictions and are evaluated by ``flowsense evaluate`` but not registered.
Regime columns are left out of the registered XGBoost's inputs: a served model must not depend on an HMM
fitted per fold (the ``regimes`` table and the evaluation use them).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from flowsense.config import Settings
from flowsense.errors import FlowSenseError

REGISTRABLE = ("logit_ofi", "xgboost", "transformer", "graph")
DEFAULT_MODELS = ("logit_ofi", "xgboost")
DEFAULT_HORIZON = "next_move"


class TrainingError(FlowSenseError):
    """The window has no data, no fold fits in it, or a model cannot be trained on it."""


@dataclass(frozen=True)
class Window:
    """Which data to train on: the latest ``days`` common days of ``symbols`` (None = every day), and the
    walk-forward sizes (days as ints; durations like ``"2h"`` for single days; ``unit="events"``)."""

    symbols: tuple[str, ...] = ()
    days: int | None = None
    train: Any = 53
    val: Any = 7
    test: Any = 7
    step: Any = None
    embargo: Any = 0
    unit: str = "auto"

    def describe(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("symbols", "days", "train", "val", "test", "step", "embargo", "unit")}


@dataclass
class TrainResult:
    model: str
    version: Any  # registry.VersionInfo
    decision: Any  # registry.PromotionDecision | None
    rows: list[dict[str, Any]]
    metrics: dict[str, float]
    seconds: float
    data_version: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "version": self.version.to_dict() if self.version else None,
                "promotion": self.decision.to_dict() if self.decision else None, "metrics": self.metrics,
                "seconds": round(self.seconds, 2), "data_version": self.data_version, "rows": self.rows}


@dataclass
class WindowData:
    datas: dict[str, Any]  # symbol -> flowsense.models.dataset.SymbolData
    folds: dict[str, list[Any]]  # symbol -> [WFold]
    dates: list[dt.date]
    n_folds: int
    load_seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)


def available_dates(settings: Settings, symbols: Sequence[str]) -> list[dt.date]:
    """Days on which every symbol has ``features_tick`` (sorted)."""
    from flowsense.data.lake import Lake

    lake = Lake(settings.lake)
    parts = lake.partitions("features_tick")
    have: dict[str, set[dt.date]] = {}
    for p in parts:
        have.setdefault(p.symbol, set()).add(p.date)
    if not symbols:
        return sorted(set().union(*have.values())) if have else []
    sets = [have.get(s, set()) for s in symbols]
    return sorted(set.intersection(*sets)) if sets else []


def lake_symbols(settings: Settings) -> list[str]:
    from flowsense.data.lake import Lake

    return sorted({p.symbol for p in Lake(settings.lake).partitions("features_tick")})


def auto_window(settings: Settings, symbols: Sequence[str] = (), *, days: int = 67, quantiles: tuple[float, float]
                = (0.6, 0.7)) -> Window:
    """The nightly window: the product plan's 60-day history (53 train + 7 validation) and a 7-day test on
    the latest 67 common days when the lake has them; with 3..66 days, ``n-2 / 1 / 1`` days; with fewer,
    intraday wall-clock folds cut at the ``quantiles`` of the events' times (train to the 60 % point,
    validation to 70 %, test to the end), one fold."""
    from flowsense.data.lake import Lake

    syms = list(symbols) or lake_symbols(settings)
    dates = available_dates(settings, syms)
    if len(dates) >= days:
        return Window(tuple(syms), days, days - 14, 7, 7)
    if len(dates) >= 3:
        return Window(tuple(syms), len(dates), len(dates) - 2, 1, 1)
    if not dates:
        raise TrainingError(f"{settings.lake}: no day with features for all of {', '.join(syms) or 'any symbol'}")
    lake = Lake(settings.lake)
    dayset = set(dates)
    per: dict[str, list[np.ndarray]] = {}
    for p in lake.partitions("features_tick"):
        if p.symbol in syms and p.date in dayset:
            per.setdefault(p.symbol, []).append(lake.read("features_tick", p, columns=["ts"])["ts"].dt.epoch("ns")
                                                .to_numpy())
    ts = np.concatenate([np.concatenate(v) for v in per.values()])
    firsts = [int(min(a.min() for a in v)) for v in per.values()]
    spans = [int(max(a.max() for a in v)) + 1 - f for v, f in zip(per.values(), firsts, strict=True)]
    t0 = max(firsts)  # windows start at each symbol's first event: size them so every symbol's fit
    qa, qb = (int(np.quantile(ts, q)) for q in quantiles)
    train, val = max(qa - t0, 1), max(qb - qa, 1)
    test = min(spans) - train - val
    if test <= 0:
        raise TrainingError(f"{settings.lake}: the symbols' days barely overlap; no intraday window fits")
    return Window(tuple(syms), len(dates), f"{train}ns", f"{val}ns", f"{test}ns")


def load_window(settings: Settings, window: Window, *, graph: bool = False,
                progress: Callable[[str], None] | None = None) -> WindowData:
    """Load every symbol's events for the window and cut the walk-forward folds (same days for all)."""
    from flowsense.data.lake import Lake
    from flowsense.models.dataset import add_cross_asset, load_symbol
    from flowsense.models.folds import make_folds

    t0 = time.perf_counter()
    symbols = list(window.symbols) or lake_symbols(settings)
    if not symbols:
        raise TrainingError(f"{settings.lake}: no features_tick partitions; run `flowsense features` first")
    dates = available_dates(settings, symbols)
    if window.days is not None:
        dates = dates[-int(window.days):]
    if not dates:
        raise TrainingError(f"{settings.lake}: no day with features for all of {', '.join(symbols)}")
    lake = Lake(settings.lake)
    datas = {}
    for s in symbols:
        if progress:
            progress(f"loading {s} ({len(dates)} day(s))")
        datas[s] = load_symbol(lake, s, dates)
    if graph and len(symbols) > 1:
        add_cross_asset(datas)
    # one set of window bounds for every symbol (cut on the pooled event times), so a pooled model's
    # training data ends before every symbol's test window
    pooled = np.sort(np.concatenate([d.ts for d in datas.values()]))
    common = make_folds(pooled, window.train, window.val, window.test, window.step, embargo=window.embargo,
                        unit=window.unit)  # type: ignore[arg-type]
    folds = {s: [_rows_of(f, d.ts) for f in common] for s, d in datas.items()}
    n = min((sum(1 for f in fs if f.train.size and f.val.size and f.test.size) for fs in folds.values()), default=0)
    folds = {s: [f for f in fs if f.train.size and f.val.size and f.test.size][:n] for s, fs in folds.items()}
    if n == 0:
        raise TrainingError(
            f"no walk-forward fold fits in {len(dates)} day(s) ({dates[0]}..{dates[-1]}) with train={window.train}, "
            f"val={window.val}, test={window.test} (unit {window.unit}); use a shorter window or more days")
    return WindowData(datas, folds, dates, n, time.perf_counter() - t0)


def _rows_of(f: Any, ts: np.ndarray) -> Any:
    """The fold ``f`` (bounds in ns) applied to one symbol's sorted event times."""
    from flowsense.models.folds import WFold

    def rows(a: int, b: int) -> np.ndarray:
        return np.arange(np.searchsorted(ts, a, "left"), np.searchsorted(ts, b, "left"))

    return WFold(f.index, rows(f.train_start, f.train_end), rows(f.val_start, f.val_end),
                 rows(f.test_start, f.test_end), f.train_start, f.train_end, f.val_start, f.val_end,
                 f.test_start, f.test_end)


def _block(wd: WindowData, names: Sequence[str], attr: str, fold: int, horizon: str, purge_at: str | None
           ) -> tuple[np.ndarray, np.ndarray, list[np.ndarray], list[np.ndarray]]:
    """Pooled X / y of one window (train/val/test) of fold ``fold`` over all symbols."""
    from flowsense.models.folds import purge

    xs, ys, ends, tss = [], [], [], []
    for s, d in wd.datas.items():
        f = wd.folds[s][fold]
        rows = getattr(f, attr)
        y = d.y[horizon][rows]
        e = d.end[horizon][rows]
        if purge_at is not None:
            y = purge(y, e, getattr(f, purge_at))
        xs.append(d.X(names, rows))
        ys.append(y)
        ends.append(e)
        tss.append(d.ts[rows])
    return np.vstack(xs), np.concatenate(ys), ends, tss


def _make(name: str, wd: WindowData, params: dict[str, Any]) -> Any:
    from flowsense.models.evaluate import make_model

    params = dict(params)
    inputs = params.pop("inputs", "all")  # "tick": only columns the live worker's stream carries
    if inputs not in ("all", "tick"):
        raise TrainingError(f"{name}: inputs={inputs!r}; use 'all' or 'tick'")
    first = next(iter(wd.datas.values()))
    model = make_model(name, first, {}, **params)
    drop = ("reg_", "b1_", "m1_") if inputs == "tick" else ("reg_",)  # no per-fold regimes in a served model
    model.feature_names = [c for c in model.feature_names if not c.startswith(drop)]
    missing = {s: [c for c in model.feature_names if c not in d.frame.columns] for s, d in wd.datas.items()}
    missing = {s: m for s, m in missing.items() if m}
    if missing:
        keep = [c for c in model.feature_names if all(c not in m for m in missing.values())]
        if not keep:
            raise TrainingError(f"{name}: no input column is present for every symbol ({missing})")
        model = make_model(name, first, {}, **params)
        model.feature_names = keep
    return model


def walk_forward(name: str, wd: WindowData, horizon: str, params: dict[str, Any] | None = None,
                 progress: Callable[[str], None] | None = None) -> tuple[Any, list[dict[str, Any]], Any]:
    """Pooled walk-forward of ``name``: (last fold's model, score rows per symbol x fold, OOS frame)."""
    import polars as pl

    from flowsense.models.base import ModelError
    from flowsense.models.evaluate import score
    from flowsense.models.folds import assert_not_peeking, iso

    rows: list[dict[str, Any]] = []
    oos: list[pl.DataFrame] = []
    model = None
    for k in range(wd.n_folds):
        m = _make(name, wd, dict(params or {}))
        names = m.feature_names
        Xtr, ytr, etr, ttr = _block(wd, names, "train", k, horizon, "val_start")
        Xva, yva, eva, tva = _block(wd, names, "val", k, horizon, "test_start")
        try:
            m.fit(Xtr, ytr, Xva, yva)
        except ModelError as exc:
            raise TrainingError(f"{name} fold {k}: {exc}") from exc
        seen = [e[np.isfinite(y)] for e, y in zip(etr, np.split(ytr, np.cumsum([x.size for x in etr])[:-1]),
                                                   strict=True)]
        seen += [e[np.isfinite(y)] for e, y in zip(eva, np.split(yva, np.cumsum([x.size for x in eva])[:-1]),
                                                   strict=True)]
        seen += list(tva)
        flat = np.concatenate([s for s in seen if s.size]) if any(s.size for s in seen) else np.zeros(0, np.int64)
        first = min(int(t[0]) for t in ttr if t.size)
        m.train_window = (first, int(flat.max()) if flat.size else first)
        for s, d in wd.datas.items():
            f = wd.folds[s][k]
            assert_not_peeking(m, f)
            p = np.asarray(m.p_up(d.X(names, f.test)), dtype=np.float64).ravel()
            y = d.y[horizon][f.test]
            sc = score(y, p, probabilistic=m.probabilistic, abstains=m.abstains)
            rows.append({"model": name, "symbol": s, "horizon": horizon, "fold": k, "test_start": iso(f.test_start),
                         "test_end": iso(f.test_end), **sc})
            ok = np.isfinite(y) & np.isfinite(p)
            fr = d.frame[f.test].select("symbol", "date", "seq").filter(pl.Series(ok))
            oos.append(fr.with_columns(
                pl.lit(horizon).alias("horizon"), pl.lit(k, dtype=pl.Int32).alias("fold"),
                pl.Series("y", y[ok].astype(np.int8)), pl.Series("pred", (p[ok] > 0.5).astype(np.int8)),
                pl.Series("p_up", p[ok])))
        if progress:
            progress(f"{name} {horizon} fold {k + 1}/{wd.n_folds}")
        model = m
    frame = pl.concat(oos) if oos else None
    return model, rows, frame


EVAL_BASELINES = ("majority", "ofi_sign", "qi_sign")


def baseline_rows(wd: WindowData, horizon: str) -> list[dict[str, Any]]:
    """The no-fit baselines on the same symbols x folds x test events as the walk-forward (scored like
    ``flowsense evaluate``: majority of each symbol's training labels, ``ofi_sign``, ``qi_sign``)."""
    from flowsense.models.base import ModelError
    from flowsense.models.evaluate import _row, fit_model, make_model

    rows: list[dict[str, Any]] = []
    for s, d in wd.datas.items():
        for k in range(wd.n_folds):
            f = wd.folds[s][k]
            for name in EVAL_BASELINES:
                m = make_model(name, d)
                if any(c not in d.frame.columns for c in m.feature_names):
                    continue
                try:
                    fit_model(m, d, f, horizon)
                except ModelError:
                    continue
                row = _row(name, m, s, horizon, f, d.y[horizon][f.test], m.p_up(d.X(m.feature_names, f.test)))
                rows.append({**row, "fold": k, "kind": "baseline"})
    return rows


def pooled_metrics(oos: Any, rows: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Aggregate out-of-sample scores over every symbol and fold."""
    out: dict[str, float] = {}
    if oos is None or oos.height == 0:
        return out
    y = oos["y"].to_numpy().astype(np.float64)
    p = oos["p_up"].to_numpy()
    pred = (p > 0.5).astype(np.float64)
    out["n"] = float(y.size)
    out["accuracy"] = float((pred == y).mean())
    q = np.clip(p, 1e-6, 1 - 1e-6)
    out["log_loss"] = float(-np.mean(y * np.log(q) + (1 - y) * np.log(1 - q)))
    f1s = []
    for c in (1.0, 0.0):
        tp = float(np.sum((pred == c) & (y == c)))
        fp = float(np.sum((pred == c) & (y != c)))
        fn = float(np.sum((pred != c) & (y == c)))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    out["f1"] = float(np.mean(f1s))
    out["up_share"] = float(y.mean())
    out["majority_accuracy_oos"] = float(max(y.mean(), 1 - y.mean()))  # hindsight: an upper bound on majority
    return out


def _fold_metrics(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    by: dict[int, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(int(r["fold"]), []).append(r)
    out = []
    for k, rs in sorted(by.items()):
        n = sum(int(r.get("n") or 0) for r in rs)
        acc = sum((r.get("accuracy") or 0.0) * int(r.get("n") or 0) for r in rs) / n if n else None
        out.append({"fold": k, "n": n, "accuracy": acc})
    return out


def _fold_plot(rows: Sequence[dict[str, Any]]) -> bytes:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3))
    for s in sorted({r["symbol"] for r in rows}):
        rs = sorted((r for r in rows if r["symbol"] == s), key=lambda r: r["fold"])
        ax.plot([r["fold"] for r in rs], [r.get("accuracy") or np.nan for r in rs], marker="o", label=s)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("fold")
    ax.set_ylabel("out-of-sample accuracy")
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _ts_iso(ns: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC)


def train_model(name: str, wd: WindowData, settings: Settings, *, horizon: str = DEFAULT_HORIZON,
                params: dict[str, Any] | None = None, data_version: str | None = None, promote: bool = True,
                alpha: float = 0.05, window: Window | None = None,
                progress: Callable[[str], None] | None = None) -> TrainResult:
    """Walk-forward, log, register and (optionally) promote one model on a loaded window."""
    from flowsense.models import registry

    if name not in REGISTRABLE:
        raise TrainingError(f"model {name!r} is not registrable; choose from {', '.join(REGISTRABLE)}")
    t0 = time.perf_counter()
    model, rows, oos = walk_forward(name, wd, horizon, params, progress)
    metrics = pooled_metrics(oos, rows)
    first = next(iter(wd.folds))
    last_fold = wd.folds[first][wd.n_folds - 1]
    importances = {}
    gain = (getattr(model, "info", {}) or {}).get("importance_gain")
    if isinstance(gain, dict):
        importances = {str(k): float(v) for k, v in gain.items()}
    tw = model.train_window
    info = registry.log_version(
        model, model_type=name, feature_names=model.feature_names, horizon=horizon, data_version=data_version,
        train_start=_ts_iso(tw[0]), train_end=_ts_iso(tw[1]), symbols=list(wd.datas),
        folds=[f.describe() for f in wd.folds[first][: wd.n_folds]],
        params={**(model.params or {}), "window": (window or Window()).describe(), "horizon": horizon},
        metrics=metrics, fold_metrics=_fold_metrics(rows), oos=oos, figures={"fold_accuracy": _fold_plot(rows)},
        importances=importances,
        evaluation=[*({**r, "kind": "model"} for r in rows), *baseline_rows(wd, horizon)],
        extra_tags={"train_window_ns": f"{tw[0]},{tw[1]}", "last_test_start": str(last_fold.test_start),
                    "last_test_end": str(last_fold.test_end), "model_class": f"{type(model).__module__}"},
        settings=settings,
    )
    decision = registry.promote(name, info.version, alpha=alpha, settings=settings) if promote else None
    return TrainResult(name, registry.resolve(f"{info.name}/{info.version}", settings), decision, rows, metrics,
                       time.perf_counter() - t0, data_version)


def train(settings: Settings, window: Window, *, models: Sequence[str] = DEFAULT_MODELS,
          horizon: str = DEFAULT_HORIZON, params: dict[str, dict[str, Any]] | None = None, promote: bool = True,
          alpha: float = 0.05, version_data: bool = True,
          progress: Callable[[str], None] | None = None) -> list[TrainResult]:
    """The nightly retrain: snapshot the raw data (DVC), load the window, train/register/promote each model."""
    from flowsense.models import dataversion

    bad = [m for m in models if m not in REGISTRABLE]
    if bad:
        raise TrainingError(f"unknown or unregistrable model(s) {', '.join(bad)}; choose from {', '.join(REGISTRABLE)}")
    dv = dataversion.snapshot(settings).id if version_data else None
    wd = load_window(settings, window, graph="graph" in models, progress=progress)
    return [train_model(m, wd, settings, horizon=horizon, params=(params or {}).get(m, {}), data_version=dv,
                        promote=promote, alpha=alpha, window=window, progress=progress) for m in models]
