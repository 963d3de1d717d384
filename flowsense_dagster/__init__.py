"""FlowSense's Dagster code location: *when* and *where* things are computed.

What is computed lives in :mod:`flowsense` (which never imports Dagster). This package wires it into
Dagster: partitions (symbol x date), resources (lake, catalog; chosen per ``FLOWSENSE_PROFILE``), assets
(one module per stage under :mod:`flowsense_dagster.assets`, picked up automatically), asset checks,
the inbox sensor, jobs, and ``python -m flowsense_dagster.run`` (the one-shot pipeline run).
"""
