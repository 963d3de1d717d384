"""Instruments: what a symbol *is* (venue, currency, tick, lot, multiplier, units, trading sessions).

Stable API (the backtest, features and CLI read it)::

    from flowsense.data.instruments import Instrument, instrument_for
    inst = instrument_for("ESH4", settings)          # or a Lake, or a lake root path, or None
    inst.multiplier, inst.tick_size, inst.size_scale  # 50.0, 0.25, 1
    inst.is_open(ts_ns)                               # inside a trading session?
    inst.open_mask(ts_ns_array)                       # vectorised
    inst.notional(price, stored_size)                 # price * quantity * multiplier, in inst.currency

Units. ``price_scale``/``size_scale`` say how the *stored* lake values relate to real ones:
``real price = stored price / price_scale`` and ``real quantity = stored size / size_scale``. Every reader
stores prices in currency units (``price_scale = 1``); sizes are whole shares/contracts (``size_scale = 1``)
except fractional crypto quantities, stored in 1e-8 units (``size_scale = 10**8``: 0.5 BTC is stored as
50,000,000). :meth:`Instrument.quantity` converts a stored size back.

Where an instrument comes from (first match wins, ``Instrument.source`` says which):

1. ``user``: the user file (``Settings.instruments_file``: ``$FLOWSENSE_INSTRUMENTS`` or
   ``$FLOWSENSE_HOME/instruments.yaml``; YAML or JSON) - a mapping ``SYMBOL: {field: value, ...}`` or a list
   of mappings with ``symbol``; fields not given come from the built-in default for that symbol;
2. ``dbn-definition`` / ``ingest``: the lake's ``instruments`` table, filled by ingesting a Databento
   ``definition`` file (tick = ``min_price_increment``, multiplier = ``unit_of_measure_qty``, currency,
   exchange, asset class from ``instrument_class``) or recorded at ingest (e.g. the size scale a tick file
   was stored with);
3. ``builtin``: defaults by symbol pattern - CME equity-index futures (``ESH4``, ``NQU4``, ``MESZ4``...:
   tick, multiplier, Globex sessions 17:00-16:00 America/Chicago), Binance spot pairs and perpetuals
   (``BTCUSDT``, USD-M ``BTCUSDT_PERP``, COIN-M ``BTCUSD_PERP``: 24/7 UTC, ``size_scale=1e8`` except COIN-M
   contracts), US equities (1-5 capital letters: NASDAQ,
   tick 0.01, 09:30-16:00 America/New_York);
4. ``guess``: anything else gets equity-like defaults (tick 0.01, 24 h UTC sessions) - flagged as a guess.

Sessions. A session belongs to a *trade date* D: it opens at ``open`` local time on D + ``open_day_offset``
days and closes at ``close`` on D (Globex: opens 17:00 CT the evening before). Trade dates are the weekdays
in ``trading_days`` minus ``holidays`` (full-day closures; early closes are not modelled). A session that
closes at or before it opens wraps past midnight. ``sessions=()`` means always open.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from flowsense.errors import ConfigError

NS = 1_000_000_000
INSTRUMENTS_DIR = "_instruments"
INSTRUMENTS_FILE = "instruments.parquet"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True, slots=True)
class Session:
    """One daily trading window in the instrument's time zone (``HH:MM`` strings)."""

    open: str
    close: str
    open_day_offset: int = 0  # -1: opens the evening before its trade date (Globex)

    def bounds(self, trade_date: dt.date, tz: ZoneInfo) -> tuple[int, int]:
        """(open, close) of this session for ``trade_date`` as UTC epoch ns."""
        o = dt.time.fromisoformat(self.open)
        c = dt.time.fromisoformat(self.close)
        open_day = trade_date + dt.timedelta(days=self.open_day_offset)
        start = dt.datetime.combine(open_day, o, tzinfo=tz)
        end = dt.datetime.combine(trade_date, c, tzinfo=tz)
        if end <= start:
            end += dt.timedelta(days=1)
        return int(start.timestamp()) * NS, int(end.timestamp()) * NS


def _parse_days(spec: str) -> frozenset[int]:
    """``mon-fri`` / ``mon,wed`` / ``daily`` -> weekday numbers (Monday = 0)."""
    spec = spec.strip().lower()
    if spec in ("daily", "all", "mon-sun", "24/7"):
        return frozenset(range(7))
    out: set[int] = set()
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = (WEEKDAYS.index(x.strip()[:3]) for x in part.split("-", 1))
            out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        elif part:
            out.add(WEEKDAYS.index(part[:3]))
    return frozenset(out)


