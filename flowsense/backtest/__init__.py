"""Backtesting: the event-driven LOB engine (``engine``), its swappable models (``models``), the strategy
interface shared with the live worker (``strategy``, ``orders``) and built-in strategies (``strategies``).

Kept light on purpose: import the submodules you need, e.g.
``from flowsense.backtest.engine import BacktestConfig, BacktestResult, run_backtest``.
"""
