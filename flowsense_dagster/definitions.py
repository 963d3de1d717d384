"""The code location: ``defs``, written out.

Loaded by ``dagster dev`` (``workspace.yaml`` / ``[tool.dagster]`` in pyproject.toml) and by
``python -m flowsense_dagster.run``. Each module below exposes its own ``defs = dg.Definitions(...)``
(assets, asset checks, jobs, sensors); they are merged here explicitly, with the resources and the executor
of the profile (:func:`flowsense_dagster.resources.resources_for_profile`,
:func:`flowsense_dagster.executors.executor_for_profile`; ``FLOWSENSE_PROFILE``).

To add an asset module: give it ``defs = dg.Definitions(assets=[...], asset_checks=[...])`` and add one
line to :data:`MODULE_DEFS`.
"""

from __future__ import annotations

import dagster as dg

from flowsense_dagster import jobs
from flowsense_dagster.assets import backtests, features, ingestion, live, models, serving
from flowsense_dagster.executors import executor_for_profile
from flowsense_dagster.resources import resources_for_profile
from flowsense_dagster.sensors import inbox

MODULE_DEFS: list[dg.Definitions] = [
    ingestion.defs,
    features.defs,
    serving.defs,
    backtests.defs,
    models.defs,
    live.defs,
    jobs.defs,
    inbox.defs,
]

defs = dg.Definitions.merge(
    *MODULE_DEFS,
    dg.Definitions(resources=resources_for_profile(), executor=executor_for_profile()),
)