@dataclass(frozen=True, slots=True)
class Instrument:
    """Static description of a tradable symbol (see the module docstring for units and sources)."""

    symbol: str
    venue: str = ""
    asset_class: str = "equity"  # equity | future | crypto_spot | crypto_perp | fx | index | other
    currency: str = "USD"
    tick_size: float = 0.01
    lot_size: float = 1.0  # smallest tradable quantity, in real units (contracts, shares, BTC)
    multiplier: float = 1.0  # currency per (price point x one unit of quantity)
    price_scale: int = 1  # real price = stored price / price_scale
    size_scale: int = 1  # real quantity = stored size / size_scale
    sessions: tuple[Session, ...] = ()
    tz: str = "UTC"
    trading_days: str = "daily"
    holidays: tuple[str, ...] = ()  # ISO trade dates without a session
    source: str = "guess"  # user | dbn-definition | ingest | builtin | guess
    instrument_id: int | None = None  # the vendor's numeric id (Databento), when known
    expiration: str | None = None  # ISO UTC timestamp of the last trade (futures)
    notes: str = ""

    # ---- conversions ---------------------------------------------------------------------------
    def quantity(self, stored_size: float | np.ndarray) -> float | np.ndarray:
        """Stored (integer) size -> real quantity."""
        return stored_size / self.size_scale

    def stored_size(self, quantity: float | np.ndarray) -> float | np.ndarray:
        """Real quantity -> stored size units."""
        return np.round(np.asarray(quantity) * self.size_scale) if isinstance(quantity, np.ndarray) \
            else round(quantity * self.size_scale)

    def notional(self, price: float | np.ndarray, stored_size: float | np.ndarray) -> float | np.ndarray:
        """Currency value of ``stored_size`` at ``price``: price x quantity x multiplier."""
        return price / self.price_scale * self.quantity(stored_size) * self.multiplier

    def round_price(self, price: float, direction: int = 0) -> float:
        """Snap ``price`` to the tick grid: down (direction -1), up (+1) or nearest (0)."""
        steps = price / self.tick_size
        n = np.floor(steps + 1e-9) if direction < 0 else np.ceil(steps - 1e-9) if direction > 0 else np.round(steps)
        return float(round(n * self.tick_size, 12))

    # ---- sessions ------------------------------------------------------------------------------
    @property
    def always_open(self) -> bool:
        return not self.sessions

    def trade_dates(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trade dates (with a session) from ``start`` to ``end`` inclusive."""
        days = _parse_days(self.trading_days)
        hol = set(self.holidays)
        out = []
        d = start
        while d <= end:
            if d.weekday() in days and d.isoformat() not in hol:
                out.append(d)
            d += dt.timedelta(days=1)
        return out

    def session_bounds(self, start: dt.date, end: dt.date) -> np.ndarray:
        """(k, 2) int64 array of session [open, close) UTC ns for trade dates ``start``..``end``."""
        tz = ZoneInfo(self.tz)
        rows = [s.bounds(d, tz) for d in self.trade_dates(start, end) for s in self.sessions]
        return np.array(sorted(rows), dtype=np.int64).reshape(-1, 2)

    def open_mask(self, ts_ns: np.ndarray | Sequence[int]) -> np.ndarray:
        """True where a UTC-ns timestamp lies inside a session (``[open, close)``)."""
        ts = np.asarray(ts_ns, dtype=np.int64)
        if self.always_open or ts.size == 0:
            return np.ones(ts.shape, dtype=bool)
        lo = dt.datetime.fromtimestamp(int(ts.min()) // NS, dt.UTC).date() - dt.timedelta(days=2)
        hi = dt.datetime.fromtimestamp(int(ts.max()) // NS, dt.UTC).date() + dt.timedelta(days=2)
        b = self.session_bounds(lo, hi)
        if b.size == 0:
            return np.zeros(ts.shape, dtype=bool)
        i = np.searchsorted(b[:, 0], ts, side="right") - 1
        ok = i >= 0
        out = np.zeros(ts.shape, dtype=bool)
        out[ok] = ts[ok] < b[i[ok], 1]
        return out

    def is_open(self, ts_ns: int | dt.datetime) -> bool:
        if isinstance(ts_ns, dt.datetime):
            if ts_ns.tzinfo is None:
                raise ValueError("is_open needs an aware datetime (or UTC epoch ns)")
            ts_ns = int(ts_ns.timestamp() * NS)
        return bool(self.open_mask(np.array([ts_ns]))[0])

    def next_open(self, ts_ns: int) -> int | None:
        """The first session open at or after ``ts_ns`` (within 30 days), or None."""
        if self.always_open:
            return ts_ns
        d = dt.datetime.fromtimestamp(ts_ns // NS, dt.UTC).date()
        b = self.session_bounds(d - dt.timedelta(days=2), d + dt.timedelta(days=30))
        if ((b[:, 0] <= ts_ns) & (ts_ns < b[:, 1])).any():
            return ts_ns
        later = b[b[:, 0] >= ts_ns]
        return int(later[0, 0]) if later.size else None

    # ---- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sessions"] = [asdict(s) for s in self.sessions]
        d["holidays"] = list(self.holidays)
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, base: Instrument | None = None) -> Instrument:
        """Build from a mapping (unknown keys are an error); missing fields come from ``base``."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown instrument field(s) {unknown}; known: {sorted(known)}")
        values = dict(data)
        if "sessions" in values:
            raw = values["sessions"]
            if isinstance(raw, str):
                raw = json.loads(raw)
            values["sessions"] = tuple(
                s if isinstance(s, Session) else Session(**s) for s in (raw or ())
            )
        if "holidays" in values:
            raw = values["holidays"]
            if isinstance(raw, str):
                raw = json.loads(raw)
            values["holidays"] = tuple(str(h) for h in (raw or ()))
        for name in ("tick_size", "lot_size", "multiplier"):
            if name in values and values[name] is not None:
                values[name] = float(values[name])
        for name in ("price_scale", "size_scale"):
            if name in values and values[name] is not None:
                values[name] = int(values[name])
        values = {k: v for k, v in values.items() if v is not None or k in ("instrument_id", "expiration")}
        if base is not None:
            return replace(base, **values)
        if "symbol" not in values:
            raise ConfigError("an instrument needs a symbol")
        inst = cls(**values)
        inst.check()
        return inst

    def check(self) -> Instrument:
        if not self.tick_size > 0:
            raise ConfigError(f"instrument {self.symbol}: tick_size must be > 0, not {self.tick_size}")
        if not self.lot_size > 0:
            raise ConfigError(f"instrument {self.symbol}: lot_size must be > 0, not {self.lot_size}")
        if not self.multiplier > 0:
            raise ConfigError(f"instrument {self.symbol}: multiplier must be > 0, not {self.multiplier}")
        if self.size_scale < 1 or self.price_scale < 1:
            raise ConfigError(f"instrument {self.symbol}: price_scale and size_scale must be >= 1")
        try:
            ZoneInfo(self.tz)
        except Exception as exc:
            raise ConfigError(f"instrument {self.symbol}: unknown time zone {self.tz!r}") from exc
        try:
            _parse_days(self.trading_days)
            for s in self.sessions:
                dt.time.fromisoformat(s.open)
                dt.time.fromisoformat(s.close)
        except ValueError as exc:
            raise ConfigError(f"instrument {self.symbol}: bad sessions/trading_days ({exc})") from exc
        return self


