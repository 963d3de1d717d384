"""Feature tables: hand-computed values, no look-ahead, labels, OFI vs the literature, pipeline and CLI."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from flowsense.data.lake import Lake, Partition
from flowsense.data.lobster import read_lobster
from flowsense.data.schemas import book_schema
from flowsense.features import compute_day, compute_partition
from flowsense.features.bars import BarParams, Clock, parse_clock
from flowsense.features.labels import LabelParams, compute_labels
from flowsense.features.pipeline import compute_features, feature_count
from flowsense.features.registry import REGISTRY, feature_registry
from flowsense.features.research import fit_ofi_weights, ofi_price_impact_r2
from flowsense.features.tick import EventArrays, TickParams, compute_tick, prepare_inputs
from tests.conftest import LOBSTER_DIR, lobster_zip

DAY = dt.date(2012, 6, 21)
T0 = 1_340_285_400_000_000_000  # 2012-06-21 13:30 UTC


# ---- a tiny synthetic 2-level book ------------------------------------------------------------------
def _tiny() -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    rows = [  # ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ask_px_2, ask_sz_2, bid_px_2, bid_sz_2
        (10.02, 200, 10.00, 100, 10.03, 80, 9.99, 50),  # 0 initial
        (10.02, 200, 10.00, 150, 10.03, 80, 9.99, 50),  # 1 +50 added at the bid
        (10.01, 30, 10.00, 150, 10.02, 200, 9.99, 50),  # 2 new better ask 10.01 x 30
        (10.01, 30, 9.99, 50, 10.02, 200, None, None),  # 3 sell market order eats the 150 bid
    ]
    cols = ["ask_px_1", "ask_sz_1", "bid_px_1", "bid_sz_1", "ask_px_2", "ask_sz_2", "bid_px_2", "bid_sz_2"]
    ts = [T0 + i * 1_000_000 for i in range(4)]  # 1 ms apart
    book = pl.DataFrame(rows, schema=cols, orient="row").with_columns(
        pl.Series("ts", ts).cast(pl.Datetime("ns", "UTC")), pl.lit("TEST").alias("symbol"),
        pl.lit(DAY).alias("date"), pl.int_range(0, 4, dtype=pl.Int64).alias("seq"),
    ).select(list(book_schema(2)))
    events = pl.DataFrame({
        "seq": [0, 1, 2, 3], "event_type": ["add", "add", "add", "execute_visible"], "side": [1, 1, -1, 1],
        "size": [100, 50, 30, 150], "price": [10.00, 10.00, 10.01, 10.00],
    }, schema_overrides={"side": pl.Int8})
    trades = pl.DataFrame({"seq": [3], "price": [10.00], "size": [150], "aggressor_side": [-1]},
                          schema_overrides={"aggressor_side": pl.Int8})
    return book, events, trades


def test_hand_computed_tiny_book() -> None:
    book, events, trades = _tiny()
    df, _, tp = compute_tick(prepare_inputs(book, events, trades))
    assert tp.levels == 2 and tp.depths == (1, 2)
    # OFI (Cont, Kukanov & Stoikov 2014) per level, worked by hand:
    # row1: bid 10.00 same price, 100 -> 150: +150 - 100 = +50; ask unchanged: -200 + 200 = 0
    # row2: ask 10.02 -> 10.01 (better): -30; L2 ask 10.03x80 -> 10.02x200 (lower): -200
    # row3: bid 10.00 -> 9.99 (lower): -150; L2 bid 9.99x50 -> empty (-inf): -50
    assert df["ofi_l1"].to_list() == [0.0, 50.0, -30.0, -150.0]
    assert df["ofi_l2"].to_list() == [0.0, 0.0, -200.0, -50.0]
    assert df["ofi_int"].to_list() == [0.0, 25.0, -115.0, -100.0]  # equal weights 1/2
    assert df["ofi_l1_cum"].to_list() == [0.0, 50.0, 20.0, -130.0]
    assert df["mid"].to_list() == pytest.approx([10.01, 10.01, 10.005, 10.0], rel=1e-15)
    assert df["spread"].to_list() == pytest.approx([0.02, 0.02, 0.01, 0.02], rel=1e-12)
    micro = [(10.00 * 200 + 10.02 * 100) / 300, (10.00 * 200 + 10.02 * 150) / 350,
             (10.00 * 30 + 10.01 * 150) / 180, (9.99 * 30 + 10.01 * 50) / 80]
    assert df["microprice"].to_list() == pytest.approx(micro, rel=1e-15)
    assert df["depth_imb_1"].to_list() == pytest.approx([-100 / 300, -50 / 350, 120 / 180, 20 / 80], rel=1e-15)
    assert df["depth_imb_2"].to_list() == pytest.approx(
        [(150 - 280) / 430, (200 - 280) / 480, (200 - 230) / 430, (50 - 230) / 280], rel=1e-15)
    assert df["bid_depth"].to_list() == [150.0, 200.0, 200.0, 50.0]
    assert df["n_bid_levels"].to_list() == [2.0, 2.0, 2.0, 1.0]
    assert df["signed_volume"].to_list() == [0.0, 0.0, 0.0, -150.0]
    assert df["trade_volume"].to_list() == [0.0, 0.0, 0.0, 150.0]
    tfi = df["tfi_100"].to_list()
    assert all(math.isnan(x) for x in tfi[:3]) and tfi[3] == -1.0
    assert math.isnan(df["dt_prev"][0]) and df["dt_prev"][1] == pytest.approx(1e-3)
    assert df["t_since_trade"][3] == 0.0
    # event intensity with tau = 1 s: 1, then 1*exp(-0.001) + 1, ...
    assert df["event_rate"][1] == pytest.approx(math.exp(-1e-3) + 1.0, rel=1e-15)


def test_tiny_book_bars_and_labels() -> None:
    book, events, trades = _tiny()
    out = compute_day(book, events, trades, clocks=("2ms", "2ev"))
    b = out["features_2ms"]
    # bars [0,2ms) [2,4ms): the second is flushed at the end of data -> partial
    assert b["n_events"].to_list() == [2, 2] and b["partial"].to_list() == [False, True]
    assert b["ofi_l1"].to_list() == [50.0, -180.0]
    assert b["mid_open"].to_list() == pytest.approx([10.01, 10.01])
    assert b["mid_close"].to_list() == pytest.approx([10.01, 10.0])
    assert b["volume"].to_list() == [0.0, 150.0] and b["vwap"][1] == 10.0
    e = out["features_2ev"]
    assert e["n_events"].to_list() == [2, 2] and e["partial"].to_list() == [False, False]
    lab = out["labels"]
    # 1 ms later is the next event; 100 ms later is past the last event -> unknown
    assert lab["fwd_ret_100ms"].null_count() == 4
    lab2 = compute_labels(book, LabelParams(time_horizons=("1ms",), event_horizons=(1,), dead_band_bps=1.0))
    r = lab2["fwd_ret_1ms"].to_list()
    assert r[0] == pytest.approx(0.0) and r[1] == pytest.approx(math.log(10.005 / 10.01)) and r[3] is None
    assert lab2["fwd_dir_1ms"].to_list() == [0, -1, -1, None]
    assert lab2["fwd_ret_1ev"].to_list()[:3] == lab2["fwd_ret_1ms"].to_list()[:3]


def test_registry_and_clocks() -> None:
    assert parse_clock("100ms") == Clock("100ms", 0, 1e8)
    assert parse_clock("1min").size == 60e9 and parse_clock("500ev").mode == 1 and parse_clock("10000vol").mode == 2
    with pytest.raises(ValueError):
        parse_clock("1week")
    assert len(REGISTRY) >= 70
    assert all(s.description for s in REGISTRY.values())
    reg = feature_registry(TickParams(levels=2, depths=(1, 2)), BarParams())
    book, events, trades = _tiny()
    out = compute_day(book, events, trades, clocks=("1s",))
    for table in ("features_tick", "features_1s"):
        key_table = "features_tick" if table == "features_tick" else "features_<clock>"
        feats = [c for c, t in out[table].schema.items() if t == pl.Float64]
        missing = [c for c in feats if f"{key_table}.{c}" not in reg]
        assert not missing, missing


# ---- real data ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def goog10():
    (day,) = read_lobster(lobster_zip("GOOG", 10))
    return day


@pytest.fixture(scope="module")
def goog_inputs(goog10) -> EventArrays:
    return prepare_inputs(goog10.book, goog10.events, goog10.trades)


CUT_CLOCKS = ("1s", "1min", "500ev", "10000vol")


def _assert_frames_equal(a: pl.DataFrame, b: pl.DataFrame, what: str) -> None:
    assert a.shape == b.shape, (what, a.shape, b.shape)
    assert a.columns == b.columns
    for c in a.columns:
        x, y = a[c], b[c]
        if x.dtype == pl.Float64:
            assert np.array_equal(x.to_numpy(), y.to_numpy(), equal_nan=True), (what, c)
        else:
            assert x.equals(y), (what, c)


@pytest.mark.real_data
def test_fused_batch_pass_equals_separate_passes(goog10, goog_inputs: EventArrays) -> None:
    """The pipeline's fused tick + bars pass gives the matrices of the separate tick and bar passes (every
    clock kind at once), and ``compute_day``'s labels (from the tick mid) equal ``compute_labels(book)``."""
    from flowsense.features.bars import bar_matrices
    from flowsense.features.pipeline import feature_matrices
    from flowsense.features.tick import tick_matrix

    inp = goog_inputs
    tp = TickParams().for_levels(inp.levels)
    clocks = [parse_clock(c) for c in ("1s", "1min", "100ms", "500ev", "10000vol")]
    tick, bars = feature_matrices(inp, tp, clocks, BarParams())
    ref_tick = tick_matrix(inp, tp)
    assert np.array_equal(tick, ref_tick, equal_nan=True)
    for clock, (fout, iout) in zip(clocks, bars, strict=True):
        rf, ri = bar_matrices(inp, ref_tick, tp, clock)
        assert np.array_equal(iout, ri), clock.name
        assert np.array_equal(fout, rf, equal_nan=True), clock.name
    out = compute_day(goog10.book, goog10.events, goog10.trades, clocks=())
    assert set(out) == {"features_tick", "labels"}
    assert out["labels"].equals(compute_labels(goog10.book))


