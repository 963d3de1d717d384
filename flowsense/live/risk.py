"""Risk manager between the strategy's signal and the broker, with a frozen config.

* **Sizing** (:meth:`RiskManager.kelly_size`): fractional Kelly from the model's probability ``p`` of
  the favourable move and the payoff ratio ``b`` (average win / average loss):
  ``f* = p - (1 - p) / b``; the position is ``kelly_fraction * f* * equity * regime_scale / price``
  shares (0 when ``f* <= 0``), with the regime scale 1.5 calm / 1.0 normal / 0.5 volatile.
  Strategies that emit a :class:`Signal` get this size; plain ``OrderRequest`` s keep theirs.
* **Limits per instrument**: max position (after the order, counting open orders on that side), max
  order size, max notional of the resulting position; limit-price collar around the mid; market orders
  need a two-sided book; an order-rate throttle over a sliding window of *exchange* time (so a replay
  decides the same as the live run).
* **Trading states**: ``ACTIVE``; ``REDUCING`` (only orders that bring the position towards zero; a
  reversal is cut to a flatten); ``HALTED`` (only cancels; the worker cancels open orders on entry).
* **Drawdown monitor**: from the equity peak; alert at ``drawdown_alert`` (10%), halt at
  ``drawdown_halt`` (15%) - each only after ``breaches_required`` consecutive marks beyond the level, so
  one bad mark does not halt. The halt is persisted by the worker and survives restarts until
  ``flowsense worker resume``.

Every decision is a function of the data and the config only (no wall clock), so a replay of the same
ticks reproduces it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from flowsense.trading.orders import OrderRequest, OrderType

ACTIVE, REDUCING, HALTED = "ACTIVE", "REDUCING", "HALTED"


@dataclass(frozen=True, slots=True)
class Signal:
    """A model's view for the risk manager to size: ``prob_up`` = P(price goes up over the horizon);
    ``payoff`` = average win / average loss; ``regime`` = calm | normal | volatile."""

    prob_up: float
    payoff: float = 1.0
    regime: str = "normal"


@dataclass(frozen=True, slots=True)
class InstrumentLimits:
    max_position: int = 10_000
    max_order_size: int = 5_000
    max_notional: float = 10_000_000.0


@dataclass(frozen=True, slots=True)
class RiskConfig:
    kelly_fraction: float = 0.25
    calm_scale: float = 1.5
    volatile_scale: float = 0.5
    default_limits: InstrumentLimits = field(default_factory=InstrumentLimits)
    limits: tuple[tuple[str, InstrumentLimits], ...] = ()
    price_collar: float = 0.05  # a limit price more than 5% away from the mid is refused
    max_orders: int = 200  # ... per throttle window
    throttle_window_ns: int = 1_000_000_000
    drawdown_alert: float = 0.10
    drawdown_halt: float = 0.15
    breaches_required: int = 5
    reduce_on_alert: bool = False

    def limits_for(self, symbol: str) -> InstrumentLimits:
        for s, lim in self.limits:
            if s == symbol:
                return lim
        return self.default_limits

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["limits"] = {s: asdict(lim) for s, lim in self.limits}
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RiskConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown risk setting(s) {sorted(unknown)}; known: {sorted(known)}")
        kw = dict(d)
        if "default_limits" in kw and isinstance(kw["default_limits"], dict):
            kw["default_limits"] = InstrumentLimits(**kw["default_limits"])
        if "limits" in kw and isinstance(kw["limits"], dict):
            kw["limits"] = tuple((s, InstrumentLimits(**v)) for s, v in kw["limits"].items())
        return cls(**kw)


@dataclass(frozen=True, slots=True)
class Decision:
    ok: bool
    request: OrderRequest | None
    reason: str = ""


class RiskManager:
    """Stateful checks for one symbol under a frozen :class:`RiskConfig`."""

    def __init__(self, config: RiskConfig, symbol: str, state: str = ACTIVE, reason: str = "") -> None:
        self.config = config
        self.symbol = symbol
        self.limits = config.limits_for(symbol)
        self.state = state
        self.reason = reason
        self.peak = -math.inf
        self.drawdown = 0.0
        self._alert_breaches = 0
        self._halt_breaches = 0
        self.alert = False
        self._sent: deque[int] = deque()
        self.refused: dict[str, int] = {}

    # ----------------------------------------------------------------------------- sizing

    def regime_scale(self, regime: str) -> float:
        return {"calm": self.config.calm_scale, "volatile": self.config.volatile_scale}.get(regime, 1.0)

    def kelly_size(self, prob: float, payoff: float, equity: float, price: float, regime: str = "normal") -> int:
        """Shares to hold on the favourable side (>= 0) for win probability ``prob`` and payoff ratio."""
        if not (0.0 <= prob <= 1.0) or payoff <= 0 or price <= 0 or not math.isfinite(equity) or equity <= 0:
            return 0
        f = prob - (1.0 - prob) / payoff
        if f <= 0:
            return 0
        shares = self.config.kelly_fraction * f * equity * self.regime_scale(regime) / price
        return int(min(math.floor(shares + 1e-9), self.limits.max_position))  # 1e-9: 0.6 - 0.4 < 0.2

    def target_from_signal(self, sig: Signal, equity: float, price: float) -> int:
        """Signed target position for a model signal."""
        p = float(sig.prob_up)
        if p >= 0.5:
            return self.kelly_size(p, sig.payoff, equity, price, sig.regime)
        return -self.kelly_size(1.0 - p, sig.payoff, equity, price, sig.regime)

    # ----------------------------------------------------------------------------- checks

    def _refuse(self, why: str) -> Decision:
        self.refused[why] = self.refused.get(why, 0) + 1
        return Decision(False, None, why)

    def check(self, req: OrderRequest, position: int, open_buy: int, open_sell: int, mid: float,
              ts: int) -> Decision:
        """Allow, cut or refuse one new order. ``position``: the known position; ``open_buy/sell``: shares
        still open on each side; ``mid``: current mid (NaN without a two-sided book); ``ts``: exchange ns."""
        if self.state == HALTED:
            return self._refuse("halted")
        size = int(req.size)
        if self.state == REDUCING:
            if position == 0 or (req.side > 0) == (position > 0):
                return self._refuse("reducing")
            # only the part that brings the position towards zero (open orders on that side count)
            room = abs(position) - (open_sell if req.side < 0 else open_buy)
            if room <= 0:
                return self._refuse("reducing")
            size = min(size, room)
        lim = self.limits
        if size > lim.max_order_size:
            return self._refuse("max_order_size")
        after = position + (open_buy + size if req.side > 0 else -(open_sell + size))
        if abs(after) > lim.max_position and abs(after) > abs(position):
            return self._refuse("max_position")
        if not math.isfinite(mid) or mid <= 0:
            return self._refuse("no_book")
        if abs(after) * mid > lim.max_notional and abs(after) > abs(position):
            return self._refuse("max_notional")
        if req.type != OrderType.MARKET and req.price is not None and abs(req.price / mid - 1.0) > self.config.price_collar:
            return self._refuse("price_collar")
        w = self.config.throttle_window_ns
        while self._sent and self._sent[0] <= ts - w:
            self._sent.popleft()
        if len(self._sent) >= self.config.max_orders:
            return self._refuse("throttle")
        self._sent.append(ts)
        if size != req.size:
            req = OrderRequest(req.side, size, req.type, req.price)
        return Decision(True, req)

    # ----------------------------------------------------------------------------- drawdown

    def mark(self, equity: float) -> str | None:
        """Feed one equity mark; returns ``"alert"``, ``"halt"`` or ``"clear"`` on a change, else None."""
        if not math.isfinite(equity):
            return None
        if equity > self.peak:
            self.peak = equity
        dd = (self.peak - equity) / self.peak if self.peak > 0 else 0.0
        self.drawdown = dd
        c = self.config
        self._alert_breaches = self._alert_breaches + 1 if dd >= c.drawdown_alert else 0
        self._halt_breaches = self._halt_breaches + 1 if dd >= c.drawdown_halt else 0
        if self.state != HALTED and self._halt_breaches >= c.breaches_required:
            self.state = HALTED
            self.reason = f"drawdown {dd:.1%} from the equity peak {self.peak:,.2f} (halt at {c.drawdown_halt:.0%})"
            return "halt"
        if not self.alert and self._alert_breaches >= c.breaches_required:
            self.alert = True
            if c.reduce_on_alert and self.state == ACTIVE:
                self.state = REDUCING
                self.reason = f"drawdown {dd:.1%} (alert at {c.drawdown_alert:.0%})"
            return "alert"
        if self.alert and dd < c.drawdown_alert:
            self.alert = False
            return "clear"
        return None
