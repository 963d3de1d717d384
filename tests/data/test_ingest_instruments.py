"""Instruments: DBN definitions, built-in defaults, user file, sessions, and the catalog view."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from flowsense.config import Settings
from flowsense.data.catalog import query, refresh
from flowsense.data.ingest import ingest_definitions, ingest_file, is_definition_file
from flowsense.data.instruments import Instrument, Session, builtin_instrument, instrument_for
from flowsense.data.lake import Lake
from flowsense.errors import ConfigError
from tests.conftest import SHARED_DATA, shared

DBN = SHARED_DATA / "nautilus_trader_samples" / "databento"


def ns(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp()) * 1_000_000_000


def test_dbn_definitions_fill_the_instruments_table(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    for name in ("definition-glbx-es-fut.dbn.zst", "futures_definition.dbn.zst"):
        path = shared(f"nautilus_trader_samples/databento/{name}")
        assert is_definition_file(path)
        ingest_definitions(path, lake)
    esu4 = instrument_for("ESU4", lake)
    assert esu4.source == "dbn-definition"
    assert (esu4.tick_size, esu4.multiplier, esu4.currency, esu4.venue) == (0.25, 50.0, "USD", "XCME")
    assert esu4.asset_class == "future" and esu4.instrument_id == 118
    nq = instrument_for("NQU4", lake)
    assert nq.multiplier == 20.0
    assert instrument_for("ESM3", lake).expiration.startswith("2023-06-16")
    # a definition file is refused by the market-data reader with a pointer to the right one
    with pytest.raises(Exception, match="definition"):
        ingest_file(shared("nautilus_trader_samples/databento/futures_definition.dbn.zst"), lake)


def test_es_future_multiplier_and_globex_sessions() -> None:
    es = builtin_instrument("ESH4")
    assert (es.multiplier, es.tick_size, es.tz) == (50.0, 0.25, "America/Chicago")
    assert es.notional(4800.0, 100) == pytest.approx(24_000_000.0)
    ts = np.array([
        ns(2023, 12, 25, 0, 0),   # Sunday evening in Chicago before Christmas: closed (holiday)
        ns(2023, 12, 25, 22, 59),  # still closed
        ns(2023, 12, 25, 23, 0),  # Globex reopens 17:00 CT for trade date 12-26
        ns(2023, 12, 26, 21, 59),  # 15:59 CT: open
        ns(2023, 12, 26, 22, 30),  # 16:30 CT: daily maintenance halt
    ])
    assert es.open_mask(ts).tolist() == [False, False, True, True, False]
    assert es.next_open(ns(2023, 12, 25, 0, 0)) == ns(2023, 12, 25, 23, 0)
    assert es.round_price(4800.10) == 4800.0 and es.round_price(4800.10, 1) == 4800.25


def test_equity_and_binance_defaults() -> None:
    goog = builtin_instrument("GOOG")
    assert goog.venue == "XNAS" and goog.tick_size == 0.01 and goog.multiplier == 1.0
    assert goog.open_mask(np.array([ns(2012, 6, 21, 13, 30), ns(2012, 6, 21, 13, 29), ns(2012, 6, 21, 20, 0)])
                          ).tolist() == [True, False, False]
    assert not goog.is_open(ns(2012, 6, 23, 15, 0))  # Saturday
    btc = builtin_instrument("BTCUSDT")
    assert btc.size_scale == 10**8 and btc.always_open and btc.currency == "USDT"
    assert btc.quantity(50_000_000) == 0.5
    assert btc.notional(40_000.0, 50_000_000) == pytest.approx(20_000.0)
    assert builtin_instrument("WEIRD123").source == "guess"


def test_user_file_overrides_and_is_checked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("FLOWSENSE_HOME", str(home))
    monkeypatch.delenv("FLOWSENSE_INSTRUMENTS", raising=False)
    (home / "instruments.yaml").write_text(
        "GOOG:\n  tick_size: 0.05\n  venue: TEST\nFOO:\n  asset_class: fx\n  tz: Europe/London\n"
        "  sessions: [{open: '08:00', close: '16:30'}]\n  trading_days: mon-fri\n"
    )
    s = Settings.from_env()
    goog = instrument_for("GOOG", s)
    assert (goog.tick_size, goog.venue, goog.source, goog.tz) == (0.05, "TEST", "user", "America/New_York")
    foo = instrument_for("FOO", s)
    assert foo.sessions == (Session("08:00", "16:30"),) and foo.is_open(ns(2024, 1, 2, 9, 0))
    assert not foo.is_open(ns(2024, 1, 2, 17, 0))
    (home / "instruments.yaml").write_text("GOOG:\n  tick_size: 0\n")
    with pytest.raises(ConfigError, match="tick_size"):
        instrument_for("GOOG", s)
    round_trip = Instrument.from_dict(json.loads(json.dumps(builtin_instrument("ESZ4").to_dict())))
    assert round_trip == builtin_instrument("ESZ4")


def test_fractional_sizes_keep_their_scale(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    path = shared("nautilus_trader_samples/binance/btcusdt-trades.parquet")
    (res,) = ingest_file(path, lake)
    inst = instrument_for("BTCUSDT", lake)
    assert inst.size_scale == 10**8
    report = lake.read_report(res.partition)
    assert report is not None and report["size_scale"] == 10**8
    trades = lake.read("trades", res.partition)
    import polars as pl

    raw = pl.read_parquet(path)
    assert float(inst.quantity(trades["size"][0])) == pytest.approx(float(raw["quantity"][0]))
    cat = tmp_path / "c.duckdb"
    refresh(cat, lake)
    row = query(cat, "select size_scale, source from instruments where symbol = 'BTCUSDT'").row(0)
    assert row == (10**8, "builtin")
