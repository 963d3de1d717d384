"""The walk-forward window options shared by ``flowsense train`` and ``flowsense evaluate``.

One definition of ``--days --train --val --test --step --embargo --unit`` (typer reads these ``Annotated``
aliases like inline options), and the parsers of their values.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

Days = Annotated[int | None, typer.Option(help="Use only the latest N common days (default: all).")]
TrainSize = Annotated[str, typer.Option("--train", help="Training window: days (int), a duration (2h) or "
                                         "events with --unit events.")]
ValSize = Annotated[str, typer.Option("--val", help="Validation window (same unit).")]
TestSize = Annotated[str, typer.Option("--test", help="Test window (same unit).")]
Step = Annotated[str | None, typer.Option("--step", help="Fold step (default: the test size).")]
Embargo = Annotated[str, typer.Option("--embargo", help="Gap between windows (same unit).")]
Unit = Annotated[str, typer.Option("--unit", help="auto, days, time or events.")]


def size(value: str | None) -> Any:
    """A window size: an int (days or events) or a duration such as ``2h`` / ``30m``."""
    if value is None:
        return None
    v = value.strip()
    return int(v) if v.lstrip("-").isdigit() else v


def split_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``."""
    return [x.strip() for x in (value or "").split(",") if x.strip()]
