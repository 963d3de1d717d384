"""Resources, chosen per deployment profile in one place: :func:`resources_for_profile`.

``FLOWSENSE_PROFILE`` picks the profile (``local`` by default, or ``production``), in the style of Dagster's
``project_fully_featured`` / hooli examples (``resources_by_deployment_name``). Settings come from
:class:`flowsense.config.Settings` (the one place environment variables are read).

=================  ====================================  ===============================================
key                local                                 production
=================  ====================================  ===============================================
``lake``           ``FLOWSENSE_HOME`` (default           ``FLOWSENSE_HOME``, required (a run never writes
                   ``./.flowsense``), resolved at run    into a working directory by accident)
``catalog``        DuckDB file in the home               same
``lake_io_manager`` Parquet lake partitions              same
``feast``          SQLite online store ``feast/online``  Redis online store ``FLOWSENSE_REDIS_URL``
``redis``          -                                     ``FLOWSENSE_REDIS_URL``
=================  ====================================  ===============================================

Dagster itself runs on SQLite (``dagster.yaml``) locally and on PostgreSQL in production
(``deploy/dagster.production.yaml``).

To add a resource: write its ``ConfigurableResource`` in a module of this package, then add its key to
:func:`local_resources` and :func:`production_resources` (the same key in both, with the values of each
profile; a resource that has no local counterpart is only added to production, and assets that need it
only run there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flowsense.config import PROFILES, Settings, profile_from_env
from flowsense.errors import ConfigError
from flowsense_dagster.resources.catalog import CatalogResource
from flowsense_dagster.resources.feast import FeastResource
from flowsense_dagster.resources.io_manager import LAKE_IO_MANAGER, LakeIOManager
from flowsense_dagster.resources.lake import LakeResource
from flowsense_dagster.resources.redis import RedisResource

__all__ = [
    "LAKE_IO_MANAGER",
    "CatalogResource",
    "FeastResource",
    "LakeIOManager",
    "LakeResource",
    "RedisResource",
    "current_profile",
    "local_resources",
    "production_resources",
    "resources_for_profile",
]


def current_profile() -> str:
    """``FLOWSENSE_PROFILE`` (default ``local``)."""
    return profile_from_env()


def _home(home: str | Path | None) -> str | None:
    return None if home is None else str(Path(home).expanduser().resolve())


def local_resources(home: str | Path | None = None) -> dict[str, Any]:
    """Embedded: files under the home, Feast online store in SQLite. ``home`` None: resolved at run time."""
    settings = Settings.from_env(home)
    lake = LakeResource(home=_home(home))
    return {
        "lake": lake,
        "catalog": CatalogResource(lake=lake),
        LAKE_IO_MANAGER: LakeIOManager(lake=lake),
        "feast": FeastResource(lake=lake, online_store="sqlite", project=settings.feast_project),
    }


def production_resources(home: str | Path | None = None) -> dict[str, Any]:
    """Services: Feast online store and Redis at ``FLOWSENSE_REDIS_URL``; the home must be explicit."""
    settings = Settings.from_env(home, require_home=True)
    lake = LakeResource(home=str(settings.home))
    redis_url = settings.redis_url
    return {
        "lake": lake,
        "catalog": CatalogResource(lake=lake),
        LAKE_IO_MANAGER: LakeIOManager(lake=lake),
        "feast": FeastResource(lake=lake, online_store="redis", redis_url=redis_url, project=settings.feast_project),
        "redis": RedisResource(url=redis_url),
    }


RESOURCES_BY_PROFILE = {"local": local_resources, "production": production_resources}
assert set(RESOURCES_BY_PROFILE) == set(PROFILES)


def resources_for_profile(profile: str | None = None, *, home: str | Path | None = None) -> dict[str, Any]:
    """The resource dict for ``profile`` (default: ``$FLOWSENSE_PROFILE``, else ``local``)."""
    name = (profile or current_profile()).strip().lower()
    if name not in RESOURCES_BY_PROFILE:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(RESOURCES_BY_PROFILE)}")
    return RESOURCES_BY_PROFILE[name](home)
