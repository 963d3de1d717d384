"""One line of documentation per feature: name -> (description, table, may be NaN in warm-up).

``table`` is ``features_tick`` or ``features_<clock>`` (bar tables share one column set, written here as
``features_<clock>``). ``warmup_nan`` is True when the value is NaN until enough history exists (or
when its inputs are undefined, e.g. no trades yet). Features are NaN (not null) in the Parquet files
when undefined; key columns are never NaN. Labels live in ``labels`` and are documented in
:mod:`flowsense.features.labels`, never here.

:data:`REGISTRY` is built for the default parameters and a 10-level book; :func:`feature_registry`
builds it for other parameters (column names carry their window lengths).
"""

from __future__ import annotations

from dataclasses import dataclass

from flowsense.features.bars import BarParams, bar_columns
from flowsense.features.tick import TickParams, tick_columns

TICK_TABLE = "features_tick"
BAR_TABLE = "features_<clock>"


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    table: str
    warmup_nan: bool


def _tick_specs(tp: TickParams) -> list[FeatureSpec]:
    L = tp.levels
    d: dict[str, tuple[str, bool]] = {
        "mid": ("mid price (ask_px_1 + bid_px_1) / 2; NaN when a side is empty", False),
        "spread": ("quoted spread ask_px_1 - bid_px_1 (dollars)", False),
        "microprice": ("size-weighted mid (bid*ask_sz + ask*bid_sz)/(bid_sz + ask_sz) at level 1", False),
        "micro_dev": ("microprice - mid (dollars); > 0 means buy pressure at the top of book", False),
        "dmid": ("mid change caused by this event (NaN on the day's first event)", True),
        "ofi_int": ("integrated OFI: sum_k w_k ofi_lk (Cont, Cucuringu & Zhang 2023); w = TickParams.ofi_weights, "
                    "equal 1/L by default", False),
        "ofi_l1_cum": ("cumulative L1 OFI since the start of the day (shares)", False),
        "ofi_int_cum": ("cumulative integrated OFI since the start of the day", False),
        "bid_sz_1": ("queue size at the best bid (shares; 0 when empty)", False),
        "ask_sz_1": ("queue size at the best ask (shares; 0 when empty)", False),
        "bid_depth": (f"cumulative bid depth over the {L} book levels (shares)", False),
        "ask_depth": (f"cumulative ask depth over the {L} book levels (shares)", False),
        "n_bid_levels": ("number of non-empty bid levels in the book", False),
        "n_ask_levels": ("number of non-empty ask levels in the book", False),
        "trade_volume": ("shares executed by this event (0 if not an execution)", False),
        "signed_volume": ("aggressor side x executed size (+ buyer-initiated)", False),
        f"tfi_{tp.tfi_short}": (f"trade-flow imbalance sum(signed vol)/sum(vol) over the last {tp.tfi_short} events",
                                True),
        f"tfi_{tp.tfi_long}": (f"trade-flow imbalance sum(signed vol)/sum(vol) over the last {tp.tfi_long} events",
                               True),
        f"ofi_l1_sum_{tp.ofi_roll}": (f"rolling sum of L1 OFI over the last {tp.ofi_roll} events", False),
        "event_rate": (f"book events per second, exponentially decaying count (tau = {tp.rate_tau_s:g} s)", False),
        "trade_rate": (f"executions per second, exponentially decaying count (tau = {tp.rate_tau_s:g} s)", False),
        "add_rate": (f"limit-order additions per second, exponentially decaying (tau = {tp.rate_tau_s:g} s)", False),
        "cancel_rate": (f"cancellations+deletions per second, exponentially decaying (tau = {tp.rate_tau_s:g} s)",
                        False),
        "dt_prev": ("seconds since the previous event (NaN on the first)", True),
        "t_since_trade": ("seconds since the last execution (NaN before the first)", True),
        "vpin": (f"VPIN (Easley, Lopez de Prado & O'Hara 2012): mean |buy-sell|/V over the last {tp.vpin_buckets} "
                 f"buckets of V = {tp.vpin_bucket:g} shares, exact aggressor side", True),
    }
    for k in range(1, L + 1):
        d[f"ofi_l{k}"] = (f"OFI contribution of this event at level {k} (Cont, Kukanov & Stoikov 2014 e_n applied "
                          f"to level {k}; empty level = price -/+inf, size 0; 0 on the first event)", False)
    for dep in tp.depths:
        d[f"depth_imb_{dep}"] = (f"depth imbalance (bid - ask)/(bid + ask) of sizes summed over levels 1..{dep}",
                                 False)
    return [FeatureSpec(c, d[c][0], TICK_TABLE, d[c][1]) for c in tick_columns(tp)]


