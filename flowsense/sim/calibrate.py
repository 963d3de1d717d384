"""Fit the simulator's parameters once from the real LOBSTER sample files and write ``params.json``.

Run ``python -m flowsense.sim.calibrate [DATA_DIR]`` (default ``/work/shared/data/lobster_2012-06-21``).
Only summary numbers are written (a few hundred), never the data.

What is measured, and from which files:

* message mix, event rate, add/marketable size distributions, add distance from the best, in-spread
  improvement probabilities, partial-cancel fractions, book depth and the Hawkes fit come from the
  deep files (GOOG level 10, AMZN level 5): level-1 files only hold top-of-book events, so their mix is
  not comparable;
* the intraday profile, spreads, prices, 1-minute volatility and the cross-symbol 1-minute mid-return
  correlation use every symbol (AAPL level 1, AMZN level 5, GOOG level 10).

Event definitions for the Hawkes fit (4 dimensions): ``add`` (type 1), ``cancel`` (types 2, 3),
``buy``/``sell`` marketable orders (all type 4/5 rows with one timestamp and one aggressor side are one
marketable order). The kernel is ``alpha[i, j] * beta * exp(-beta * dt)`` (so ``alpha`` is the branching
matrix) with one decay ``beta`` and a baseline ``mu[i] * s(t)`` where ``s`` is the intraday profile.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import numpy as np
import polars as pl
from numba import njit
from scipy.optimize import minimize

DATA_DIR = Path("/work/shared/data/lobster_2012-06-21")
PARAMS_PATH = Path(__file__).with_name("params.json")
OPEN_S, CLOSE_S = 34_200.0, 57_600.0
TICK = 100  # $0.01 in LOBSTER price units (dollars x 10000)
N_PROFILE_BINS = 13  # 30-minute bins
DEEP_FILES = ("GOOG_2012-06-21_10", "AMZN_2012-06-21_5")
ALL_FILES = ("AAPL_2012-06-21_1", "AMZN_2012-06-21_5", "GOOG_2012-06-21_10")
MAX_DIST = 40  # add distances >= MAX_DIST ticks are pooled into a geometric tail
N_TOP_SIZES = 16


def load(data_dir: Path, stem: str) -> tuple[pl.DataFrame, np.ndarray]:
    """Messages (polars) and the orderbook (int64 matrix) of one ``SYMBOL_DATE_LEVEL`` sample zip."""
    zpath = data_dir / f"LOBSTER_SampleFile_{stem}.zip"
    symbol, date, level = stem.split("_")
    base = f"{symbol}_{date}_34200000_57600000"
    with zipfile.ZipFile(zpath) as zf:
        msg_b = zf.read(f"{base}_message_{level}.csv")
        book_b = zf.read(f"{base}_orderbook_{level}.csv")
    msg = pl.read_csv(
        msg_b, has_header=False, new_columns=["time", "type", "order_id", "size", "price", "direction"]
    )
    book = pl.read_csv(book_b, has_header=False).to_numpy().astype(np.int64)
    return msg, book


def event_table(msg: pl.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Hawkes events: (times, dims, sizes); marketable orders are grouped by (timestamp, aggressor side)."""
    t = msg["time"].to_numpy()
    ty = msg["type"].to_numpy()
    dr = msg["direction"].to_numpy()
    sz = msg["size"].to_numpy()
    times: list[float] = []
    dims: list[int] = []
    sizes: list[int] = []
    i, n = 0, len(t)
    while i < n:
        if ty[i] == 1:
            times.append(t[i])
            dims.append(0)
            sizes.append(int(sz[i]))
            i += 1
        elif ty[i] in (2, 3):
            times.append(t[i])
            dims.append(1)
            sizes.append(int(sz[i]))
            i += 1
        elif ty[i] in (4, 5):
            j, tot = i, 0
            while j < n and ty[j] in (4, 5) and t[j] == t[i] and dr[j] == dr[i]:
                tot += int(sz[j])
                j += 1
            times.append(t[i])
            dims.append(2 if dr[i] == -1 else 3)  # a resting sell executed -> buyer-initiated
            sizes.append(tot)
            i = j
        else:
            i += 1
    return np.asarray(times), np.asarray(dims, dtype=np.int64), np.asarray(sizes, dtype=np.int64)


