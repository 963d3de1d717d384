"""``LakeIOManager``: partition-aware Parquet I/O between assets and the lake.

In the style of Dagster's ``project_fully_featured`` ``parquet_io_manager.py``: assets return Polars frames
and take their upstream tables as parameters; this IO manager maps

* the asset to a lake table: the asset's ``lake_table`` metadata, else the last part of its key;
* a symbol x date partition to the lake partition ``{table}/symbol=S/date=D/part-0.parquet``
  (:meth:`flowsense.data.lake.Lake.write_derived`, atomic replace).

Loading:

* one upstream partition (a symbol x date asset reading its own partition upstream): that file. A missing
  file raises, unless the upstream asset has ``lake_optional`` metadata (e.g. ``raw_trades``: a source
  without trades) - then the input is ``None``;
* several upstream partitions (an unpartitioned asset reading a partitioned one, e.g. the aggregate
  report), or an input with ``lake_union`` metadata: the materialized partitions among them, concatenated
  (``diagonal_relaxed``); an empty frame when there are none. An upstream asset outside the job's
  definitions (no partitions known) reads every partition of its table in the lake.

Versions: the lake records, for every derived partition, the input version it was computed from
(:meth:`flowsense.data.lake.Lake.version`, a content hash of the partition's raw tables). The IO manager
reads that version when a run first loads an input of the partition and writes the outputs with it, so a
partition re-ingested while the run computed is refused (:class:`flowsense.errors.StaleInputsError`)
instead of being stored under the new version.

The raw tables are written by the ingest itself (three tables of a partition in one atomic commit), not
through this IO manager; it only reads them.
"""

from typing import Any

import polars as pl
from dagster import ConfigurableIOManager, InputContext, MetadataValue, OutputContext
from pydantic import PrivateAttr

from flowsense.data.lake import Lake, Partition
from flowsense_dagster.partitions import to_lake_partition
from flowsense_dagster.resources.lake import LakeResource

LAKE_IO_MANAGER = "lake_io_manager"
TABLE_KEY = "lake_table"
OPTIONAL_KEY = "lake_optional"
UNION_KEY = "lake_union"


def lake_table(asset_key: Any, metadata: dict[str, Any] | None) -> str:
    value = (metadata or {}).get(TABLE_KEY)
    value = getattr(value, "value", value)
    return str(value) if value else asset_key.path[-1]


def read_union(lake: Lake, table: str, parts: list[Partition]) -> pl.DataFrame:
    """The materialized partitions of ``table`` among ``parts``, concatenated (empty frame when none)."""
    frames = [lake.read(table, p) for p in parts if lake.exists(table, p)]
    return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()


class LakeIOManager(ConfigurableIOManager):
    """Stores symbol x date asset outputs (Polars frames) as lake partitions and loads them back."""

    lake: LakeResource
    _versions: dict[str, str | None] = PrivateAttr(default_factory=dict)  # partition key -> version at load

    def _note_version(self, lake: Lake, part: Partition) -> None:
        if part.key not in self._versions:
            self._versions[part.key] = lake.version(part)

    def handle_output(self, context: OutputContext, obj: pl.DataFrame) -> None:
        table = lake_table(context.asset_key, context.definition_metadata)
        if not isinstance(obj, pl.DataFrame):
            raise TypeError(f"{context.asset_key.to_user_string()}: the lake stores Polars frames, got {type(obj).__name__}")
        if not context.has_asset_partitions:
            raise ValueError(
                f"{context.asset_key.to_user_string()}: lake tables are partitioned by symbol x date; an "
                "unpartitioned asset must return a MaterializeResult (and write its files itself)"
            )
        part = to_lake_partition(context.asset_partition_key)
        path = self.lake.lake().write_derived(table, part, obj, inputs_version=self._versions.get(part.key))
        context.add_output_metadata(
            {
                "lake_table": table,
                "lake_path": MetadataValue.path(str(path)),
                "dagster/partition_row_count": obj.height,
            }
        )

    def load_input(self, context: InputContext) -> pl.DataFrame | None:
        upstream = context.upstream_output
        meta = dict(upstream.definition_metadata or {}) if upstream is not None else {}
        table = lake_table(context.asset_key, meta)
        lake = self.lake.lake()
        if not context.has_asset_partitions:  # upstream defined elsewhere (no partitions known): all of it
            return read_union(lake, table, lake.partitions(table))
        parts = [to_lake_partition(k) for k in context.asset_partition_keys]
        union = bool((context.definition_metadata or {}).get(UNION_KEY)) or len(parts) != 1
        if union:
            return read_union(lake, table, parts)
        (part,) = parts
        self._note_version(lake, part)
        if not lake.exists(table, part):
            if meta.get(OPTIONAL_KEY):
                return None
            raise FileNotFoundError(
                f"no {table} partition {part.symbol} {part.date} in the lake ({lake.path(table, part)}): "
                f"materialize {context.asset_key.to_user_string()} for that partition first"
            )
        return lake.read(table, part)
