"""DBN and tick-file readers: real sample files (when ../shared/data is present) and broken inputs."""

from __future__ import annotations

import collections
import datetime as dt
import gzip
import lzma
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import zstandard

from flowsense.data.dbn import looks_like_dbn, read_dbn, replay_mbo_book
from flowsense.data.ticks import looks_like_ticks, read_ticks
from flowsense.errors import IngestError

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DBN_DIR = DATA / "nautilus_trader_samples" / "databento"
BINANCE = DATA / "nautilus_trader_samples" / "binance"
MLFINPY = DATA / "mlfinpy_es_ticks_2013-09" / "tick_data.csv.xz"
MBO_1225 = DBN_DIR / "esh4-glbx-mdp3-20231225.mbo.dbn.zst"
MBO_0508 = DBN_DIR / "orderbooks_mbo_2024-05-08T00-00-00_2024-05-08T00-00-02.dbn.zst"
MBP1 = DBN_DIR / "futures_mbp-1_2024-07-01T23-58_2024-07-02T00-02.dbn.zst"
TRADES = DBN_DIR / "futures_trades_2024-07-01T23-58_2024-07-02T00-02.dbn.zst"

real_data = pytest.mark.skipif(
    not DBN_DIR.is_dir(), reason=f"shared sample data not found at {DATA} (needs ../shared/data next to the repo)"
)


def _utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def _raw_records(path: Path) -> np.ndarray:
    import databento as db

    with path.open("rb") as fh:
        data = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
    return db.DBNStore.from_bytes(data).to_ndarray()


# ----------------------------------------------------------------------------------------------- DBN


@pytest.fixture(scope="module")
def mbo_1225():
    return read_dbn(MBO_1225)


