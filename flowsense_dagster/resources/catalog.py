"""``CatalogResource``: the DuckDB catalog (views over the Parquet lake)."""

from pathlib import Path

import polars as pl
from dagster import ConfigurableResource
from pydantic import Field

from flowsense.data import catalog
from flowsense_dagster.resources.lake import LakeResource


class CatalogResource(ConfigurableResource):
    """Refresh and query the DuckDB catalog of the lake in ``lake``.

    The views read the lake through globs: refreshing is only needed when a new table appears, and is cheap.
    """

    lake: LakeResource
    path: str | None = Field(
        default=None, description="Catalog file; empty: FLOWSENSE_HOME/flowsense.duckdb."
    )

    @property
    def catalog_path(self) -> Path:
        return Path(self.path) if self.path else self.lake.catalog_path

    def refresh(self) -> list[str]:
        """(Re)create one view per lake table (plus ``validation``); return the view names."""
        return catalog.refresh(self.catalog_path, self.lake.lake())

    def query(self, sql: str) -> pl.DataFrame:
        """Run ``sql`` read-only against the catalog."""
        return catalog.query(self.catalog_path, sql)  # type: ignore[return-value]  # returns a Polars frame
