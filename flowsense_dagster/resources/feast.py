"""``FeastResource``: the Feast feature store of the FlowSense home (online store chosen per profile)."""

from typing import TYPE_CHECKING, Literal

from dagster import ConfigurableResource
from pydantic import Field

from flowsense.config import Settings
from flowsense_dagster.resources.lake import LakeResource

if TYPE_CHECKING:
    from feast import FeatureStore


class FeastResource(ConfigurableResource):
    """Registry and offline sources under ``FLOWSENSE_HOME/feast``; the online store is SQLite
    (``feast/online.db``, profile ``local``) or Redis (profile ``production``)."""

    lake: LakeResource
    online_store: Literal["sqlite", "redis"] = Field(default="sqlite", description="Feast online store.")
    redis_url: str | None = Field(
        default=None, description="Redis of the online store (redis://host:port/db or host:port,db=N)."
    )
    project: str | None = Field(default=None, description="Feast project; empty: flowsense.")

    def settings(self) -> Settings:
        return self.lake.settings()

    def store(self) -> "FeatureStore":
        from flowsense.serving import feature_store

        return feature_store(
            self.settings(), project=self.project, redis_url=self.redis_url, online_store=self.online_store
        )
