"""``buy_and_hold``: buy at the first event, sell what was bought at the last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flowsense.trading.orders import OrderRequest, Request
from flowsense.trading.strategy import StrategyBase, StrategyConfig
from flowsense.trading.view import BookView


class BuyAndHoldStrategy(StrategyBase):
    """Stateful side of :class:`BuyAndHold` (phase 0 = nothing sent, 1 = bought, 2 = sold)."""

    config: BuyAndHold

    def reset(self) -> None:
        self.phase = 0

    def on_book(self, view: BookView) -> Sequence[Request]:
        out: list[Request] = []
        if self.phase == 0:
            self.phase = 1
            out.append(OrderRequest.market(1, self.config.size))
        if view.is_last and self.phase == 1:
            self.phase = 2
            if view.position > 0:
                out.append(OrderRequest.market(-1, view.position))
        return out


@dataclass(frozen=True, slots=True)
class BuyAndHold(StrategyConfig):
    """Buy ``size`` units with a market order at the first event, sell what was bought at the last."""

    size: int = 100
    name = "buy_and_hold"
    strategy_class = BuyAndHoldStrategy

    def validate(self) -> None:
        self._require(self.size > 0, "size", "> 0")