@pytest.mark.real_data
def test_feature_count_and_shapes(goog10) -> None:
    out = compute_day(goog10.book, goog10.events, goog10.trades, clocks=("1s", "1min"))
    assert set(out) == {"features_tick", "features_1s", "features_1min", "labels"}
    assert out["features_tick"].height == goog10.book.height == out["labels"].height
    assert out["features_1s"].height == 23_400  # 09:30-16:00 on a regular 1 s grid
    n = feature_count(out)
    assert n >= 70, n
    label_cols = {c for c in out["labels"].columns if c.startswith("fwd_")}
    for name, df in out.items():
        if name != "labels":
            assert not label_cols & set(df.columns)
            assert not any(c.startswith("fwd_") for c in df.columns)


@pytest.mark.real_data
def test_no_lookahead_truncation_and_perturbation(goog_inputs: EventArrays) -> None:
    inp = goog_inputs
    full = compute_features(inp, clocks=CUT_CLOCKS)
    n = len(inp)
    rng = np.random.default_rng(7)
    for frac in (0.1, 0.37, 0.8):
        cut = int(n * frac)
        t_cut = int(inp.ts[cut - 1])
        while cut < n and inp.ts[cut] == t_cut:  # keep all events of the cut timestamp together
            cut += 1
        trunc = compute_features(inp.head(cut), clocks=CUT_CLOCKS)
        # perturbed future: every event after the cut gets a different book and trade flow
        pert = EventArrays(inp.symbol, inp.date, inp.ts, inp.seq, inp.etype.copy(), inp.size.copy(),
                           inp.price, inp.agg.copy(), inp.book.copy(), inp.levels)
        pert.book[cut:, 1::2] = rng.integers(1, 500, size=pert.book[cut:, 1::2].shape)
        pert.agg[cut:] *= -1
        pert.size[cut:] += 7
        perturbed = compute_features(pert, clocks=CUT_CLOCKS)
        assert not np.array_equal(full["features_tick"]["ofi_l1"].to_numpy()[cut:],
                                  perturbed["features_tick"]["ofi_l1"].to_numpy()[cut:])
        t = pl.lit(t_cut).cast(pl.Datetime("ns", "UTC"))
        for table, df in full.items():
            keep = pl.col("ts") <= t
            if table != "features_tick":
                keep = keep & ~pl.col("partial")
            a = df.filter(keep)
            assert a.height > 0, table
            _assert_frames_equal(a, trunc[table].filter(keep), f"{table} truncated at {frac}")
            _assert_frames_equal(a, perturbed[table].filter(keep), f"{table} perturbed after {frac}")


