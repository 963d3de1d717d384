"""The code location: ``defs``.

Loaded by ``dagster dev`` (``workspace.yaml`` / ``[tool.dagster]`` in pyproject.toml) and by
``python -m flowsense_dagster.run``. Everything is collected from the packages, so new modules need no edit
here: every module under ``assets/`` (assets and asset checks), ``sensors/`` (sensors) and ``jobs/``
(schedules). Resources come from :func:`flowsense_dagster.resources.resources_for_profile`
(``FLOWSENSE_PROFILE``).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import TypeVar

from dagster import (
    Definitions,
    ScheduleDefinition,
    SensorDefinition,
    load_asset_checks_from_package_module,
    load_assets_from_package_module,
)

from flowsense_dagster import assets as assets_package
from flowsense_dagster import jobs as jobs_package
from flowsense_dagster import sensors as sensors_package
from flowsense_dagster.executors import executor_for_profile
from flowsense_dagster.jobs import build_all_assets_job, ingest_job
from flowsense_dagster.resources import resources_for_profile

T = TypeVar("T", SensorDefinition, ScheduleDefinition)


def _modules(package: ModuleType) -> Iterator[ModuleType]:
    yield package
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package.__name__}."):
        yield importlib.import_module(info.name)


def _collect(package: ModuleType, kind: type[T]) -> list[T]:
    """Every module-level ``kind`` object in ``package`` and its submodules, once each (by name)."""
    found: dict[str, T] = {}
    for module in _modules(package):
        for value in vars(module).values():
            if isinstance(value, kind):
                found.setdefault(value.name, value)  # type: ignore[attr-defined]
            elif type(value) in (list, tuple):  # plain containers only (some dagster defs are tuples)
                for item in value:
                    if isinstance(item, kind):
                        found.setdefault(item.name, item)  # type: ignore[attr-defined]
    return [found[k] for k in sorted(found)]


all_assets = load_assets_from_package_module(assets_package)
all_asset_checks = load_asset_checks_from_package_module(assets_package)
all_assets_job = build_all_assets_job(all_assets)

defs = Definitions(
    assets=all_assets,
    asset_checks=all_asset_checks,
    jobs=[ingest_job, all_assets_job],
    sensors=_collect(sensors_package, SensorDefinition) + _collect(assets_package, SensorDefinition),
    schedules=_collect(jobs_package, ScheduleDefinition) + _collect(assets_package, ScheduleDefinition),
    resources=resources_for_profile(),
    executor=executor_for_profile(),
)
