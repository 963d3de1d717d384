"""Swappable execution models: queue position, latency, fees and slippage, one module each.

Each module holds its frozen dataclasses (the assumptions in their docstrings) and the Numba
``inline="always"`` functions with their math; the exchange core (:mod:`flowsense.backtest.exchange`)
only calls those functions (hftbacktest style: small pieces, one assumption each).
"""

from flowsense.backtest.models.fees import FeeModel, MakerTakerFees, PerShareFees
from flowsense.backtest.models.latency import ConstantLatency, DataLatency, LatencyModel
from flowsense.backtest.models.queue import ProbabilisticQueue, QueueModel, RiskAverseQueue
from flowsense.backtest.models.slippage import BookWalkSlippage, FixedBpsSlippage, SlippageModel, TickSlippage

__all__ = ["BookWalkSlippage", "ConstantLatency", "DataLatency", "FeeModel", "FixedBpsSlippage",
           "LatencyModel", "MakerTakerFees", "PerShareFees", "ProbabilisticQueue", "QueueModel",
           "RiskAverseQueue", "SlippageModel", "TickSlippage"]