@pytest.mark.real_data
def test_labels_see_the_future(goog10) -> None:
    book = goog10.book
    lab = compute_labels(book)
    cut = book.height // 2
    later = book.with_columns(
        pl.when(pl.col("seq") >= cut).then(pl.col(c) + 0.5).otherwise(pl.col(c)).alias(c)
        for c in ("ask_px_1", "bid_px_1")
    )
    lab2 = compute_labels(later)
    before = pl.col("seq").is_between(cut - 100, cut - 1)
    for h in ("100ms", "1s", "10s", "10ev", "100ev"):
        a = lab.filter(before)[f"fwd_ret_{h}"].to_numpy()
        b = lab2.filter(before)[f"fwd_ret_{h}"].to_numpy()
        assert not np.allclose(a, b, equal_nan=True), h
    # time labels are null at the end of the day (the future is unknown there)
    assert lab["fwd_ret_10s"].tail(1).is_null().all()
    assert lab["fwd_ret_100ev"].tail(100).is_null().all() and lab["fwd_ret_100ev"].head(1).is_not_null().all()
    assert set(lab["fwd_dir_1s"].drop_nulls().unique().to_list()) <= {-1, 0, 1}


def _deepest_real_days() -> list[Path]:
    if not LOBSTER_DIR.exists():
        return []
    best: dict[str, tuple[int, Path]] = {}
    for p in LOBSTER_DIR.glob("LOBSTER_SampleFile_*_*_*.zip"):
        sym, _, lvl = p.stem.split("_")[2:5]
        if int(lvl) > best.get(sym, (0, p))[0]:
            best[sym] = (int(lvl), p)
    return [v[1] for _, v in sorted(best.items())]


