"""Moved to :mod:`flowsense.trading` (``view`` and ``strategy``); re-exported here so old imports keep
working."""

from flowsense.trading.strategy import Strategy, StrategyConfig  # noqa: F401
from flowsense.trading.view import BookView, GuardedTable, LookaheadError  # noqa: F401
