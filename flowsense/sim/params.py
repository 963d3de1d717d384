"""Simulator parameters: the calibrated numbers from ``params.json`` plus a few tuned model constants.

``params.json`` is written by :mod:`flowsense.sim.calibrate` from the real LOBSTER samples. The model
constants below (how strongly order flow leans towards the latent efficient price, book size target,
common-factor share) are not identified by one day of three symbols; they were tuned by simulation so
that spreads, 1-minute volatility and cross-symbol correlation land near the real values.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, fields, replace
from functools import cache
from pathlib import Path
from typing import Any

PARAMS_PATH = Path(__file__).with_name("params.json")

Sizes = tuple[
    tuple[int, ...], tuple[float, ...], float, float, float
]  # values, probs, tail p, log mu, log sd


def _sizes(d: dict[str, Any]) -> Sizes:
    return (
        tuple(int(v) for v in d["values"]),
        tuple(float(p) for p in d["probs"]),
        float(d["tail_prob"]),
        float(d["tail_log_mean"]),
        float(d["tail_log_std"]),
    )


@dataclass(frozen=True)
class SimParams:
    """Everything the simulator needs for one run (immutable; use ``dataclasses.replace`` to vary).

    Model (per symbol-day, independent given the latent price path):

    * event arrivals: 4-dimensional Hawkes process (add, cancel, buyer- and seller-initiated marketable
      order) with exponential kernels ``alpha[i][j] * beta * exp(-beta * dt)`` (``alpha[i][j]``: expected
      number of type-i children of one type-j event), baseline ``scale * mu[i] * profile(t)``;
    * queue-reactive marks: the cancel intensity is multiplied by (resting orders / ``book_orders_target``)
      so that the book neither empties nor explodes; buy/sell marketable intensities are multiplied by
      ``2 * logistic(+-kappa_mkt * z)`` with ``z`` = (efficient price - mid) / (half the typical spread);
      adds lean towards the efficient price (side choice and in-spread improvements), cancels hit stale
      quotes first;
    * prices: a latent log efficient price per symbol = common market factor + idiosyncratic Brownian
      motion, with variance following the intraday profile; adds are placed at a calibrated distance (in
      ticks, scaled by price / ``ref_price``) behind the same-side best, or inside the spread.
    """

    # --- calibrated (params.json) ---
    mu: tuple[float, ...]
    alpha: tuple[tuple[float, ...], ...]
    beta: float
    profile: tuple[float, ...]
    p_partial_cancel: float
    hidden_share: float
    add_size: Sizes
    marketable_size: Sizes
    dist_pmf: tuple[float, ...]
    dist_tail_prob: float
    dist_tail_mean: float
    cancel_dist_pmf: tuple[float, ...]
    cancel_dist_tail_prob: float
    cancel_dist_tail_mean: float
    p_improve_by_spread: tuple[float, ...]
    improve_frac_hist: tuple[float, ...]
    partial_frac_hist: tuple[float, ...]
    type_mix: tuple[float, ...]  # real share of message types 1..5
    messages_per_day: float
    ref_price: float  # price at which the tick distances were measured
    ref_spread_bp: float
    known_symbols: tuple[tuple[str, float, float], ...]  # (symbol, open price, daily vol)
    # --- tuned model constants ---
    book_orders_target: int = 80
    kappa_mkt: float = 1.2
    kappa_add_side: float = 0.8
    kappa_improve: float = 1.0
    kappa_cancel: float = 1.0
    kappa_imbalance: float = 2.0
    anchor_weight: float = 0.5
    min_half_spread_ticks: float = 0.75
    common_factor_share: float = 0.55
    default_daily_vol: tuple[float, float] = (0.008, 0.02)
    default_price_range: tuple[float, float] = (30.0, 600.0)
    overnight_vol: float = 0.006
    max_walk_levels: int = 5
    p_touch_only: float = 0.75
    grid_ticks: int = 1 << 16

    @classmethod
    def from_json(cls, path: Path = PARAMS_PATH) -> SimParams:
        """Load the calibrated parameters (package data)."""
        return _load(str(path))

    def with_(self, **changes: Any) -> SimParams:
        return replace(self, **changes)

    def symbol_price_vol(self, symbol: str, seed: int) -> tuple[float, float]:
        """Opening price and daily volatility: calibrated for known symbols, else hashed from the name."""
        for sym, price, vol in self.known_symbols:
            if sym == symbol.upper():
                return price, vol
        h = zlib.crc32(f"{symbol.upper()}|{seed}".encode())
        u1, u2 = (h & 0xFFFF) / 65535.0, (h >> 16) / 65535.0
        lo, hi = self.default_price_range
        price = round(math.exp(math.log(lo) + u1 * (math.log(hi) - math.log(lo))), 2)
        vlo, vhi = self.default_daily_vol
        return price, vlo + u2 * (vhi - vlo)

    def field_names(self) -> list[str]:
        return [f.name for f in fields(self)]


def _hidden_share(r: float, k: float) -> float:
    return r * k / (1.0 + r * (k - 1.0))


@cache
def _load(path: str) -> SimParams:
    raw = json.loads(Path(path).read_text())
    hk = raw["hawkes"]
    mix = raw["type_mix"]
    place = raw["placement"]
    syms = raw["symbols"]
    deep = [s for s in syms.values() if not s["file"].endswith("_1.zip")]
    ref_price = math.exp(sum(math.log(s["open_price"]) for s in deep) / len(deep))
    spread_bp = sum(s["mean_spread_ticks"] * 0.01 / s["open_price"] * 1e4 for s in deep) / len(deep)
    known = tuple(
        (name, float(s["open_price"]), float(s["ret_1min_std"]) * math.sqrt(390)) for name, s in syms.items()
    )
    cancels = mix["2"] + mix["3"]
    return SimParams(
        mu=tuple(hk["mu"]),
        alpha=tuple(tuple(r) for r in hk["alpha"]),
        beta=float(hk["beta"]),
        profile=tuple(raw["intraday_profile"]),
        p_partial_cancel=mix["2"] / cancels,
        # share of marketable orders printed as one hidden execution, chosen so that hidden rows make up
        # the calibrated share r of execution rows when a visible one fills k rows: h = r k / (1 + r (k - 1))
        hidden_share=_hidden_share(raw["hidden_row_share_of_exec"], raw["exec_rows_per_marketable"]),
        add_size=_sizes(raw["add_size"]),
        marketable_size=_sizes(raw["marketable_size"]),
        dist_pmf=tuple(place["dist_pmf"]),
        dist_tail_prob=float(place["dist_tail_prob"]),
        dist_tail_mean=float(place["dist_tail_mean"]),
        cancel_dist_pmf=tuple(raw["cancel_placement"]["dist_pmf"]),
        cancel_dist_tail_prob=float(raw["cancel_placement"]["dist_tail_prob"]),
        cancel_dist_tail_mean=float(raw["cancel_placement"]["dist_tail_mean"]),
        p_improve_by_spread=tuple(place["p_improve_by_spread"]),
        improve_frac_hist=tuple(place["improve_frac_hist"]),
        partial_frac_hist=tuple(raw["partial_cancel_frac_hist"]),
        type_mix=tuple(mix[str(k)] for k in range(1, 6)),
        messages_per_day=float(raw["messages_per_day"]),
        ref_price=ref_price,
        ref_spread_bp=spread_bp,
        known_symbols=known,
    )