@pytest.mark.real_data
@pytest.mark.parametrize("path", _deepest_real_days() or [None], ids=lambda p: p.stem if p else "absent")
def test_ofi_price_impact_r2_matches_literature(path: Path | None) -> None:
    """10-second Delta mid on 10-second OFI, per 30-minute window (Cont, Kukanov & Stoikov 2014 ~65%)."""
    if path is None:
        pytest.skip(f"no LOBSTER data in {LOBSTER_DIR}")
    (day,) = read_lobster(path)
    out = compute_day(day.book, day.events, day.trades, clocks=("10s",))
    r2 = ofi_price_impact_r2(out["features_10s"])
    print(f"\n{day.symbol} L{day.levels}: " + ", ".join(
        f"{k}: window-mean R2={v.mean_window_r2:.3f} day R2={v.day_r2:.3f} ({v.windows} windows)"
        for k, v in r2.items()))
    assert r2["ofi_l1"].windows >= 10
    assert 0.3 < r2["ofi_l1"].mean_window_r2 < 0.95
    assert 0.3 < r2["ofi_int"].mean_window_r2 < 0.95
    assert r2["ofi_int"].mean_window_r2 >= r2["ofi_l1"].mean_window_r2 - 0.02


@pytest.mark.real_data
def test_fit_ofi_weights_on_training_day(goog10) -> None:
    out = compute_day(goog10.book, goog10.events, goog10.trades, clocks=("10s",))
    w = fit_ofi_weights(out["features_10s"].select(f"ofi_l{k}" for k in range(1, 11)).to_numpy())
    assert w.shape == (10,) and abs(np.abs(w).sum() - 1) < 1e-12 and w.sum() > 0
    again = compute_day(goog10.book, goog10.events, goog10.trades, clocks=("10s",), ofi_weights=w)
    assert ofi_price_impact_r2(again["features_10s"])["ofi_int"].mean_window_r2 > 0.3


@pytest.mark.real_data
def test_compute_partition_cli_catalog_and_plot(tmp_path: Path, home: Path) -> None:
    from typer.testing import CliRunner

    from flowsense.cli import app
    from flowsense.config import Settings
    from flowsense.data.catalog import query
    from flowsense.features.plots import day_plot

    (day,) = read_lobster(lobster_zip("GOOG", 1))
    cfg = Settings.from_env()
    lake = Lake(cfg.lake)
    lake.write_day(day)
    part = Partition("GOOG", DAY)
    tables = compute_partition(lake, part, clocks=("1s",))
    assert lake.exists("features_tick", part) and lake.exists("features_1s", part) and lake.exists("labels", part)
    assert lake.read("features_1s", part).equals(tables["features_1s"])
    res = CliRunner().invoke(app, ["features", "--symbol", "GOOG", "--clock", "1s", "--clock", "1min"])
    assert res.exit_code == 0, res.output
    assert "features_1min" in res.output
    n = query(cfg.catalog_path, "select count(*) as n from features_1min").item()
    assert n == 390
    assert query(cfg.catalog_path, "select count(*) from labels").item() == day.book.height
    png = day_plot(tables["features_tick"], tmp_path / "day.png")
    assert png.stat().st_size > 10_000 and png.read_bytes()[:4] == b"\x89PNG"
