"""Feast objects of the FlowSense feature repository: entity ``symbol``, one feature view per bar table.

The objects are built for a :class:`~flowsense.config.Settings` (``build_definitions``) because the
offline sources are files under ``FLOWSENSE_HOME``; nothing with an absolute path is committed. The
committed ``feature_repo/definitions.py`` calls :func:`build_definitions` with ``Settings.from_env()``.

Views (names equal the lake tables, so ``features_1s:ofi_int`` is column ``ofi_int`` of ``features_1s``):

* ``features_1s``: a curated set of 1-second bar features (order flow, book shape, short-horizon
  returns/volatility), :data:`FEATURES_1S`;
* ``features_1min``: 1-minute bar features (order flow plus regime indicators), :data:`FEATURES_1MIN`.

Event timestamp: ``ts`` = bar end, i.e. when the bar's values become known, so a point-in-time join at
time ``t`` returns the latest bar with ``t - ttl <= ts <= t``. Bars are dense (every clock tick of the
session has a row, empty bars included), so within a session the TTL (5 min for 1 s bars, 15 min for 1 min
bars) never hides the latest bar; it stops a join from reaching into the previous session, and it bounds
Feast's point-in-time join, a range join whose size grows with the TTL (with a TTL of a whole session,
3000 entity rows took ~45 s; with these TTLs ~2 s, and a whole day of labels, 49k rows, ~20 s).

Every curated feature must be documented in :data:`flowsense.features.registry.REGISTRY` (checked at import).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Float64, String

from flowsense.config import Settings
from flowsense.features.registry import BAR_TABLE, REGISTRY

ENTITY = "symbol"
TIMESTAMP_FIELD = "ts"
FEATURE_SERVICE = "flowsense_bars"

# Keys and metadata exported with every source row (besides the features).
SOURCE_KEYS: tuple[str, ...] = ("symbol", "date", "bar_start", "ts")

FEATURES_1S: tuple[str, ...] = (
    "mid_close", "microprice_close", "micro_dev_close", "spread_close", "spread_mean",
    "ofi_l1", "ofi_int", "depth_imb_1", "depth_imb_1_mean",
    "bid_sz_1", "ask_sz_1", "bid_depth", "ask_depth",
    "volume", "signed_volume", "n_trades", "tfi",
    "vwap_day", "dist_vwap_bps", "event_rate", "cancel_add_ratio",
    "ret_1", "ret_5", "ret_20", "rv_20", "rv_60", "vol_ratio", "vpin",
)  # fmt: skip
"""1-second bars: microstructure state and flow; every name is a ``features_<clock>`` registry column."""

FEATURES_1MIN: tuple[str, ...] = (
    "mid_close", "mid_high", "mid_low", "spread_mean",
    "ofi_l1", "ofi_int", "depth_imb_1_mean",
    "volume", "signed_volume", "n_trades", "tfi", "vwap", "dist_vwap_bps",
    "cancel_add_ratio", "event_rate",
    "ret_1", "ret_5", "ret_20", "rv_20", "rv_60", "vol_ratio",
    "rsi_14", "bb_pctb_20", "bb_width_20", "er_10", "er_30", "adx_14",
    "kyle_lambda_60", "kyle_r2_60", "vpin",
)  # fmt: skip
"""1-minute bars: flow plus regime indicators (RSI, Bollinger, efficiency ratio, ADX, Kyle's lambda)."""


@dataclass(frozen=True)
class ViewSpec:
    """One bar feature view: its name (= lake table), curated features and description."""

    name: str
    features: tuple[str, ...]
    ttl: dt.timedelta
    description: str

    @property
    def table(self) -> str:
        return self.name


VIEWS: tuple[ViewSpec, ...] = (
    ViewSpec("features_1s", FEATURES_1S, dt.timedelta(minutes=5),
             "1-second bars: order flow, book state, short-horizon returns."),
    ViewSpec("features_1min", FEATURES_1MIN, dt.timedelta(minutes=15),
             "1-minute bars: order flow and regime indicators."),
)
VIEW_NAMES: tuple[str, ...] = tuple(v.name for v in VIEWS)


def _validate_specs() -> None:
    for view in VIEWS:
        missing = [f for f in view.features if f"{BAR_TABLE}.{f}" not in REGISTRY]
        if missing:
            raise ValueError(f"{view.name}: features not in the feature registry: {missing}")
        if len(set(view.features)) != len(view.features):
            raise ValueError(f"{view.name}: duplicate features")


_validate_specs()


def view_spec(name: str) -> ViewSpec:
    """The :class:`ViewSpec` named ``name`` (``features_1s``, ``features_1min``)."""
    for v in VIEWS:
        if v.name == name:
            return v
    raise KeyError(f"no feature view {name!r}; views: {', '.join(VIEW_NAMES)}")


def feature_refs(views: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """Feast feature references ``view:feature`` of ``views`` (default: all)."""
    return [f"{v.name}:{f}" for v in VIEWS if views is None or v.name in views for f in v.features]


def feast_dir(settings: Settings) -> Path:
    """``FLOWSENSE_HOME/feast``: registry, SQLite online store and the exported offline sources."""
    return settings.home / "feast"


def sources_dir(settings: Settings) -> Path:
    """Folder of the offline sources: one sub-folder per view, one Parquet file per symbol x day."""
    return feast_dir(settings) / "sources"


def source_glob(settings: Settings, view: str) -> str:
    """The ``FileSource`` path of ``view``: a glob over its per-partition Parquet files."""
    return str(sources_dir(settings) / view / "*.parquet")


@dataclass
class FeastDefinitions:
    """The Feast objects for one FlowSense home (what ``feast apply`` registers)."""

    entity: Entity
    sources: dict[str, FileSource] = field(default_factory=dict)
    views: dict[str, FeatureView] = field(default_factory=dict)
    services: dict[str, FeatureService] = field(default_factory=dict)

    def objects(self) -> list[object]:
        """Everything to pass to ``FeatureStore.apply``."""
        return [self.entity, *self.views.values(), *self.services.values()]


def build_definitions(settings: Settings) -> FeastDefinitions:
    """Entity, sources, feature views and the ``flowsense_bars`` feature service for ``settings``."""
    symbol = Entity(
        name=ENTITY,
        join_keys=[ENTITY],
        value_type=ValueType.STRING,
        description="Instrument ticker (lake partition key `symbol`).",
    )
    defs = FeastDefinitions(entity=symbol)
    for spec in VIEWS:
        source = FileSource(
            name=f"{spec.name}_source",
            path=source_glob(settings, spec.name),
            file_format=ParquetFormat(),
            timestamp_field=TIMESTAMP_FIELD,
            description=f"Curated export of lake table {spec.table} (one file per symbol x day).",
        )
        schema = [Field(name=ENTITY, dtype=String)] + [
            Field(name=f, dtype=Float64, description=REGISTRY[f"{BAR_TABLE}.{f}"].description)
            for f in spec.features
        ]
        defs.sources[spec.name] = source
        defs.views[spec.name] = FeatureView(
            name=spec.name,
            entities=[symbol],
            ttl=spec.ttl,
            schema=schema,
            source=source,
            online=True,
            description=spec.description,
            tags={"table": spec.table, "timestamp": "bar end (ts)"},
        )
    defs.services[FEATURE_SERVICE] = FeatureService(
        name=FEATURE_SERVICE,
        features=list(defs.views.values()),
        description="All curated bar features (1 s and 1 min).",
    )
    return defs


__all__ = [
    "ENTITY",
    "FEATURES_1MIN",
    "FEATURES_1S",
    "FEATURE_SERVICE",
    "SOURCE_KEYS",
    "TIMESTAMP_FIELD",
    "VIEWS",
    "VIEW_NAMES",
    "FeastDefinitions",
    "ViewSpec",
    "build_definitions",
    "feast_dir",
    "feature_refs",
    "source_glob",
    "sources_dir",
    "view_spec",
]
