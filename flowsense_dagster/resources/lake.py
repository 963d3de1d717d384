"""``LakeResource``: where FlowSense keeps its state (``FLOWSENSE_HOME``): lake, catalog, inbox."""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from flowsense.config import Settings
from flowsense.data.inbox import SourceIndex
from flowsense.data.lake import Lake


class LakeResource(ConfigurableResource):
    """The FlowSense home directory and what lives in it.

    ``home`` is set per profile by :func:`flowsense_dagster.resources.resources_for_profile`; left empty it
    is resolved when a run starts, through :meth:`flowsense.config.Settings.from_env` (``FLOWSENSE_HOME``,
    else ``./.flowsense``).
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
        return (SourceIndex.scan(self.inbox_path, tz=self.settings().tick_tz) if rescan
                else SourceIndex.load(self.inbox_path))