# ------------------------------------------------------------------------------------ built-in defaults

GLOBEX = (Session("17:00", "16:00", open_day_offset=-1),)
# Full-day closures of CME equity-index futures (trade dates without a Globex session).
CME_HOLIDAYS = (
    "2012-04-06", "2012-12-25", "2013-01-01", "2013-03-29", "2013-12-25",
    "2014-01-01", "2014-04-18", "2014-12-25", "2015-01-01", "2015-04-03", "2015-12-25",
    "2023-01-02", "2023-04-07", "2023-12-25", "2024-01-01", "2024-03-29", "2024-12-25",
    "2025-01-01", "2025-04-18", "2025-12-25", "2026-01-01", "2026-04-03", "2026-12-25",
)
NASDAQ_HOURS = (Session("09:30", "16:00"),)
NASDAQ_HOLIDAYS = (
    "2012-01-02", "2012-01-16", "2012-02-20", "2012-04-06", "2012-05-28", "2012-07-04", "2012-09-03",
    "2012-10-29", "2012-10-30", "2012-11-22", "2012-12-25",
    "2023-01-02", "2023-01-16", "2023-02-20", "2023-04-07", "2023-05-29", "2023-06-19", "2023-07-04",
    "2023-09-04", "2023-11-23", "2023-12-25",
    "2024-01-01", "2024-01-15", "2024-02-19", "2024-03-29", "2024-05-27", "2024-06-19", "2024-07-04",
    "2024-09-02", "2024-11-28", "2024-12-25",
    "2025-01-01", "2025-01-09", "2025-01-20", "2025-02-17", "2025-04-18", "2025-05-26", "2025-06-19",
    "2025-07-04", "2025-09-01", "2025-11-27", "2025-12-25",
)
# CME futures roots we know: (tick size, multiplier, description).
CME_ROOTS: dict[str, tuple[float, float, str]] = {
    "ES": (0.25, 50.0, "E-mini S&P 500"),
    "MES": (0.25, 5.0, "Micro E-mini S&P 500"),
    "NQ": (0.25, 20.0, "E-mini Nasdaq-100"),
    "MNQ": (0.25, 2.0, "Micro E-mini Nasdaq-100"),
    "RTY": (0.1, 50.0, "E-mini Russell 2000"),
    "YM": (1.0, 5.0, "E-mini Dow ($5)"),
}
FUTURE_RE = re.compile(r"^(?P<root>[A-Z]{1,3}?)(?P<month>[FGHJKMNQUVXZ])(?P<year>\d{1,2})$")
CRYPTO_QUOTES = ("USDT", "USDC", "BUSD", "FDUSD", "TUSD", "BTC", "ETH", "BNB", "EUR", "USD")
BINANCE_TICKS = {"BTC": 0.01, "ETH": 0.01}
COINM_RE = re.compile(r"^(?P<base>[A-Z0-9]{2,10})USD_PERP$")
USDM_RE = re.compile(r"^(?P<base>[A-Z0-9]{2,10})(?P<quote>USDT|USDC)_PERP$")
EQUITY_RE = re.compile(r"^[A-Z]{1,5}$")


