"""Assets, one module per pipeline stage (``ingestion``, later ``features``, ``backtests`` ...).

Every module in this package is loaded by :mod:`flowsense_dagster.definitions` (assets, asset checks,
sensors and schedules found at module level), so a new stage only needs a new module here. Symbol x day
assets should use :data:`flowsense_dagster.partitions.symbol_date_partitions` and depend on the raw assets
with ``deps=["raw_events", ...]`` and read the lake through the ``lake`` resource.
"""