@real_data
@pytest.mark.real_data
class TestDbnReal:
    def test_detection(self) -> None:
        for f in (MBO_1225, MBP1, TRADES):
            assert looks_like_dbn(f)
        assert not looks_like_dbn(BINANCE / "btcusdt-trades.parquet")

    def test_mbo_counts_and_window(self, mbo_1225) -> None:
        assert len(mbo_1225) == 1
        day = mbo_1225[0]
        assert (day.symbol, day.date, day.levels) == ("ESH4", dt.date(2023, 12, 25), 10)
        day.conformed()
        ev = day.events
        assert ev.height == 68_792
        assert ev["seq"].to_list() == list(range(68_792))
        counts = dict(ev["event_type"].cast(pl.String).value_counts().iter_rows())
        # SOURCE.md: A 29,216, C 17,999, M 12,233, T 2,973, F 6,371. Every CME cancel removes the whole
        # order, so all 17,999 C records are deletes.
        assert counts == {"add": 29_216, "delete": 17_999, "modify": 12_233, "trade": 2_973, "fill": 6_371}
        # Snapshot records are stamped with ts_recv (the snapshot time), so all of the file is on its day.
        assert ev["ts"].min() >= _utc(2023, 12, 25) and ev["ts"].max() < _utc(2023, 12, 26)
        assert ev.filter(pl.col("event_type") == "trade")["ts"].min() == _utc(2023, 12, 25, 23)
        px = ev["price"].drop_nulls()
        trade_px = day.trades["price"]
        assert day.trades.height == 2_973
        assert trade_px.min() > 4_700 and trade_px.max() < 4_900
        assert px.median() > 4_000  # snapshot holds far-away orders too, but the bulk is near ES levels
        assert set(day.trades["aggressor_side"].drop_nulls().unique().to_list()) == {-1, 1}
        # trades.seq points at the trade event it came from
        joined = day.trades.join(ev, on="seq", how="left")
        assert (joined["event_type"] == "trade").all() and (joined["price"] == joined["price_right"]).all()

    def test_mbo_book_never_crossed_once_trading(self, mbo_1225) -> None:
        day = mbo_1225[0]
        rec = _raw_records(MBO_1225)
        book = day.book
        assert book is not None and book.height == rec.shape[0]
        crossed = (book["bid_px_1"] >= book["ask_px_1"]).fill_null(False).to_numpy()
        last = (rec["flags"] & 0x80) != 0  # F_LAST: the book is only consistent at the end of an event
        trading = rec["ts_event"] >= np.uint64(1_703_545_200 * 10**9)  # Globex reopen 23:00 UTC
        assert not (crossed & last & trading).any()
        # The pre-open (22:00-23:00) book may legitimately cross (orders queue for the opening auction).
        top = book.filter(pl.Series(trading & last))
        assert top["bid_px_1"].min() > 4_790 and top["ask_px_1"].max() < 4_830
        # levels are ordered and non-empty sizes are positive
        for k in range(1, 10):
            b0, b1 = book[f"bid_px_{k}"], book[f"bid_px_{k + 1}"]
            a0, a1 = book[f"ask_px_{k}"], book[f"ask_px_{k + 1}"]
            assert ((b0 > b1) | b1.is_null()).all() and ((a0 < a1) | a1.is_null()).all()
            assert (book[f"bid_sz_{k}"].drop_nulls() > 0).all()

    def test_mbo_fills_reduce_their_level(self, mbo_1225) -> None:
        """Each fill is applied by the C (full) or M (partial) of the resting order that follows it in the same
        event: the level at the order's price shrinks by what the order loses (the filled quantity, capped
        at the displayed size for iceberg orders; CME refills icebergs with an M that grows the order)."""
        day = mbo_1225[0]
        rec = _raw_records(MBO_1225)
        book = {c: day.book[c].to_numpy() for c in day.book.columns if "_px_" in c or "_sz_" in c}

        def level(row: int, side: str, price: float) -> int | None:
            for k in range(1, 11):
                if book[f"{side}_px_{k}"][row] == price:
                    return int(book[f"{side}_sz_{k}"][row])
            return None

        order_size: dict[int, int] = {}
        filled: collections.Counter[int] = collections.Counter()
        outcome: collections.Counter[str] = collections.Counter()
        for i, (act, oid, px, sz, side) in enumerate(
            zip(rec["action"], rec["order_id"], rec["price"], rec["size"], rec["side"], strict=True)
        ):
            oid, sz = int(oid), int(sz)
            if act == b"F":
                filled[oid] += sz
                continue
            if act in (b"C", b"M") and filled[oid]:
                s = "bid" if side == b"B" else "ask"
                before, after = level(i - 1, s, px / 1e9), level(i, s, px / 1e9)
                old = order_size.get(oid, 0)
                new = sz if act == b"M" else max(old - sz, 0)
                if before is None:
                    outcome["outside_top_10"] += 1
                elif new >= old:
                    outcome["iceberg_refill"] += 1
                else:
                    assert before - (after or 0) == old - new > 0, (i, before, after, old, new)
                    outcome["exact" if old - new == filled[oid] else "capped_at_display"] += 1
                del filled[oid]
            if act in (b"A", b"M"):
                order_size[oid] = sz
            elif act == b"C":
                order_size[oid] = max(order_size.get(oid, 0) - sz, 0)
        assert outcome["exact"] > 6_000
        assert outcome["iceberg_refill"] + outcome["capped_at_display"] + outcome["outside_top_10"] < 300

    def test_mbo_replay_matches_reference(self) -> None:
        """The Numba replay equals a plain dict-based replay of Databento's book rules (sampled rows)."""
        rec = _raw_records(MBO_0508)
        day = read_dbn(MBO_0508)[0]
        assert day.events.height == 13_796 and day.symbol == "ESM4"
        counts = dict(day.events["event_type"].cast(pl.String).value_counts().iter_rows())
        assert counts == {"clear": 1, "add": 13_678, "delete": 80, "modify": 27, "trade": 5, "fill": 5}
        orders: dict[int, tuple[int, int, int]] = {}
        levels: dict[tuple[int, int], int] = collections.defaultdict(int)
        for i, r in enumerate(rec):
            act, oid, side = r["action"], int(r["order_id"]), 1 if r["side"] == b"B" else -1
            if act == b"R":
                orders.clear()
                levels.clear()
            elif act in (b"A", b"M", b"C"):
                if oid in orders:
                    s, p, q = orders.pop(oid)
                    levels[(s, p)] -= q
                    if act == b"C" and q > r["size"]:
                        orders[oid] = (s, p, q - int(r["size"]))
                        levels[(s, p)] += q - int(r["size"])
                if act != b"C" and r["size"] > 0:
                    orders[oid] = (side, int(r["price"]), int(r["size"]))
                    levels[(side, int(r["price"]))] += int(r["size"])
            if i % 97 == 0 or i == rec.shape[0] - 1:
                bids = sorted(((p, q) for (s, p), q in levels.items() if s == 1 and q > 0), reverse=True)[:10]
                asks = sorted((p, q) for (s, p), q in levels.items() if s == -1 and q > 0)[:10]
                row = day.book.row(i, named=True)
                got_b = [(row[f"bid_px_{k}"], row[f"bid_sz_{k}"]) for k in range(1, 11) if row[f"bid_sz_{k}"]]
                got_a = [(row[f"ask_px_{k}"], row[f"ask_sz_{k}"]) for k in range(1, 11) if row[f"ask_sz_{k}"]]
                assert got_b == [(p / 1e9, q) for p, q in bids], i
                assert got_a == [(p / 1e9, q) for p, q in asks], i
        assert 5_150 < day.book["bid_px_1"].drop_nulls().median() < 5_250

    def test_mbp1(self) -> None:
        days = read_dbn(MBP1)
        assert [(d.symbol, d.date) for d in days] == [("ESU4", dt.date(2024, 7, 1)), ("ESU4", dt.date(2024, 7, 2))]
        assert sum(d.events.height for d in days) == 2_288
        for d in days:
            d.conformed()
            assert d.levels == 1 and d.book is not None and d.book.height == d.events.height
            assert (d.book["seq"] == d.events["seq"]).all() and (d.book["ts"] == d.events["ts"]).all()
            assert not (d.book["bid_px_1"] >= d.book["ask_px_1"]).fill_null(False).any()
            assert d.book["bid_px_1"].min() > 5_500 and d.book["ask_px_1"].max() < 5_600
            assert set(d.events["event_type"].cast(pl.String).unique()) <= {"quote", "trade"}
        ts = pl.concat([d.events["ts"] for d in days])
        assert ts.min() >= _utc(2024, 7, 1, 23, 58) and ts.max() < _utc(2024, 7, 2, 0, 2)
        n_trades = sum(d.trades.height for d in days)
        assert n_trades == 120  # the trades file of the same window has 120 records

    def test_trades_schema_matches_mbp1_trades(self) -> None:
        days = read_dbn(TRADES)
        assert sum(d.events.height for d in days) == 120
        trades = pl.concat([d.trades for d in days])
        assert trades.height == 120 and all(d.book is None and d.levels == 0 for d in days)
        sides = trades["aggressor_side"]
        assert sides.null_count() == 0 and set(sides.unique().to_list()) == {-1, 1}
        assert trades["price"].min() > 5_500 and trades["price"].max() < 5_600
        mbp_trades = pl.concat([d.trades for d in read_dbn(MBP1)])
        cols = ["ts", "price", "size", "aggressor_side"]
        assert mbp_trades.select(cols).equals(trades.select(cols))

    def test_symbol_override_and_recv_timestamps(self) -> None:
        days = read_dbn(TRADES, symbol="ES")
        assert {d.symbol for d in days} == {"ES"}
        recv = read_dbn(MBO_0508, timestamp="recv")[0]
        assert recv.events["ts"].is_sorted()

    def test_unsupported_schema(self) -> None:
        with pytest.raises(IngestError, match="unsupported DBN schema"):
            read_dbn(DBN_DIR / "futures_ohlcv-1m_2024-07-01T23-40_2024-07-02T00-10.dbn.zst")

    @pytest.mark.parametrize("name", ["definition-glbx-es-fut.dbn.zst", "futures_definition.dbn.zst"])
    def test_definition_files_are_instruments_not_events(self, name: str) -> None:
        with pytest.raises(IngestError, match="definition file"):
            read_dbn(DBN_DIR / name)

    def test_truncated(self, tmp_path: Path) -> None:
        raw = MBP1.read_bytes()
        cut = tmp_path / "cut.mbp-1.dbn.zst"
        cut.write_bytes(raw[: len(raw) // 2])
        with pytest.raises(IngestError, match="truncated"):
            read_dbn(cut)
        with MBP1.open("rb") as fh:
            plain = zstandard.ZstdDecompressor().stream_reader(fh, read_across_frames=True).read()
        cut = tmp_path / "cut.mbp-1.dbn"
        cut.write_bytes(plain[:-7])  # the last record loses its tail
        with pytest.raises(IngestError, match="truncated"):
            read_dbn(cut)
        cut.write_bytes(plain[:40])  # inside the metadata header
        with pytest.raises(IngestError):
            read_dbn(cut)


def test_dbn_garbage_and_empty(tmp_path: Path) -> None:
    bad = tmp_path / "x.dbn"
    bad.write_bytes(b"hello world, not a dbn file\n")
    with pytest.raises(IngestError, match="not a DBN file"):
        read_dbn(bad)
    bad.write_bytes(b"")
    with pytest.raises(IngestError, match="empty"):
        read_dbn(bad)
    with pytest.raises(IngestError, match="not found"):
        read_dbn(tmp_path / "missing.dbn")


def test_replay_kernel_small() -> None:
    """Add, partial cancel, modify (price move), fill (no change), full cancel, clear."""
    A, C, M, F, R = 0, 1, 2, 4, 5
    px = lambda x: int(x * 1e9)  # noqa: E731
    action = np.array([A, A, A, C, M, F, C, A, R], dtype=np.int8)
    side = np.array([1, 1, -1, 1, -1, -1, -1, 1, 0], dtype=np.int8)
    price = np.array([px(100), px(99.5), px(101), px(100), px(100.5), px(100.5), px(100.5), px(100), 2**63 - 1])
    size = np.array([5, 3, 4, 2, 4, 4, 4, 1, 0], dtype=np.uint32)
    oid = np.array([1, 2, 3, 1, 3, 3, 3, 4, 0], dtype=np.uint64)
    book, codes, anomalies = replay_mbo_book(action, side, price, size, oid, levels=2)
    assert anomalies.tolist() == [0, 0, 0]
    assert codes.tolist() == [A, A, A, C, M, F, 7, A, R]  # full cancel -> delete (7)
    bid1 = list(zip(book["bid_px_1"], book["bid_sz_1"], strict=True))
    ask1 = list(zip(book["ask_px_1"], book["ask_sz_1"], strict=True))
    assert bid1[:8] == [(100, 5), (100, 5), (100, 5), (100, 3), (100, 3), (100, 3), (100, 3), (100, 4)]
    assert ask1[2:6] == [(101, 4), (101, 4), (100.5, 4), (100.5, 4)]
    assert np.isnan(ask1[6][0]) and ask1[6][1] == 0
    assert book["bid_px_2"][1] == 99.5 and book["bid_sz_2"][1] == 3
    assert np.isnan(book["bid_px_1"][8]) and np.isnan(book["ask_px_1"][8])


# --------------------------------------------------------------------------------------------- ticks


@real_data
@pytest.mark.real_data
class TestTicksReal:
    def test_mlfinpy_chicago_days(self) -> None:
        assert looks_like_ticks(MLFINPY)
        days = read_ticks(MLFINPY, symbol="ES", tz="America/Chicago")
        assert [d.date for d in days] == [dt.date(2013, 9, 1), dt.date(2013, 9, 2), dt.date(2013, 9, 3)]
        assert sum(d.events.height for d in days) == 500_000
        first, last = days[0], days[-1]
        # 17:00 CDT (UTC-5) on Sunday 2013-09-01 is 22:00 UTC; the last row is 13:51:44.578 CDT
        assert first.events["ts"][0] == _utc(2013, 9, 1, 22, 0, 0, 83_000)
        assert last.events["ts"][-1] == _utc(2013, 9, 3, 18, 51, 44, 578_000)
        for d in days:
            d.conformed()
            local = d.events["ts"].dt.convert_time_zone("America/Chicago").dt.date()
            assert (local == d.date).all()
            assert d.book is None and d.trades.height == d.events.height
            assert d.trades["aggressor_side"].null_count() == d.trades.height
            assert d.trades["price"].min() > 1_600 and d.trades["price"].max() < 1_700

    def test_binance_trades(self) -> None:
        path = BINANCE / "btcusdt-trades.parquet"
        assert looks_like_ticks(path)
        (day,) = read_ticks(path)
        day.conformed()
        assert (day.symbol, day.date, day.events.height, day.trades.height) == ("BTCUSDT", dt.date(2021, 1, 8), 2001, 2001)
        raw = pl.read_parquet(path)
        # buyer_maker true -> the seller crossed the spread -> -1
        expected = np.where(raw["buyer_maker"].str.to_lowercase() == "true", -1, 1)
        assert (day.trades["aggressor_side"].to_numpy() == expected).all()
        # fractional BTC sizes are stored in 1e-8 units
        assert np.allclose(day.trades["size"].to_numpy() / 1e8, raw["quantity"].to_numpy())
        assert day.events["ts"][0] == _utc(2021, 1, 8, 0, 0, 0, 278_000)

    def test_binance_quotes(self) -> None:
        path = BINANCE / "btcusdt-quotes.parquet"
        (day,) = read_ticks(path, date=dt.date(2021, 1, 8))
        day.conformed()
        assert day.events.height == 451 and day.trades.height == 0 and day.levels == 1
        assert (day.events["event_type"] == "quote").all()
        raw = pl.read_parquet(path)
        assert (day.book["bid_px_1"] == raw["bid"]).all() and (day.book["ask_px_1"] == raw["ask"]).all()
        assert (day.book["seq"] == day.events["seq"]).all()
        with pytest.raises(IngestError, match="not 2021-01-09"):
            read_ticks(path, date=dt.date(2021, 1, 9))


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


GOOD_TRADES = (
    "timestamp,price,size,side\n"
    "2024-03-04T14:30:00.000001,100.25,10,B\n"
    "2024-03-04T14:30:00.5,100.50,5,sell\n"
    "2024-03-04T14:30:00.250,100.00,3,\n"  # out of order: kept, not an error
    "2024-03-05T09:00:00,101.00,1,-1\n"
)


def test_ticks_csv_trades_basic(tmp_path: Path) -> None:
    p = _write(tmp_path, "aapl_trades.csv", GOOD_TRADES)
    assert looks_like_ticks(p)
    days = read_ticks(p, tz="America/New_York")
    assert [(d.symbol, d.date, d.events.height) for d in days] == [
        ("AAPL", dt.date(2024, 3, 4), 3),
        ("AAPL", dt.date(2024, 3, 5), 1),
    ]
    d = days[0].conformed()
    assert d.events["ts"][0] == _utc(2024, 3, 4, 19, 30, 0, 1)  # EST = UTC-5; microseconds kept
    assert d.trades["aggressor_side"].to_list() == [1, -1, None]
    assert d.trades["seq"].to_list() == [0, 1, 2]


@pytest.mark.parametrize("comp", ["gz", "xz", "zst"])
def test_ticks_compressed(tmp_path: Path, comp: str) -> None:
    data = GOOD_TRADES.encode()
    packed = {"gz": gzip.compress, "xz": lzma.compress, "zst": zstandard.ZstdCompressor().compress}[comp](data)
    p = tmp_path / f"msft-ticks.csv.{comp}"
    p.write_bytes(packed)
    assert looks_like_ticks(p)
    days = read_ticks(p, symbol="MSFT", tz="UTC")
    assert sum(d.events.height for d in days) == 4 and days[0].symbol == "MSFT"


def test_ticks_epochs_and_quotes(tmp_path: Path) -> None:
    base = 1_709_562_600  # 2024-03-04 14:30:00 UTC
    for scale, unit in ((1, ""), (1_000, "ms"), (1_000_000, "us"), (1_000_000_000, "ns")):
        rows = "".join(f"{base * scale + i},{10 + i},{10.5 + i},{i + 1},{i + 2}\n" for i in range(3))
        p = _write(tmp_path, f"q{unit}.csv", "TS,Bid_Price,Ask_Price,Bid_Qty,Ask_Qty\n" + rows)
        (d,) = read_ticks(p, symbol="Q")
        assert d.events["ts"][0] == _utc(2024, 3, 4, 14, 30), unit
        assert d.book is not None and d.book["bid_sz_1"].to_list() == [1, 2, 3]
        assert d.trades.height == 0 and d.events["price"].null_count() == 3
    p = _write(tmp_path, "frac.csv", f"time,price,qty\n{base}.123456789,1.5,2\n")
    (d,) = read_ticks(p)
    assert d.events["ts"].cast(pl.Int64)[0] == base * 10**9 + 123_456_789  # decimal epochs parsed exactly


def test_ticks_buyer_maker_csv(tmp_path: Path) -> None:
    p = _write(tmp_path, "eth-trades.csv", "time,price,qty,is_buyer_maker\n1,2.5,1,True\n2,2.5,1,false\n")
    # tiny epochs are seconds (1970); not a tick of real life, but a valid number
    (d,) = read_ticks(p)
    assert d.trades["aggressor_side"].to_list() == [-1, 1]


def test_ticks_dst_fall_back(tmp_path: Path) -> None:
    rows = ["2013-11-03 01:30:00", "2013-11-03 01:50:00", "2013-11-03 01:10:00", "2013-11-03 02:10:00"]
    p = _write(tmp_path, "es.csv", "datetime,price,volume\n" + "".join(f"{r},1600,1\n" for r in rows))
    (d,) = read_ticks(p, tz="America/Chicago")
    hours = [t.hour for t in d.events["ts"].to_list()]
    assert hours == [6, 6, 7, 8]  # CDT (UTC-5) until the clock steps back, then CST (UTC-6)


# ------------------------------------------------------------------------------------- broken ticks


@pytest.mark.parametrize(
    ("body", "line", "match"),
    [
        ("2024-03-04T14:30:00,100.25,10,B\n2024-03-04T14:30:01,abc,5,S\n", 3, "'abc' is not a number"),
        ("2024-03-04T14:30:00,100.25,10,B\n2024-03-04T14:30:01,100.5,5\n", 3, "expected 4 columns, found 3"),
        ("2024-03-04T14:30:00,100.25,10,B\n2024-03-04T14:30:01,100.5,5,B,9\n", 3, "expected 4 columns, found 5"),
        ("2024-03-04T14:30:00,100.25,10,B\n2024-03-04T14:30:01,,5,B\n", 3, "empty field"),
        ("2024-03-04T14:30:00,100.25,10,B\nnot-a-time,100.5,5,B\n", 3, "cannot parse timestamp"),
        ("2024-03-04T14:30:00,100.25,10,B\n2024-03-04T14:30:01,100.5,5,X\n", 3, "unknown side"),
        ("2024-03-04T14:30:00,100.25,10,B\n2024-03-04T14:30:01,100.5,-5,B\n", 3, "negative size"),
        ("2024-03-04T14:30:00,100.25,10,B\n2024-03-04T14:30:01,inf,5,B\n", 3, "not a finite number"),
        ("2024-03-04T14:30:00,100.25,10,B\n\n2024-03-04T14:30:01,100.5,5,B\n", 3, "found 0"),
        ("2024-03-04T14:30:00,100.25,10,B\n2024-03-04T14:30:01,100.5,5,B", 3, "truncated"),
    ],
)
def test_ticks_malformed(tmp_path: Path, body: str, line: int, match: str) -> None:
    p = _write(tmp_path, "bad.csv", "timestamp,price,size,side\n" + body)
    with pytest.raises(IngestError, match=match) as info:
        read_ticks(p, symbol="X", tz="UTC")
    assert info.value.line == line
    assert info.value.path == str(p)
    assert f"bad.csv:{line}:" in str(info.value)


def test_ticks_bad_number_deep_in_file(tmp_path: Path) -> None:
    rows = [f"{1_700_000_000_000 + i},{100 + i % 7}.25,{1 + i % 3}\n" for i in range(5_000)]
    rows[3_210] = "1700000003210,12x.5,1\n"
    p = _write(tmp_path, "deep.csv", "ts,price,size\n" + "".join(rows))
    with pytest.raises(IngestError, match=r"'12x\.5' is not a number") as info:
        read_ticks(p)
    assert info.value.line == 3_212


def test_ticks_missing_column_and_headers(tmp_path: Path) -> None:
    p = _write(tmp_path, "a.csv", "timestamp,price\n2024-03-04T14:30:00,1\n")
    with pytest.raises(IngestError, match="neither trades") as info:
        read_ticks(p)
    assert info.value.line == 1
    p = _write(tmp_path, "b.csv", "price,size\n1,2\n")
    with pytest.raises(IngestError, match="no timestamp column"):
        read_ticks(p)
    p = _write(tmp_path, "c.csv", "time,price,size,bid,ask\n1,1,1,1,1\n")
    with pytest.raises(IngestError, match="both trade"):
        read_ticks(p)
    p = _write(tmp_path, "d.csv", "time,price,size\n")
    with pytest.raises(IngestError, match="no data rows"):
        read_ticks(p)
    p = _write(tmp_path, "e.csv", "")
    with pytest.raises(IngestError, match="empty"):
        read_ticks(p)
    assert not looks_like_ticks(_write(tmp_path, "f.csv", "34200.1,1,2,3,4,1\n"))  # LOBSTER-like: no header


def test_ticks_mixed_epoch_magnitudes_and_gaps(tmp_path: Path) -> None:
    p = _write(tmp_path, "m.csv", "ts,price,size\n1709562600000,1,1\n1709562601,1,1\n")
    with pytest.raises(IngestError, match="different magnitude") as info:
        read_ticks(p)
    assert info.value.line == 3
    p = _write(tmp_path, "g.csv", "datetime,price,volume\n2013-03-10 01:59:00,1,1\n2013-03-10 02:30:00,1,1\n")
    with pytest.raises(IngestError, match="DST gap") as info:
        read_ticks(p, tz="America/Chicago")
    assert info.value.line == 3


def test_ticks_parquet_errors(tmp_path: Path) -> None:
    p = tmp_path / "x-trades.parquet"
    pl.DataFrame({"timestamp": [1, 2], "price": [1.0, None], "size": [1, 1]}).write_parquet(p)
    with pytest.raises(IngestError, match="row 2: column 'price': empty field"):
        read_ticks(p)
    p.write_bytes(b"PAR1 garbage")
    with pytest.raises(IngestError, match="cannot read Parquet"):
        read_ticks(p)
    p = tmp_path / "y-trades.parquet"
    pl.DataFrame({"timestamp": [1, 2], "price": [1.0, 2.0], "size": [0.5, 0.123456789]}).write_parquet(p)
    with pytest.raises(IngestError, match=r"row 2: .*not a whole number"):
        read_ticks(p)
    (d,) = read_ticks(p, size_scale=10**9)
    assert d.events["size"].to_list() == [500_000_000, 123_456_789]


# ------------------------------------------------------------------------------ synthetic DBN files


def _synthetic_dbn(path: Path, schema_name: str, rows: list[dict[str, object]]) -> Path:
    """Write a DBN file (current version) with ESU4 (id 118) and NQU4 (id 4358) mapped; id 999 unmapped."""
    from types import SimpleNamespace as NS

    import databento_dbn as dbn
    from databento.common.dbnstore import SCHEMA_STRUCT_MAP

    schema = dbn.Schema.from_str(schema_name)
    interval = [NS(start_date=dt.date(2024, 7, 1), end_date=dt.date(2024, 7, 3))]
    meta = dbn.Metadata(
        dataset="GLBX.MDP3", start=1_719_878_280 * 10**9, end=1_719_878_520 * 10**9, schema=schema,
        stype_in=dbn.SType.RAW_SYMBOL, stype_out=dbn.SType.INSTRUMENT_ID, symbols=["ESU4", "NQU4"],
        mappings=[
            NS(raw_symbol=sym, intervals=[NS(symbol=iid, **vars(interval[0]))])
            for sym, iid in (("ESU4", "118"), ("NQU4", "4358"))
        ],
    )
    dtype = np.dtype(SCHEMA_STRUCT_MAP[schema]._dtypes)
    rec = np.zeros(len(rows), dtype=dtype)
    rtype = {"mbp-10": 0x0A, "mbp-1": 0x01, "tbbo": 0x01, "trades": 0x00}[schema_name]
    rec["length"] = dtype.itemsize // 4
    rec["rtype"] = rtype
    rec["publisher_id"] = 1
    for name in dtype.names:
        if "_px_" in name:
            rec[name] = 2**63 - 1  # undefined level price
    for i, row in enumerate(rows):
        for k, v in row.items():
            rec[k][i] = v
    rec["ts_recv"] = rec["ts_event"]
    path.write_bytes(bytes(meta) + rec.tobytes())
    return path


def _record_size(schema_name: str) -> int:
    import databento_dbn as dbn
    from databento.common.dbnstore import SCHEMA_STRUCT_MAP

    return np.dtype(SCHEMA_STRUCT_MAP[dbn.Schema.from_str(schema_name)]._dtypes).itemsize


def test_synthetic_mbp10_multi_instrument(tmp_path: Path) -> None:
    t0 = 1_719_878_399 * 10**9  # 2024-07-01 23:59:59 UTC
    px = lambda x: round(x * 1e9)  # noqa: E731
    rows: list[dict[str, object]] = []
    for i, (iid, base) in enumerate([(118, 5500.0), (4358, 20000.0), (118, 5500.25), (999, 1.0), (4358, 20001.0)]):
        row: dict[str, object] = {
            "instrument_id": iid, "ts_event": t0 + i * 500_000_000, "action": b"A" if i != 2 else b"T",
            "side": b"B" if i % 2 else b"A", "price": px(base), "size": i + 1, "flags": 0x80,
        }
        for k in range(3 if iid != 999 else 1):  # deeper levels stay undefined
            row[f"bid_px_{k:02d}"] = px(base - 0.25 * (k + 1))
            row[f"ask_px_{k:02d}"] = px(base + 0.25 * (k + 1))
            row[f"bid_sz_{k:02d}"] = 10 + k
            row[f"ask_sz_{k:02d}"] = 20 + k
        rows.append(row)
    path = _synthetic_dbn(tmp_path / "multi.mbp-10.dbn", "mbp-10", rows)
    assert looks_like_dbn(path)
    days = read_dbn(path)
    keys = [(d.symbol, d.date, d.events.height) for d in days]
    assert keys == [
        ("999", dt.date(2024, 7, 2), 1),  # unmapped instrument id -> its number
        ("ESU4", dt.date(2024, 7, 1), 1),
        ("ESU4", dt.date(2024, 7, 2), 1),
        ("NQU4", dt.date(2024, 7, 1), 1),
        ("NQU4", dt.date(2024, 7, 2), 1),
    ]
    for d in days:
        d.conformed()
        assert d.levels == 10 and d.book is not None
        assert d.book["bid_px_4"].is_null().all() and d.book["ask_sz_10"].is_null().all()
    es2 = days[2]
    assert es2.events["event_type"].to_list() == ["trade"] and es2.trades["aggressor_side"].to_list() == [-1]
    assert es2.book.row(0, named=True)["bid_px_3"] == 5499.5
    assert days[1].events["event_type"].to_list() == ["quote"] and days[1].trades.height == 0
    with pytest.raises(IngestError, match="single-instrument"):
        read_dbn(path, symbol="ES")


def test_synthetic_tbbo_and_bad_rtype(tmp_path: Path) -> None:
    t0 = 1_719_878_300 * 10**9
    rows = [
        {"instrument_id": 118, "ts_event": t0 + i, "action": b"T", "side": s, "price": 5_500 * 10**9, "size": 1,
         "bid_px_00": 5_499_750_000_000, "ask_px_00": 5_500 * 10**9, "bid_sz_00": 3, "ask_sz_00": 4}
        for i, s in enumerate([b"B", b"A", b"N"])
    ]
    path = _synthetic_dbn(tmp_path / "t.tbbo.dbn", "tbbo", rows)
    (d,) = read_dbn(path)
    assert d.symbol == "ESU4" and d.levels == 1 and d.events["event_type"].to_list() == ["trade"] * 3
    assert d.trades["aggressor_side"].to_list() == [1, -1, None]
    assert d.book["ask_sz_1"].to_list() == [4, 4, 4]
    # corrupt the rtype of the last record: the reader must refuse it
    raw = path.read_bytes()
    item = _record_size("tbbo")
    data = bytearray(raw)
    data[len(raw) - item + 1] = 0xA0
    path.write_bytes(bytes(data))
    with pytest.raises(IngestError, match="record 3: rtype 160"):
        read_dbn(path)
