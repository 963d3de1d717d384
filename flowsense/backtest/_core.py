"""Split into :mod:`flowsense.backtest.exchange` (state, matching), :mod:`flowsense.backtest.accounting`
and :mod:`flowsense.backtest.builtins` (compiled strategies and the loop); the execution models' math is
in :mod:`flowsense.backtest.models`. Re-exported here so old imports keep working."""

from flowsense.backtest.builtins import SK_BUY_AND_HOLD, SK_MM, SK_OFI, run_builtin  # noqa: F401
from flowsense.backtest.exchange import *  # noqa: F403
from flowsense.backtest.exchange import INF, book_arrays  # noqa: F401
from flowsense.trading.strategies.ofi_threshold import ofi_increment  # noqa: F401
