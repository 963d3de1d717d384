"""FlowSense: market-microstructure research and trading pipeline (domain library).

This package never imports Dagster; the orchestration lives in ``flowsense_dagster``.
"""

__version__ = "0.1.0"