def _bar_specs(tp: TickParams, bp: BarParams) -> list[FeatureSpec]:
    L = tp.levels
    r1, r2, r3 = sorted(bp.ret_horizons)
    v1, v2 = sorted(bp.rv_windows)
    e1, e2 = sorted(bp.er_windows)
    d: dict[str, tuple[str, bool]] = {
        "mid_open": ("mid at the bar start (previous bar's close; first valid mid for the first bar)", False),
        "mid_high": ("highest mid in the bar (open included)", False),
        "mid_low": ("lowest mid in the bar (open included)", False),
        "mid_close": ("mid after the bar's last event (carried through empty bars)", False),
        "microprice_close": ("microprice at the bar close", False),
        "micro_dev_close": ("microprice - mid at the bar close", False),
        "spread_mean": ("mean quoted spread over the bar's events (close value for empty bars)", False),
        "spread_close": ("quoted spread at the bar close", False),
        "ofi_int": ("integrated OFI summed over the bar (Cont, Cucuringu & Zhang 2023)", False),
        "bid_sz_1": ("best-bid queue size at the close", False),
        "ask_sz_1": ("best-ask queue size at the close", False),
        "bid_depth": (f"bid depth over {L} levels at the close", False),
        "ask_depth": (f"ask depth over {L} levels at the close", False),
        "volume": ("shares executed in the bar", False),
        "signed_volume": ("signed (aggressor) volume in the bar", False),
        "buy_volume": ("buyer-initiated volume in the bar", False),
        "sell_volume": ("seller-initiated volume in the bar", False),
        "n_trades": ("number of executions in the bar", False),
        "tfi": ("trade-flow imbalance of the bar: signed_volume / volume (NaN without trades)", True),
        "vwap": ("volume-weighted average execution price of the bar (NaN without trades)", True),
        "vwap_day": ("cumulative VWAP since the start of the day", True),
        "dist_vwap_bps": ("distance of mid_close to the day's VWAP, (mid/vwap_day - 1) x 1e4", True),
        "n_add": ("limit-order additions in the bar", False),
        "n_cancel": ("cancellations + deletions in the bar", False),
        "cancel_add_ratio": ("cancellations per addition in the bar (NaN without additions)", True),
        "add_rate": ("additions per second over the bar", True),
        "cancel_rate": ("cancellations per second over the bar", True),
        "exec_rate": ("executions per second over the bar", True),
        "event_rate": ("book events per second over the bar", True),
        f"ret_{r1}": (f"log mid return over the last {r1} bar(s)", True),
        f"ret_{r2}": (f"log mid return over the last {r2} bars", True),
        f"ret_{r3}": (f"log mid return over the last {r3} bars", True),
        f"rv_{v1}": (f"realized volatility sqrt(sum r^2) of 1-bar log returns over {v1} bars", True),
        f"rv_{v2}": (f"realized volatility sqrt(sum r^2) of 1-bar log returns over {v2} bars", True),
        "vol_ratio": (f"regime: per-bar vol over {v1} bars / per-bar vol over {v2} bars", True),
        f"rsi_{bp.rsi}": (f"RSI of mid-close changes, Wilder smoothing over {bp.rsi} bars (50 when flat)", True),
        f"bb_pctb_{bp.bb}": (f"Bollinger %b of mid_close, {bp.bb} bars, {bp.bb_k:g} sd (0.5 when bands collapse)",
                             True),
        f"bb_width_{bp.bb}": (f"Bollinger band width / mean, {bp.bb} bars", True),
        f"er_{e1}": (f"regime: Kaufman efficiency ratio |net move| / path length over {e1} bars (0 when flat)",
                     True),
        f"er_{e2}": (f"regime: Kaufman efficiency ratio over {e2} bars", True),
        f"adx_{bp.adx}": (f"regime: Wilder ADX trend strength on mid high/low/close, {bp.adx} bars", True),
        f"kyle_lambda_{bp.kyle}": (f"Kyle's lambda: OLS slope of bar mid change on bar signed volume, last "
                                   f"{bp.kyle} bars ($/share)", True),
        f"kyle_r2_{bp.kyle}": (f"R^2 of the Kyle's-lambda regression over the last {bp.kyle} bars", True),
        "vpin": ("VPIN at the bar close (see features_tick.vpin)", True),
    }
    for k in range(1, L + 1):
        d[f"ofi_l{k}"] = (f"level-{k} OFI summed over the bar (Cont, Kukanov & Stoikov 2014)", False)
    for dep in tp.depths:
        d[f"depth_imb_{dep}"] = (f"depth imbalance over levels 1..{dep} at the bar close", False)
        d[f"depth_imb_{dep}_mean"] = (f"mean depth imbalance over levels 1..{dep} across the bar's events", False)
    return [FeatureSpec(c, d[c][0], BAR_TABLE, d[c][1]) for c in bar_columns(tp, bp)]


def feature_registry(tp: TickParams | None = None, bp: BarParams | None = None) -> dict[str, FeatureSpec]:
    """Registry keyed ``"<table>.<name>"`` (``features_tick.mid``, ``features_<clock>.vpin``, ...)."""
    tp = tp or TickParams()
    bp = bp or BarParams()
    specs = _tick_specs(tp) + _bar_specs(tp, bp)
    return {f"{s.table}.{s.name}": s for s in specs}


REGISTRY: dict[str, FeatureSpec] = feature_registry()


def describe(name: str, table: str = TICK_TABLE) -> FeatureSpec:
    """Look a feature up by table and column name (any ``features_<clock>`` table maps to the bar set)."""
    key = f"{TICK_TABLE if table == TICK_TABLE else BAR_TABLE}.{name}"
    return REGISTRY[key]
