"""Order-book simulator writing LOBSTER-format days (see :mod:`flowsense.sim.core` for the model).

``simulate(["AAA", "BBB"], days=2, out_dir=Path("sim"))`` writes ``sim/AAA_2024-01-02_10.zip`` etc.,
readable with :func:`flowsense.data.lobster.read_lobster`. Parameters come from ``params.json``, fitted by
``python -m flowsense.sim.calibrate`` on the real LOBSTER samples.
"""

from __future__ import annotations

from flowsense.sim.core import DayResult, simulate, trading_days
from flowsense.sim.params import SimParams

__all__ = ["DayResult", "SimParams", "simulate", "trading_days"]