def builtin_instrument(symbol: str) -> Instrument:
    """The built-in default for ``symbol`` (``source='builtin'``), or a flagged guess."""
    sym = symbol.upper()
    m = FUTURE_RE.match(sym)
    if m and m["root"] in CME_ROOTS:
        tick, mult, desc = CME_ROOTS[m["root"]]
        return Instrument(
            sym, venue="XCME", asset_class="future", currency="USD", tick_size=tick, lot_size=1.0,
            multiplier=mult, sessions=GLOBEX, tz="America/Chicago", trading_days="mon-fri",
            holidays=CME_HOLIDAYS, source="builtin", notes=f"{desc} future (CME Globex, built-in default)",
        )
    m = COINM_RE.match(sym)
    if m:
        base = m["base"]
        return Instrument(
            sym, venue="BINANCE-COINM", asset_class="crypto_perp", currency="USD",
            tick_size=0.1 if base == "BTC" else 0.01, lot_size=1.0,
            multiplier=100.0 if base == "BTC" else 10.0, size_scale=1, source="builtin",
            notes="Binance COIN-M perpetual: size in contracts of 100 USD (BTC) / 10 USD (others); "
            "PnL is in the base coin, multiplier here in USD per contract (inverse contract, approximate)",
        )
    m = USDM_RE.match(sym)
    if m:
        base = m["base"]
        return Instrument(
            sym, venue="BINANCE-USDM", asset_class="crypto_perp", currency=m["quote"],
            tick_size=0.1 if base == "BTC" else 0.01, lot_size=0.001 if base == "BTC" else 0.01, multiplier=1.0,
            size_scale=10**8, source="builtin",
            notes="Binance USD-M perpetual (FlowSense name SYMBOL_PERP): 24/7 UTC, sizes stored in 1e-8 units",
        )
    for quote in CRYPTO_QUOTES:
        if sym.endswith(quote) and len(sym) > len(quote) + 1 and not EQUITY_RE.match(sym):
            base = sym[: -len(quote)]
            return Instrument(
                sym, venue="BINANCE", asset_class="crypto_spot", currency=quote,
                tick_size=BINANCE_TICKS.get(base, 0.01) if quote.startswith("USD") else 1e-6,
                lot_size=1e-5 if base == "BTC" else 1e-4, multiplier=1.0, size_scale=10**8,
                source="builtin", notes="Binance pair: 24/7 UTC, sizes stored in 1e-8 units (built-in default)",
            )
    if EQUITY_RE.match(sym):
        return Instrument(
            sym, venue="XNAS", asset_class="equity", currency="USD", tick_size=0.01, lot_size=1.0,
            multiplier=1.0, sessions=NASDAQ_HOURS, tz="America/New_York", trading_days="mon-fri",
            holidays=NASDAQ_HOLIDAYS, source="builtin",
            notes="US equity (NASDAQ regular hours, built-in default; LOBSTER samples)",
        )
    return Instrument(sym, source="guess", notes="unknown symbol: equity-like defaults, always open (a guess)")


