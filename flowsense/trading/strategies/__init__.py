"""Built-in strategies: a frozen config each plus the stateful Python strategy it creates.

Each rule is written once: the Python strategies here call the plain-Python originals (``.py_func``) of
the Numba ``inline="always"`` rule functions that the compiled backtest loop inlines
(:mod:`flowsense.backtest.builtins`), so the two paths give the same orders and fills.
"""

from __future__ import annotations

from flowsense.trading.strategies.buy_and_hold import BuyAndHold, BuyAndHoldStrategy
from flowsense.trading.strategies.market_maker import MarketMaker, MarketMakerStrategy
from flowsense.trading.strategies.model_signal import ModelSignal, ModelSignalStrategy
from flowsense.trading.strategies.ofi_threshold import OfiThreshold, OfiThresholdStrategy
from flowsense.trading.strategy import StrategyConfig

STRATEGY_CONFIGS: dict[str, type[StrategyConfig]] = {
    "buy_and_hold": BuyAndHold,
    "ofi_threshold": OfiThreshold,
    "market_maker": MarketMaker,
    "model_signal": ModelSignal,  # needs prepare() before the replay (the backtest runner calls it)
}

__all__ = ["STRATEGY_CONFIGS", "BuyAndHold", "BuyAndHoldStrategy", "MarketMaker", "MarketMakerStrategy",
           "ModelSignal", "ModelSignalStrategy", "OfiThreshold", "OfiThresholdStrategy"]
