"""Orchestration: latent price paths, per symbol-day simulation, LOBSTER zip output.

Determinism: every random draw comes from a generator seeded by (seed, symbol, date) through CRC32 (never
Python's salted ``hash``), so one symbol-day's file does not depend on which other symbols were asked for,
on thread scheduling or on the machine. Zip members carry a fixed timestamp, so equal seeds give equal
bytes.

Latent price: log p*(t) = log p_open + vol * (sqrt(rho) * C(t) + sqrt(1 - rho) * I(t)), where C is a
market factor shared by all symbols on a day and I is the symbol's own Brownian motion, both with variance
density proportional to the intraday activity profile (busier open/close also move more). Days chain: a
day opens at the previous close times an overnight log-normal gap.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import threading
import zipfile
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from flowsense.sim.engine import book_snapshots, simulate_messages
from flowsense.sim.params import SimParams

OPEN_S, CLOSE_S = 34_200, 57_600
HORIZON = CLOSE_S - OPEN_S
TICK_UNITS = 100  # $0.01 in LOBSTER units (dollars x 10000)
EMPTY = 9_999_999_999


@dataclass(frozen=True, slots=True)
class DayResult:
    symbol: str
    date: dt.date
    path: Path
    messages: int


def trading_days(start: dt.date, days: int) -> list[dt.date]:
    """The first ``days`` NASDAQ trading days on or after ``start``: weekdays that are not in the built-in
    holiday list (:data:`flowsense.data.instruments.NASDAQ_HOLIDAYS`, what the backtest's calendar refuses
    for a simulated equity symbol)."""
    from flowsense.data.instruments import NASDAQ_HOLIDAYS

    holidays = {dt.date.fromisoformat(h) for h in NASDAQ_HOLIDAYS}
    out: list[dt.date] = []
    d = start
    while len(out) < days:
        if d.weekday() < 5 and d not in holidays:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def _crc(*parts: object) -> int:
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def _profile_weights(params: SimParams) -> np.ndarray:
    """Per-second variance weights following the intraday profile (mean 1)."""
    prof = np.asarray(params.profile)
    x = (np.arange(HORIZON) + 0.5) / HORIZON * len(prof) - 0.5
    w = np.interp(x, np.arange(len(prof)), prof)
    return w / w.mean()


def latent_paths(
    symbols: list[str], dates: list[dt.date], seed: int, params: SimParams
) -> dict[tuple[str, dt.date], np.ndarray]:
    """Efficient price in dollars at every second 0..23400 of each session, per (symbol, date)."""
    w = np.sqrt(_profile_weights(params) / HORIZON)
    rho = params.common_factor_share
    common = {}
    for d in dates:
        rng = np.random.default_rng([seed, _crc("market", d.isoformat())])
        common[d] = np.concatenate([[0.0], np.cumsum(rng.standard_normal(HORIZON) * w)])
    out: dict[tuple[str, dt.date], np.ndarray] = {}
    for sym in symbols:
        price, vol = params.symbol_price_vol(sym, seed)
        logp = math.log(price)
        for i, d in enumerate(dates):
            rng = np.random.default_rng([seed, _crc("idio", sym.upper(), d.isoformat())])
            if i > 0:
                logp += params.overnight_vol * rng.standard_normal()
            idio = np.concatenate([[0.0], np.cumsum(rng.standard_normal(HORIZON) * w)])
            path = logp + vol * (math.sqrt(rho) * common[d] + math.sqrt(1.0 - rho) * idio)
            out[(sym, d)] = np.exp(path)
            logp = float(path[-1])
    return out


def _cdf(p: tuple[float, ...]) -> np.ndarray:
    return np.cumsum(np.asarray(p, dtype=np.float64))


def expected_events(params: SimParams, scale: float) -> float:
    """Stationary Hawkes event count per day: T * sum((I - alpha)^-1 mu) * scale."""
    a = np.asarray(params.alpha)
    return float(HORIZON * scale * np.linalg.solve(np.eye(len(a)) - a, np.asarray(params.mu)).sum())


def simulate_day(
    symbol: str,
    date: dt.date,
    pstar_dollars: np.ndarray,
    params: SimParams,
    *,
    seed: int,
    levels: int,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One symbol-day: (messages int64 (n, 6) with time in ns after midnight, orderbook int64 (n, 4*levels))."""
    grid = params.grid_ticks
    p_open = float(pstar_dollars[0])
    open_tick = round(p_open * 100)
    base_tick = max(0, open_tick - grid // 2)
    pstar = np.clip(pstar_dollars * 100.0 - base_tick, 100.0, grid - 100.0)
    half_spread = max(params.min_half_spread_ticks, params.ref_spread_bp * 1e-4 * p_open * 100.0 / 2.0)
    dist_scale = p_open / params.ref_price
    # cheaper stocks: tick distances shrink with price, so the same resting volume sits on fewer levels;
    # keep more resting orders there (deeper queues at the touch, as for real large-tick stocks)
    n_target = int(params.book_orders_target * min(4.0, max(1.0, 1.0 / dist_scale)))
    h = _crc(seed, symbol.upper(), date.isoformat())
    kernel_seed = h & 0x7FFFFFFF
    id_base = 10_000_000 + (h % 40_000_000)
    add_v, add_p, add_tail, add_mu, add_sd = params.add_size
    mkt_v, mkt_p, mkt_tail, mkt_mu, mkt_sd = params.marketable_size
    kappas = np.array(
        [
            params.kappa_mkt,
            params.kappa_add_side,
            params.kappa_improve,
            params.kappa_cancel,
            params.kappa_imbalance,
            params.anchor_weight,
            params.p_touch_only,
        ]
    )
    cap = int(2.5 * expected_events(params, scale) * 1.15 + 4 * n_target + 20_000)
    open_ns = OPEN_S * 1_000_000_000
    while True:
        n, t, ty, oid, sz, px, dr = simulate_messages(
            kernel_seed,
            float(HORIZON),
            open_ns,
            pstar,
            np.asarray(params.profile, dtype=np.float64),
            np.asarray(params.mu, dtype=np.float64) * scale,
            np.asarray(params.alpha, dtype=np.float64),
            float(params.beta),
            np.asarray(add_v, dtype=np.int64),
            _cdf(add_p),
            np.array([add_tail, add_mu, add_sd]),
            np.asarray(mkt_v, dtype=np.int64),
            _cdf(mkt_p),
            np.array([mkt_tail, mkt_mu, mkt_sd]),
            _cdf(params.dist_pmf),
            float(params.dist_tail_prob),
            float(params.dist_tail_mean),
            float(dist_scale),
            _cdf(params.cancel_dist_pmf),
            float(params.cancel_dist_tail_prob),
            float(params.cancel_dist_tail_mean),
            np.asarray(params.p_improve_by_spread, dtype=np.float64),
            _cdf(params.improve_frac_hist),
            float(params.p_partial_cancel),
            _cdf(params.partial_frac_hist),
            float(params.hidden_share),
            kappas,
            float(half_spread),
            int(n_target),
            int(params.max_walk_levels),
            int(id_base),
            int(cap),
            int(grid),
        )
        if n < cap - params.max_walk_levels * 64 - 8:
            break
        cap *= 2  # the day did not fit: rerun with the same seed (same draws) and more room
    msgs = np.column_stack([t[:n], ty[:n], oid[:n], sz[:n], (px[:n] + base_tick) * TICK_UNITS, dr[:n]])
    book = book_snapshots(
        ty[:n], sz[:n], px[:n], dr[:n], levels, grid, base_tick * TICK_UNITS, TICK_UNITS, EMPTY
    )
    return msgs, book


def lobster_csv(msgs: np.ndarray, book: np.ndarray) -> tuple[bytes, bytes]:
    """LOBSTER message and orderbook CSV bytes (no header; time with 9 decimals)."""
    ns = pl.col("ns")
    time = pl.DataFrame({"ns": msgs[:, 0]}).select(
        pl.concat_str(
            [(ns // 1_000_000_000).cast(pl.String), (ns % 1_000_000_000).cast(pl.String).str.zfill(9)],
            separator=".",
        )
    )
    msg_df = pl.DataFrame(
        {
            "time": time.to_series(),
            "type": msgs[:, 1],
            "order_id": msgs[:, 2],
            "size": msgs[:, 3],
            "price": msgs[:, 4],
            "direction": msgs[:, 5],
        }
    )
    msg_b = msg_df.write_csv(include_header=False, quote_style="never").encode()
    book_df = pl.DataFrame({f"c{k}": np.ascontiguousarray(book[:, k]) for k in range(book.shape[1])})
    book_b = book_df.write_csv(include_header=False).encode()
    return msg_b, book_b


def write_zip(out_dir: Path, symbol: str, date: dt.date, levels: int, msg_b: bytes, book_b: bytes) -> Path:
    """Write ``{SYMBOL}_{DATE}_{LEVEL}.zip`` atomically (temp file + ``os.replace``), with fixed metadata."""
    stem = f"{symbol}_{date.isoformat()}_{OPEN_S * 1000}_{CLOSE_S * 1000}"
    path = out_dir / f"{symbol}_{date.isoformat()}_{levels}.zip"
    tmp = out_dir / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    stamp = (date.year, date.month, date.day, 16, 0, 0)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for kind, data in (("message", msg_b), ("orderbook", book_b)):
            info = zipfile.ZipInfo(f"{stem}_{kind}_{levels}.csv", date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, data, compresslevel=6)
    try:
        tmp.write_bytes(buf.getvalue())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def simulate(
    symbols: list[str],
    days: int,
    out_dir: Path,
    *,
    seed: int = 7,
    start_date: dt.date = dt.date(2024, 1, 2),
    levels: int = 10,
    scale: float = 1.0,
    params: SimParams | None = None,
    on_day: Callable[[DayResult], None] | None = None,
    workers: int | None = None,
) -> list[Path]:
    """Simulate ``symbols`` x ``days`` weekdays from ``start_date`` and write LOBSTER zips into ``out_dir``.

    Returns the written zip paths ordered by symbol (as given) then date. ``on_day`` is called (from the
    calling thread) after each symbol-day is written. Symbol-days run on a thread pool (the Numba kernels
    release the GIL).
    """
    if days < 1:
        raise ValueError("days must be >= 1")
    symbols = [s.strip() for s in symbols if s.strip()]
    if not symbols:
        raise ValueError("at least one symbol is required")
    if len(set(symbols)) != len(symbols):
        raise ValueError(f"duplicate symbols in {symbols}")
    for s in symbols:
        if not all(c.isalnum() or c in ".-" for c in s):
            raise ValueError(f"symbol {s!r} may only hold letters, digits, '.' and '-'")
    if not 1 <= levels <= 50:
        raise ValueError("levels must be in 1..50")
    if not 0 < scale <= 50:
        raise ValueError("scale must be in (0, 50]")
    params = params or SimParams.from_json()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dates = trading_days(start_date, days)
    paths = latent_paths(symbols, dates, seed, params)
    jobs = [(s, d) for s in symbols for d in dates]

    def run(job: tuple[str, dt.date]) -> DayResult:
        sym, d = job
        msgs, book = simulate_day(sym, d, paths[job], params, seed=seed, levels=levels, scale=scale)
        msg_b, book_b = lobster_csv(msgs, book)
        return DayResult(sym, d, write_zip(out_dir, sym, d, levels, msg_b, book_b), len(msgs))

    n_workers = workers or min(len(jobs), os.cpu_count() or 1, 4)
    results: list[DayResult] = []
    if n_workers <= 1:
        for job in jobs:
            results.append(run(job))
            if on_day:
                on_day(results[-1])
    else:
        with ThreadPoolExecutor(max_workers=n_workers) as pool:
            for res in pool.map(run, jobs):
                results.append(res)
                if on_day:
                    on_day(res)
    return [r.path for r in results]
