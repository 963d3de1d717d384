"""Resources, chosen per deployment profile in one place: :func:`resources_for_profile`.

``FLOWSENSE_PROFILE`` picks the profile (``local`` by default, or ``production``), in the style of Dagster's
``project_fully_featured`` / hooli examples (``resources_by_deployment_name``):

* ``local``: everything under ``FLOWSENSE_HOME`` (default ``./.flowsense``): Parquet lake, DuckDB catalog;
  Dagster itself on SQLite (``dagster.yaml``).
* ``production``: the same lake/catalog resources, but ``FLOWSENSE_HOME`` must be set explicitly (a run fails
  fast instead of writing into a working directory); Dagster on PostgreSQL
  (``deploy/dagster.production.yaml``). Later resources (MLflow, Feast, brokers) add their entries here.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from flowsense.config import PROFILES
from flowsense.errors import ConfigError
from flowsense_dagster.resources.catalog import CatalogResource
from flowsense_dagster.resources.lake import LakeResource

__all__ = ["CatalogResource", "LakeResource", "current_profile", "resources_for_profile"]


def current_profile() -> str:
    profile = os.environ.get("FLOWSENSE_PROFILE", "local").strip().lower() or "local"
    if profile not in PROFILES:
        raise ConfigError(f"FLOWSENSE_PROFILE={profile!r} is not one of {', '.join(PROFILES)}")
    return profile


def _local() -> dict[str, Any]:
    # EnvVar is resolved when a run starts (and shown as such in the UI); unset -> ./.flowsense at run time
    home = EnvVar("FLOWSENSE_HOME") if os.environ.get("FLOWSENSE_HOME") else None
    lake = LakeResource(home=home)
    return {"lake": lake, "catalog": CatalogResource(lake=lake)}


def _production() -> dict[str, Any]:
    lake = LakeResource(home=EnvVar("FLOWSENSE_HOME"))  # required: no implicit ./.flowsense in production
    return {"lake": lake, "catalog": CatalogResource(lake=lake)}


RESOURCES_BY_PROFILE = {"local": _local, "production": _production}


def resources_for_profile(profile: str | None = None) -> dict[str, Any]:
    """The resource dict for ``profile`` (default: ``$FLOWSENSE_PROFILE``, else ``local``)."""
    name = (profile or current_profile()).strip().lower()
    if name not in RESOURCES_BY_PROFILE:
        raise ConfigError(f"unknown profile {name!r}; choose one of {', '.join(RESOURCES_BY_PROFILE)}")
    return RESOURCES_BY_PROFILE[name]()