# ---------------------------------------------------------------------------------- Databento definitions


def from_dbn_definitions(rec: np.ndarray, names: Sequence[str] | None = None) -> list[Instrument]:
    """Instruments from Databento ``definition`` records (a structured array); the last record per symbol
    wins. ``names`` overrides the symbol of each record (default ``raw_symbol``)."""
    undef = np.iinfo(np.int64).max
    out: dict[str, Instrument] = {}
    for i, r in enumerate(rec):
        raw = r["raw_symbol"]
        sym = names[i] if names is not None else (raw.decode() if isinstance(raw, bytes) else str(raw))
        base = builtin_instrument(sym)

        def text(name: str, r: Any = r) -> str:
            v = r[name] if name in rec.dtype.names else b""
            return (v.decode(errors="replace") if isinstance(v, bytes) else str(v)).strip("\x00 ")

        tick = int(r["min_price_increment"])
        uom_qty = int(r["unit_of_measure_qty"])
        cm = int(r["contract_multiplier"])
        if uom_qty not in (undef, 0):
            mult = uom_qty / 1e9
        elif cm not in (np.iinfo(np.int32).max, 0):
            mult = float(cm)
        else:
            mult = base.multiplier
        lot = int(r["min_lot_size_round_lot"]) if "min_lot_size_round_lot" in rec.dtype.names else 0
        klass = text("instrument_class")
        asset = {"F": "future", "K": "equity", "C": "option", "P": "option", "S": "spread", "B": "bond",
                 "X": "fx"}.get(klass, base.asset_class)
        exp = int(r["expiration"])
        expiration = None if exp >= 2**63 - 1 else dt.datetime.fromtimestamp(exp / NS, dt.UTC).isoformat()
        out[sym] = replace(
            base,
            venue=text("exchange") or base.venue,
            asset_class=asset,
            currency=text("currency") or base.currency,
            tick_size=tick / 1e9 if tick not in (undef, 0) else base.tick_size,
            lot_size=float(lot) if lot > 0 else base.lot_size,
            multiplier=mult,
            source="dbn-definition",
            instrument_id=int(r["instrument_id"]),
            expiration=expiration,
            notes=f"Databento definition ({text('asset')} {text('security_type')}, group {text('group')})",
        )
    return list(out.values())


# ------------------------------------------------------------------------------------------ the table

TABLE_COLUMNS = [f.name for f in fields(Instrument)]


def instruments_path(lake_root: str | Path) -> Path:
    return Path(lake_root) / INSTRUMENTS_DIR / INSTRUMENTS_FILE


def _to_frame(instruments: Iterable[Instrument]) -> Any:
    import polars as pl

    rows = []
    for inst in instruments:
        d = inst.to_dict()
        d["sessions"] = json.dumps(d["sessions"])
        d["holidays"] = json.dumps(d["holidays"])
        rows.append(d)
    schema = {
        "symbol": pl.String, "venue": pl.String, "asset_class": pl.String, "currency": pl.String,
        "tick_size": pl.Float64, "lot_size": pl.Float64, "multiplier": pl.Float64, "price_scale": pl.Int64,
        "size_scale": pl.Int64, "sessions": pl.String, "tz": pl.String, "trading_days": pl.String,
        "holidays": pl.String, "source": pl.String, "instrument_id": pl.Int64, "expiration": pl.String,
        "notes": pl.String,
    }
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def read_table(lake_root: str | Path) -> dict[str, Instrument]:
    """The lake's ``instruments`` table as ``{symbol: Instrument}`` (empty when absent)."""
    path = instruments_path(lake_root)
    if not path.exists():
        return {}
    import polars as pl

    out = {}
    for row in pl.read_parquet(path).iter_rows(named=True):
        out[row["symbol"]] = Instrument.from_dict(row)
    return out


def write_instruments(lake_root: str | Path, instruments: Iterable[Instrument]) -> Path:
    """Upsert ``instruments`` (by symbol) into the lake's table, atomically."""
    from flowsense.data.lake import atomic_write_parquet

    table = read_table(lake_root)
    for inst in instruments:
        table[inst.symbol] = inst.check()
    path = instruments_path(lake_root)
    atomic_write_parquet(_to_frame(sorted(table.values(), key=lambda i: i.symbol)), path)
    _cached_table.cache_clear()
    return path


