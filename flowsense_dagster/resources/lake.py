"""``LakeResource``: where FlowSense keeps its state (``FLOWSENSE_HOME``): lake, catalog, inbox."""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from flowsense.config import Settings
from flowsense.data.lake import Lake
from flowsense_dagster.sources import SourceIndex


class LakeResource(ConfigurableResource):
    """The FlowSense home directory and what lives in it.

    ``home`` is normally bound to ``EnvVar("FLOWSENSE_HOME")`` (see :func:`resources_for_profile`); left
    empty it falls back to ``FLOWSENSE_HOME`` at run time, then ``./.flowsense``.
    """

    home: str | None = Field(
        default=None,
        description="FlowSense home (lake, DuckDB catalog, inbox). Empty: $FLOWSENSE_HOME, else ./.flowsense.",
    )

    def settings(self) -> Settings:
        return Settings.from_env(self.home or None)

    @property
    def home_path(self) -> Path:
        return self.settings().home

    @property
    def lake_path(self) -> Path:
        return self.settings().lake

    @property
    def catalog_path(self) -> Path:
        return self.settings().catalog_path

    @property
    def inbox_path(self) -> Path:
        return self.settings().inbox

    def lake(self) -> Lake:
        return Lake(self.lake_path)

    def source_index(self, *, rescan: bool = True) -> SourceIndex:
        """The inbox index; ``rescan`` describes new/changed files first (cheap when nothing changed)."""
        return SourceIndex.scan(self.inbox_path) if rescan else SourceIndex.load(self.inbox_path)
