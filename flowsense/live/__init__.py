"""The streaming worker: live ticks -> the backtest's features and strategies -> risk manager -> broker.

Modules: ``state`` (durable store the API reads), ``ticks`` (wire format), ``sources`` (replay, Redis
Streams, Interactive Brokers), ``paper`` (the backtest exchange, fed tick by tick), ``risk``, ``worker``
(the loop), ``metrics``. Vendor code lives in ``flowsense/adapters/<name>/``.
"""
