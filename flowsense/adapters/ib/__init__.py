"""Interactive Brokers through ``ib_async``: the broker (``broker``) and market data (``source``)."""