def remember_scale(lake_root: str | Path, symbol: str, size_scale: int) -> Instrument:
    """Record in the lake the size scale ``symbol`` was stored with (keeps a known instrument's fields)."""
    known = read_table(lake_root).get(symbol)
    base = known or builtin_instrument(symbol)
    if known is not None and known.size_scale == size_scale:
        return known
    same = known is not None or base.size_scale == size_scale
    inst = replace(base, size_scale=size_scale, source=base.source if same else "ingest")
    write_instruments(lake_root, [inst])
    return inst


# ---------------------------------------------------------------------------------------- user file


def load_user_file(path: str | Path) -> dict[str, dict[str, Any]]:
    """Parse a user instruments file (YAML or JSON) into ``{symbol: fields}``."""
    path = Path(path)
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml

            data = yaml.safe_load(text)
    except Exception as exc:
        raise ConfigError(f"{path}: cannot parse instruments file ({exc})") from exc
    if data is None:
        return {}
    if isinstance(data, Mapping) and "instruments" in data:
        data = data["instruments"]
    out: dict[str, dict[str, Any]] = {}
    if isinstance(data, Mapping):
        for sym, vals in data.items():
            if not isinstance(vals, Mapping):
                raise ConfigError(f"{path}: instrument {sym!r} must be a mapping of fields")
            out[str(sym)] = {**vals, "symbol": str(sym)}
    elif isinstance(data, list):
        for vals in data:
            if not isinstance(vals, Mapping) or "symbol" not in vals:
                raise ConfigError(f"{path}: each instrument needs a 'symbol'")
            out[str(vals["symbol"])] = dict(vals)
    else:
        raise ConfigError(f"{path}: expected a mapping SYMBOL: {{fields}} or a list of instruments")
    return out


@lru_cache(maxsize=16)
def _cached_user(path: str, mtime: float) -> dict[str, dict[str, Any]]:
    return load_user_file(path)


@lru_cache(maxsize=16)
def _cached_table(path: str, mtime: float) -> dict[str, Instrument]:
    return read_table(Path(path).parent.parent)


def _resolve_where(where: Any) -> tuple[Path | None, Path | None]:
    """(lake root, user file) from Settings, a Lake, a path to a lake root, or None."""
    if where is None:
        from flowsense.config import Settings

        where = Settings.from_env()
    lake_root = user = None
    if hasattr(where, "lake") and hasattr(where, "home"):  # Settings
        lake_root = Path(where.lake)
        user = Path(where.instruments_file) if getattr(where, "instruments_file", None) else None
    elif hasattr(where, "root"):  # Lake
        lake_root = Path(where.root)
        user = lake_root.parent / "instruments.yaml"
    else:
        lake_root = Path(where)
        user = lake_root.parent / "instruments.yaml"
    return lake_root, user


def instrument_for(symbol: str, settings_or_lake: Any = None) -> Instrument:
    """The instrument of ``symbol``: user file, then the lake's table, then built-in defaults, else a guess.

    ``settings_or_lake``: a :class:`~flowsense.config.Settings`, a :class:`~flowsense.data.lake.Lake`, a lake
    root path, or None (``Settings.from_env()``).
    """
    lake_root, user = _resolve_where(settings_or_lake)
    known: Instrument | None = None
    if lake_root is not None:
        p = instruments_path(lake_root)
        if p.exists():
            known = _cached_table(str(p), p.stat().st_mtime).get(symbol)
    base = known or builtin_instrument(symbol)
    if user is not None and user.exists():
        fields_ = _cached_user(str(user), user.stat().st_mtime).get(symbol)
        if fields_ is not None:
            return Instrument.from_dict({**fields_, "source": "user"}, base=base).check()
    return base


def all_instruments(settings_or_lake: Any = None, symbols: Iterable[str] = ()) -> list[Instrument]:
    """Every instrument the lake's table or user file names, plus ``symbols`` (resolved as above)."""
    lake_root, user = _resolve_where(settings_or_lake)
    names = set(symbols)
    if lake_root is not None:
        names |= set(read_table(lake_root))
    if user is not None and user.exists():
        names |= set(load_user_file(user))
    return [instrument_for(s, settings_or_lake) for s in sorted(names)]


__all__ = [
    "Instrument", "Session", "all_instruments", "builtin_instrument", "from_dbn_definitions", "instrument_for",
    "instruments_path", "load_user_file", "read_table", "remember_scale", "write_instruments",
]

