"""The trading contract shared by the backtest engine and the live worker.

* :mod:`~flowsense.trading.orders` - order requests, cancels, fills, order reports and their codes;
* :mod:`~flowsense.trading.account` - :class:`Position` / :class:`Account` (average-cost accounting,
  the same arithmetic the compiled backtest uses);
* :mod:`~flowsense.trading.view` - the :class:`BookView` a strategy sees on its latency-delayed clock
  and :class:`LookaheadError`;
* :mod:`~flowsense.trading.strategy` - the :class:`Strategy` protocol, :class:`StrategyConfig` (frozen,
  validated, ``to_dict``/``from_dict``, JSON/YAML files) and :func:`make_strategy`;
* :mod:`~flowsense.trading.strategies` - the built-in strategies (config + stateful object each).

No pandas/polars/Dagster here; NumPy and Numba only (the rule functions are Numba ``inline="always"``).
"""

from __future__ import annotations

from flowsense.errors import ConfigError
from flowsense.trading.account import Account, Position, cash_after_fill, position_after_fill
from flowsense.trading.orders import (
    CancelRequest,
    Fill,
    Liquidity,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    RejectReason,
    ReportKind,
    Request,
    Side,
)
from flowsense.trading.strategy import (
    Strategy,
    StrategyBase,
    StrategyConfig,
    load_strategy_config,
    make_strategy,
    strategy_configs,
)
from flowsense.trading.view import BookView, GuardedTable, LookaheadError

__all__ = [
    "Account", "BookView", "CancelRequest", "ConfigError", "Fill", "GuardedTable", "Liquidity",
    "LookaheadError", "OrderReport", "OrderRequest", "OrderStatus", "OrderType", "Position", "RejectReason",
    "ReportKind", "Request", "Side", "Strategy", "StrategyBase", "StrategyConfig", "cash_after_fill",
    "load_strategy_config", "make_strategy", "position_after_fill", "strategy_configs",
]
