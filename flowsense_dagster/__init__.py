"""FlowSense's Dagster code location: *when* and *where* things are computed.

What is computed lives in :mod:`flowsense` (which never imports Dagster). This package wires it into
Dagster: partitions (symbol x date, both dynamic), resources and executor per ``FLOWSENSE_PROFILE``
(lake, catalog, lake IO manager, Feast, Redis), assets and asset checks (one module per stage under
:mod:`flowsense_dagster.assets`, each exposing ``defs``, merged in :mod:`flowsense_dagster.definitions`),
the inbox sensor, jobs, and ``python -m flowsense_dagster.run`` (the one-shot pipeline run).
"""
