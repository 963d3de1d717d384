"""Figures as PNG bytes (matplotlib, Agg backend; imported only when a figure is drawn)."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fig_png(fig: Any, *, dpi: int = 90) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    return buf.getvalue()


def equity_curves_png(curves: Mapping[str, Sequence[float] | np.ndarray], title: str) -> bytes:
    """One line per named equity curve (e.g. a strategy next to its baselines)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 3))
    for name, values in curves.items():
        ax.plot(np.asarray(values), label=name, lw=1)
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig_png(fig)


def bar_png(labels: Sequence[str], values: Sequence[float], title: str) -> bytes:
    """A bar chart (nulls drawn as 0)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(list(labels), [0.0 if v is None else float(v) for v in values])
    ax.tick_params(axis="x", labelsize=6)
    ax.set_title(title)
    return fig_png(fig)