def profile_of(times: np.ndarray) -> np.ndarray:
    """Event counts in 30-minute bins, normalised to mean 1."""
    counts, _ = np.histogram(times, bins=N_PROFILE_BINS, range=(OPEN_S, CLOSE_S))
    return counts / counts.mean()


def profile_value(prof: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Piecewise-constant profile value at times ``t`` (seconds after midnight)."""
    k = np.clip(((t - OPEN_S) / (CLOSE_S - OPEN_S) * len(prof)).astype(np.int64), 0, len(prof) - 1)
    return prof[k]


@njit(cache=True)
def _hawkes_nll(times, dims, base, mu, alpha, beta, compensator_base):  # pragma: no cover - numba
    d = mu.shape[0]
    exc = np.zeros(d)
    ll = 0.0
    last = times[0]
    n = times.shape[0]
    for k in range(n):
        dt = times[k] - last
        decay = np.exp(-beta * dt)
        for i in range(d):
            exc[i] *= decay
        j = dims[k]
        lam = mu[j] * base[k] + beta * exc[j]
        ll += np.log(lam)
        for i in range(d):
            exc[i] += alpha[i, j]
        last = times[k]
    # compensator: baseline part + kernel part (each event contributes alpha[i, j] * (1 - exp(-beta (T - t))))
    comp = 0.0
    for i in range(d):
        comp += mu[i] * compensator_base
    tend = times[n - 1]
    for k in range(n):
        j = dims[k]
        f = 1.0 - np.exp(-beta * (tend - times[k]))
        for i in range(d):
            comp += alpha[i, j] * f
    return comp - ll


def fit_hawkes(times: np.ndarray, dims: np.ndarray, prof: np.ndarray) -> dict[str, object]:
    """Exponential-kernel multivariate Hawkes MLE (common decay), baseline ``mu * profile(t)``."""
    d = 4
    times = times - OPEN_S
    base = profile_value(prof, times + OPEN_S)
    horizon = CLOSE_S - OPEN_S
    compensator_base = float(prof.mean() * horizon)  # integral of the (piecewise-constant) profile
    counts = np.bincount(dims, minlength=d).astype(float)

    def unpack(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        return np.exp(x[:d]), np.exp(x[d : d + d * d]).reshape(d, d), float(np.exp(x[-1]))

    def nll(x: np.ndarray) -> float:
        mu, alpha, beta = unpack(x)
        return float(_hawkes_nll(times, dims, base, mu, alpha, beta, compensator_base))

    x0 = np.concatenate([np.log(counts / horizon * 0.3), np.full(d * d, np.log(0.15)), [np.log(5.0)]])
    res = minimize(nll, x0, method="L-BFGS-B", bounds=[(-12, 8)] * d + [(-12, 1)] * (d * d) + [(-3, 9)])
    mu, alpha, beta = unpack(res.x)
    return {
        "mu": mu.tolist(),
        "alpha": alpha.tolist(),
        "beta": beta,
        "spectral_radius": float(np.max(np.abs(np.linalg.eigvals(alpha)))),
        "converged": bool(res.success),
    }


def top_sizes(sizes: np.ndarray) -> dict[str, object]:
    """The most common sizes with their probabilities, the rest as a log-normal tail."""
    vals, cnt = np.unique(sizes[sizes > 0], return_counts=True)
    order = np.argsort(-cnt)[:N_TOP_SIZES]
    top_v, top_c = vals[order], cnt[order]
    rest = sizes[(sizes > 0) & ~np.isin(sizes, top_v)]
    logs = np.log(rest) if rest.size else np.array([np.log(100.0)])
    total = float((sizes > 0).sum())
    return {
        "values": [int(v) for v in top_v],
        "probs": [round(float(c) / total, 6) for c in top_c],
        "tail_prob": round(rest.size / total, 6),
        "tail_log_mean": round(float(logs.mean()), 4),
        "tail_log_std": round(float(logs.std() + 1e-3), 4),
        "mean": round(float(sizes[sizes > 0].mean()), 2),
    }


def add_placement(msg: pl.DataFrame, book: np.ndarray) -> dict[str, object]:
    """Distance of new limit orders from the same-side best (ticks), and in-spread improvement stats."""
    ty = msg["type"].to_numpy()
    dr = msg["direction"].to_numpy()
    px = msg["price"].to_numpy()
    rows = np.flatnonzero(ty == 1)
    rows = rows[rows > 0]
    prev = book[rows - 1]
    ask, bid = prev[:, 0], prev[:, 2]
    ok = (np.abs(ask) < 9_999_999_999) & (np.abs(bid) < 9_999_999_999)
    rows, ask, bid = rows[ok], ask[ok], bid[ok]
    d = dr[rows]
    p = px[rows]
    spread = (ask - bid) // TICK
    same_best = np.where(d == 1, bid, ask)
    dist = np.where(d == 1, same_best - p, p - same_best) // TICK  # >=0 behind/at best, <0 improves
    behind = dist[dist >= 0]
    pmf = np.bincount(np.minimum(behind, MAX_DIST), minlength=MAX_DIST + 1).astype(float)
    pmf /= pmf.sum()
    tail = behind[behind >= MAX_DIST] - MAX_DIST
    p_improve = []
    for s in range(2, 21):
        sel = spread == s if s < 20 else spread >= 20
        p_improve.append(round(float((dist[sel] < 0).mean()) if sel.any() else 0.0, 5))
    imp = dist < 0
    frac = (-dist[imp]) / spread[imp]
    hist, _ = np.histogram(frac, bins=10, range=(0.0, 1.0))
    return {
        "dist_pmf": [round(float(x), 6) for x in pmf[:MAX_DIST]],
        "dist_tail_prob": round(float(pmf[MAX_DIST]), 6),
        "dist_tail_mean": round(float(tail.mean()) if tail.size else 10.0, 3),
        "p_improve_by_spread": p_improve,
        "improve_frac_hist": [round(float(x), 5) for x in hist / hist.sum()],
    }


def cancel_placement(msg: pl.DataFrame, book: np.ndarray) -> dict[str, object]:
    """Distance (ticks) of cancelled/deleted orders from the same-side best just before the cancel."""
    ty = msg["type"].to_numpy()
    rows = np.flatnonzero((ty == 2) | (ty == 3))
    rows = rows[rows > 0]
    prev = book[rows - 1]
    d = msg["direction"].to_numpy()[rows]
    p = msg["price"].to_numpy()[rows]
    same_best = np.where(d == 1, prev[:, 2], prev[:, 0])
    ok = np.abs(same_best) < 9_999_999_999
    dist = (np.where(d == 1, same_best - p, p - same_best) // TICK)[ok]
    dist = dist[dist >= 0]
    pmf = np.bincount(np.minimum(dist, MAX_DIST), minlength=MAX_DIST + 1).astype(float)
    pmf /= pmf.sum()
    tail = dist[dist >= MAX_DIST] - MAX_DIST
    return {
        "dist_pmf": [round(float(x), 6) for x in pmf[:MAX_DIST]],
        "dist_tail_prob": round(float(pmf[MAX_DIST]), 6),
        "dist_tail_mean": round(float(tail.mean()) if tail.size else 10.0, 3),
    }


def cancel_fractions(msg: pl.DataFrame) -> list[float]:
    """Histogram (10 bins) of partial-cancel size / remaining size, for orders added within the file."""
    rem: dict[int, int] = {}
    fracs: list[float] = []
    for ty, oid, sz in zip(
        msg["type"].to_list(), msg["order_id"].to_list(), msg["size"].to_list(), strict=True
    ):
        if ty == 1:
            rem[oid] = sz
        elif oid in rem:
            if ty == 2 and rem[oid] > 0:
                fracs.append(min(sz / rem[oid], 0.999))
            rem[oid] -= sz
    hist, _ = np.histogram(np.asarray(fracs or [0.5]), bins=10, range=(0.0, 1.0))
    return [round(float(x), 5) for x in hist / hist.sum()]


def mid_1min(msg: pl.DataFrame, book: np.ndarray) -> np.ndarray:
    """Last mid price in each minute of the session (dollars), forward-filled."""
    t = msg["time"].to_numpy()
    ask, bid = book[:, 0].astype(float), book[:, 2].astype(float)
    ok = (np.abs(ask) < 9e9) & (np.abs(bid) < 9e9)
    mid = np.where(ok, (ask + bid) / 2 / 10_000, np.nan)
    minute = np.clip(((t - OPEN_S) // 60).astype(np.int64), 0, 389)
    out = np.full(390, np.nan)
    for m, v in zip(minute, mid, strict=True):
        if not np.isnan(v):
            out[m] = v
    return (
        pl.Series(out).fill_null(strategy="forward").fill_nan(None).fill_null(strategy="forward").to_numpy()
    )


def calibrate(data_dir: Path = DATA_DIR) -> dict[str, object]:
    """Measure every parameter from ``data_dir`` and return the params dict (see module docstring)."""
    loaded = {stem: load(data_dir, stem) for stem in ALL_FILES}
    per_symbol: dict[str, dict[str, object]] = {}
    profiles, mids = [], {}
    for stem, (msg, book) in loaded.items():
        sym = stem.split("_")[0]
        times, _dims, _ = event_table(msg)
        profiles.append(profile_of(times))
        ask, bid = book[:, 0], book[:, 2]
        ok = (np.abs(ask) < 9_999_999_999) & (np.abs(bid) < 9_999_999_999)
        spread = (ask[ok] - bid[ok]) / TICK
        mids[sym] = mid_1min(msg, book)
        rets = np.diff(np.log(mids[sym]))
        per_symbol[sym] = {
            "file": f"LOBSTER_SampleFile_{stem}.zip",
            "messages": int(msg.height),
            "open_price": round(float(mids[sym][0]), 2),
            "mean_spread_ticks": round(float(spread.mean()), 3),
            "median_spread_ticks": float(np.median(spread)),
            "ret_1min_std": round(float(np.nanstd(rets)), 6),
            "type_mix": {str(k): round(float((msg["type"] == k).mean()), 5) for k in (1, 2, 3, 4, 5)},
        }
    syms = sorted(mids)
    rets = np.vstack([np.diff(np.log(mids[s])) for s in syms])
    corr = np.corrcoef(rets)
    pairs = {
        f"{a}-{b}": round(float(corr[i, j]), 4)
        for i, a in enumerate(syms)
        for j, b in enumerate(syms)
        if i < j
    }
    profile = np.mean(profiles, axis=0)

    deep = [loaded[s] for s in DEEP_FILES]
    all_msg = pl.concat([m for m, _ in deep])
    mix = {str(k): round(float((all_msg["type"] == k).mean()), 5) for k in (1, 2, 3, 4, 5)}
    ev = [event_table(m) for m, _ in deep]
    add_sizes = np.concatenate([m.filter(pl.col("type") == 1)["size"].to_numpy() for m, _ in deep])
    mkt_sizes = np.concatenate([s[d >= 2] for _, d, s in ev])
    n_events = np.mean([len(t) for t, _, _ in ev])
    exec_rows = sum(int(m["type"].is_in([4, 5]).sum()) for m, _ in deep)
    hidden_rows = sum(int((m["type"] == 5).sum()) for m, _ in deep)
    n_mkt = sum(int((d >= 2).sum()) for _, d, _ in ev)
    # hidden share per marketable order: fraction of marketable orders that are pure hidden prints
    hidden_orders = 0
    for m, _ in deep:
        g = (
            m.with_row_index()
            .filter(pl.col("type").is_in([4, 5]))
            .group_by(["time", "direction"])
            .agg(pl.col("type").min().alias("tmin"))
        )
        hidden_orders += int((g["tmin"] == 5).sum())
    depth = []
    for _, book in deep:
        lv = book.shape[1] // 4
        sizes = book[:, [4 * k + 1 for k in range(min(lv, 5))] + [4 * k + 3 for k in range(min(lv, 5))]]
        depth.append(sizes.sum(axis=1).mean() / (2 * min(lv, 5)))
    placements = [add_placement(m, b) for m, b in deep]
    place = {
        k: (
            [round(float(np.mean(v)), 6) for v in zip(*(p[k] for p in placements), strict=True)]
            if isinstance(placements[0][k], list)
            else round(float(np.mean([p[k] for p in placements])), 6)
        )
        for k in placements[0]
    }
    pmf = np.asarray(place["dist_pmf"] + [place["dist_tail_prob"]])
    pmf = pmf / pmf.sum()
    place["dist_pmf"] = [round(float(x), 6) for x in pmf[:-1]]
    place["dist_tail_prob"] = round(float(pmf[-1]), 6)
    cplace = [cancel_placement(m, b) for m, b in deep]
    cpmf = np.mean([c["dist_pmf"] + [c["dist_tail_prob"]] for c in cplace], axis=0)
    cpmf = cpmf / cpmf.sum()
    cancel_place = {
        "dist_pmf": [round(float(x), 6) for x in cpmf[:-1]],
        "dist_tail_prob": round(float(cpmf[-1]), 6),
        "dist_tail_mean": round(float(np.mean([c["dist_tail_mean"] for c in cplace])), 3),
    }
    hawkes = [fit_hawkes(t, d, profile) for t, d, _ in ev]
    hk = {
        "mu": np.mean([h["mu"] for h in hawkes], axis=0).tolist(),
        "alpha": np.mean([h["alpha"] for h in hawkes], axis=0).tolist(),
        "beta": float(np.exp(np.mean([np.log(h["beta"]) for h in hawkes]))),
        "per_file": {s.split("_")[0]: h for s, h in zip(DEEP_FILES, hawkes, strict=True)},
    }
    hk["spectral_radius"] = float(np.max(np.abs(np.linalg.eigvals(np.asarray(hk["alpha"])))))
    hk["mu"] = [round(x, 6) for x in hk["mu"]]
    hk["alpha"] = [[round(x, 5) for x in row] for row in hk["alpha"]]
    hk["beta"] = round(hk["beta"], 4)
    return {
        "source": (
            "Fitted by flowsense/sim/calibrate.py from the LOBSTER sample files of 2012-06-21 "
            "(NASDAQ; AAPL level 1, AMZN level 5, GOOG level 10; lobsterdata.com academic samples). "
            "Only summary statistics are stored here, never the data."
        ),
        "session": {"open_s": OPEN_S, "close_s": CLOSE_S, "tick": 0.01},
        "messages_per_day": round(float(np.mean([m.height for m, _ in deep])), 1),
        "events_per_day": round(float(n_events), 1),
        "type_mix": mix,
        "exec_rows_per_marketable": round(exec_rows / max(n_mkt, 1), 4),
        "hidden_row_share_of_exec": round(hidden_rows / max(exec_rows, 1), 5),
        "hidden_marketable_share": round(hidden_orders / max(n_mkt, 1), 5),
        "intraday_profile": [round(float(x), 4) for x in profile],
        "add_size": top_sizes(add_sizes),
        "marketable_size": top_sizes(mkt_sizes),
        "partial_cancel_frac_hist": cancel_fractions(deep[0][0]),
        "mean_level_depth_shares": round(float(np.mean(depth)), 2),
        "placement": place,
        "cancel_placement": cancel_place,
        "hawkes": hk,
        "symbols": per_symbol,
        "corr_1min": pairs,
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    data_dir = Path(argv[0]) if argv else DATA_DIR
    params = calibrate(data_dir)
    tmp = PARAMS_PATH.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(params, indent=1) + "\n")
    tmp.replace(PARAMS_PATH)
    print(f"wrote {PARAMS_PATH}")


if __name__ == "__main__":
    main()
