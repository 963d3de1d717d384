"""Built-in strategies as the backtest knows them: the configs (defined in
:mod:`flowsense.trading.strategies`, re-exported here) and how each runs in the compiled loop.

A config listed in :data:`COMPILED` runs entirely compiled (``run_backtest`` picks the compiled path);
``run_backtest(..., force_python=True)`` or any other :class:`~flowsense.trading.Strategy` object runs
through the Python driver, with ``config.create()`` for a config.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from flowsense.backtest.builtins import SK_BUY_AND_HOLD, SK_MM, SK_OFI
from flowsense.trading.strategies import (
    STRATEGY_CONFIGS,
    BuyAndHold,
    BuyAndHoldStrategy,
    MarketMaker,
    MarketMakerStrategy,
    OfiThreshold,
    OfiThresholdStrategy,
)

STRATEGIES: dict[str, type] = dict(STRATEGY_CONFIGS)

# config class -> (compiled strategy kind, parameter packing for the core given the price scale)
COMPILED: dict[type, tuple[int, Callable[[Any, int], np.ndarray]]] = {
    BuyAndHold: (SK_BUY_AND_HOLD, lambda c, scale: np.array([float(c.size)])),
    OfiThreshold: (SK_OFI, lambda c, scale: np.array([c.threshold, float(c.size), float(c.window_ns),
                                                      float(c.max_position)])),
    MarketMaker: (SK_MM, lambda c, scale: np.array([float(c.size), float(c.max_position),
                                                    float(c.skew_ticks), float(round(c.tick * scale))])),
}


def compiled_spec(strategy: Any, price_scale: int) -> tuple[int, np.ndarray] | None:
    """``(kind, params)`` when ``strategy`` is a built-in config the compiled loop runs, else None."""
    spec = COMPILED.get(type(strategy))
    if spec is None:
        return None
    kind, pack = spec
    return kind, np.asarray(pack(strategy, price_scale), dtype=np.float64)


__all__ = ["COMPILED", "STRATEGIES", "BuyAndHold", "BuyAndHoldStrategy", "MarketMaker", "MarketMakerStrategy",
           "OfiThreshold", "OfiThresholdStrategy", "compiled_spec"]
