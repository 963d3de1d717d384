"""Fee models: what each fill costs (positive) or earns (negative, a rebate), by liquidity flag.

The math is :func:`fill_fee` (Numba ``inline="always"``), which the exchange core calls for every fill
without a branch of its own. Adding a fee model means a dataclass and a case here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit

FEES_RATE, FEES_PER_UNIT = 0, 1


@dataclass(frozen=True, slots=True)
class MakerTakerFees:
    """Fee = rate x fill notional, by liquidity flag. A negative ``maker_rate`` is a rebate.

    Default taker 0.08% (8 bp of notional), maker 0. The fill price includes slippage; the notional
    includes the contract multiplier (price x units x multiplier).
    """

    maker_rate: float = 0.0
    taker_rate: float = 0.0008
    kind: ClassVar[int] = FEES_RATE

    def params(self) -> np.ndarray:
        return np.array([float(self.maker_rate), float(self.taker_rate)])


@dataclass(frozen=True, slots=True)
class PerShareFees:
    """Fee = currency per unit x units, by liquidity flag (e.g. taker 0.003, maker -0.002 rebate; for
    futures: per contract)."""

    maker: float = 0.0
    taker: float = 0.003
    kind: ClassVar[int] = FEES_PER_UNIT

    def params(self) -> np.ndarray:
        return np.array([float(self.maker), float(self.taker)])


@njit(cache=True, inline="always")
def fill_fee(kind, p, liquidity, notional, qty):
    """Fee of one fill: ``liquidity`` 0 maker / 1 taker, ``notional`` in currency, ``qty`` in units."""
    rate = p[1] if liquidity == 1 else p[0]
    return rate * notional if kind == FEES_RATE else rate * qty


FeeModel = MakerTakerFees | PerShareFees
