"""Assets, one module per pipeline stage (``ingestion``, ``features``, ``serving``, ``backtests``).

Each module exposes ``defs = dg.Definitions(assets=[...], asset_checks=[...])``;
:mod:`flowsense_dagster.definitions` merges them explicitly. Symbol x day assets use
:data:`flowsense_dagster.partitions.symbol_date_partitions`, take their upstream tables as parameters and
return Polars frames, stored by the ``lake_io_manager`` (:mod:`flowsense_dagster.resources.io_manager`).
"""
