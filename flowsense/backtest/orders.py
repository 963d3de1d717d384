"""Moved to :mod:`flowsense.trading.orders`; re-exported here so old imports keep working."""

from flowsense.trading.orders import (  # noqa: F401
    LIQUIDITY_NAMES,
    ORDER_TYPE_NAMES,
    REASON_NAMES,
    STATUS_NAMES,
    CancelRequest,
    Fill,
    Liquidity,
    OrderReport,
    OrderRequest,
    OrderStatus,
    OrderType,
    RejectReason,
    ReportKind,
    Request,
    Side,
)
