"""Sensors of the code location (every ``SensorDefinition`` in this package is loaded)."""

from __future__ import annotations

from flowsense_dagster.sensors.inbox import inbox_sensor

__all__ = ["inbox_sensor"]
