"""Read-only views of what the pipeline wrote: instruments, partitions and their validation, backtest
reports, walk-forward results and the last book/trades of the lake (when no worker is running).

Everything here reads files under ``FLOWSENSE_HOME``; nothing is written. Lists are cached for a few
seconds (a dashboard polls them) and refreshed when the cache expires.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowsense.config import Settings
from flowsense.data.lake import Lake, Partition

# files of a backtest report folder the API serves, with their media types
REPORT_FILES = {
    "report.html": "text/html; charset=utf-8",
    "report.pdf": "application/pdf",
    "metrics.json": "application/json",
    "fills.parquet": "application/vnd.apache.parquet",
    "orders.parquet": "application/vnd.apache.parquet",
    "equity.parquet": "application/vnd.apache.parquet",
}


class NotFound(LookupError):
    """What the client asked for does not exist (the API answers 404 with this message)."""


def jsonable(obj: Any) -> Any:
    """Strict-JSON-safe copy: nan/inf -> None, numpy scalars -> Python, dates -> ISO, dataclasses -> dicts."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [jsonable(v) for v in obj]
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if hasattr(obj, "item") and callable(obj.item) and type(obj).__module__ == "numpy":
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dt.datetime | dt.date | dt.time):
        return obj.isoformat()
    if isinstance(obj, dt.timedelta):
        return obj.total_seconds()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "_asdict"):
        return jsonable(obj._asdict())
    return obj


class _TTL:
    """A tiny time-based cache of zero-argument loaders."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._vals: dict[str, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, name: str, load: Callable[[], Any]) -> Any:
        now = time.monotonic()
        hit = self._vals.get(name)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        val = load()
        with self._lock:
            self._vals[name] = (now, val)
        return val


def parse_date(raw: str) -> dt.date:
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(f"date {raw!r} is not YYYY-MM-DD") from None


class LakeData:
    def __init__(self, settings: Settings, ttl_s: float = 3.0) -> None:
        self.settings = settings
        self.lake = Lake(settings.lake)
        self._cache = _TTL(ttl_s)

    # ---- partitions, validation, instruments ----------------------------------------------------
    def partitions(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            out = []
            for p in self.lake.partitions("events"):
                rep = self.lake.read_report(p) or {}
                out.append({
                    "symbol": p.symbol, "date": p.date.isoformat(),
                    "events": rep.get("events"), "book_rows": rep.get("book_rows"), "trades": rep.get("trades"),
                    "levels": rep.get("levels"), "format": rep.get("format"), "ok": rep.get("ok"),
                    "ingested_at": rep.get("ingested_at"),
                    "problems": _problems(rep),
                    "tables": [t for t in self._tables() if self.lake.exists(t, p)],
                })
            return out
        return self._cache.get("partitions", load)

    def _tables(self) -> list[str]:
        return self._cache.get("tables", lambda: list(self.lake.tables()))

    def validation(self, symbol: str, date: str) -> dict[str, Any]:
        part = Partition(symbol, parse_date(date))
        rep = self.lake.read_report(part)
        if rep is None:
            raise NotFound(f"no ingested partition {symbol} {date} (see /api/v1/partitions)")
        from flowsense.data.validate import SEVERITY

        return {**jsonable(rep), "severity": SEVERITY, "problems": _problems(rep)}

    def symbols(self) -> list[str]:
        return sorted({p["symbol"] for p in self.partitions()})

    def instruments(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            parts = self.partitions()
            out = []
            for sym in self.symbols():
                days = [p["date"] for p in parts if p["symbol"] == sym]
                out.append({"symbol": sym, "first_date": min(days), "last_date": max(days), "days": len(days),
                            **self._instrument(sym)})
            return out
        return self._cache.get("instruments", load)

    def instrument(self, symbol: str) -> dict[str, Any]:
        for row in self.instruments():
            if row["symbol"] == symbol:
                return row
        raise NotFound(f"unknown symbol {symbol!r}; ingested symbols: {', '.join(self.symbols()) or 'none'}")

    def _instrument(self, symbol: str) -> dict[str, Any]:
        try:  # flowsense.data.instruments (issue 7) may not be there yet in every checkout
            from flowsense.data.instruments import instrument_for
        except ImportError:
            return {}
        try:
            inst = instrument_for(symbol, self.settings)
        except Exception as exc:
            return {"instrument_error": str(exc).splitlines()[0][:300]}
        d = jsonable(inst)
        return d if isinstance(d, dict) else {"instrument": d}

    # ---- lake book / trades (fallback when no worker publishes) -----------------------------------
    def latest_partition(self, symbol: str, table: str) -> Partition:
        parts = [p for p in self.lake.partitions(table) if p.symbol == symbol]
        if not parts:
            raise NotFound(f"no {table} for symbol {symbol!r} in the lake; ingested symbols: "
                           f"{', '.join(self.symbols()) or 'none'}")
        return parts[-1]

    def lake_book(self, symbol: str, levels: int) -> dict[str, Any]:
        import polars as pl

        part = self.latest_partition(symbol, "book")

        def load() -> dict[str, Any]:
            df = pl.scan_parquet(self.lake.path("book", part)).tail(1).collect()
            return _book_from_row(df.row(0, named=True)) if df.height else {"bids": [], "asks": []}
        snap = self._cache.get(f"book:{part.key}", load)
        return {"symbol": symbol, "source": "lake", "date": part.date.isoformat(), "ts": snap.get("ts"),
                "seq": snap.get("seq"), "bids": snap["bids"][:levels], "asks": snap["asks"][:levels]}

    def lake_trades(self, symbol: str, limit: int) -> dict[str, Any]:
        import polars as pl

        part = self.latest_partition(symbol, "trades")
        df = pl.scan_parquet(self.lake.path("trades", part)).tail(limit).collect()
        rows = [{"ts": r["ts"].isoformat(), "seq": r["seq"], "price": r["price"], "size": r["size"],
                 "aggressor_side": r["aggressor_side"]} for r in reversed(df.to_dicts())]
        return {"symbol": symbol, "source": "lake", "date": part.date.isoformat(), "items": jsonable(rows)}

    # ---- backtests --------------------------------------------------------------------------------
    def backtests(self) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            root = self.settings.reports
            out = []
            if not root.exists():
                return out
            for mj in root.rglob("metrics.json"):
                try:
                    m = json.loads(mj.read_text())
                except (OSError, json.JSONDecodeError):
                    continue
                rel = mj.parent.relative_to(root)
                eng = m.get("engine") or {}
                out.append({
                    "id": ":".join(rel.parts), "symbol": m.get("symbol"), "date": m.get("date"),
                    "strategy": m.get("strategy"), "params": m.get("params"),
                    "total_return": m.get("total_return"), "sharpe": m.get("sharpe"),
                    "max_drawdown": m.get("max_drawdown"), "win_rate": m.get("win_rate"),
                    "fees_paid": m.get("fees_paid"), "turnover": m.get("turnover"), "fill_rate": m.get("fill_rate"),
                    "n_fills": eng.get("n_fills"), "pnl": eng.get("pnl"),
                    "created_at": dt.datetime.fromtimestamp(mj.stat().st_mtime, dt.UTC).isoformat(timespec="seconds"),
                    "files": sorted(f for f in REPORT_FILES if (mj.parent / f).exists()),
                })
            out.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
            return jsonable(out)
        return self._cache.get("backtests", load)

    def backtest_dir(self, run_id: str) -> Path:
        root = self.settings.reports.resolve()
        parts = run_id.split(":")
        if not run_id or any(p in ("", ".", "..") or "/" in p or "\\" in p for p in parts):
            raise NotFound(f"no backtest {run_id!r}")
        d = root.joinpath(*parts).resolve()
        if root not in d.parents or not (d / "metrics.json").exists():
            raise NotFound(f"no backtest {run_id!r} (see /api/v1/backtests)")
        return d

    def backtest(self, run_id: str) -> dict[str, Any]:
        d = self.backtest_dir(run_id)
        m = json.loads((d / "metrics.json").read_text())
        return jsonable({"id": run_id, **m, "files": sorted(f for f in REPORT_FILES if (d / f).exists())})

    def backtest_file(self, run_id: str, name: str) -> tuple[Path, str]:
        if name not in REPORT_FILES:
            raise NotFound(f"no file {name!r}; a report folder serves {', '.join(REPORT_FILES)}")
        path = self.backtest_dir(run_id) / name
        if not path.exists():
            raise NotFound(f"backtest {run_id!r} has no {name}")
        return path, REPORT_FILES[name]

    def backtest_equity(self, run_id: str, points: int) -> dict[str, Any]:
        import polars as pl

        path = self.backtest_dir(run_id) / "equity.parquet"
        if not path.exists():
            raise NotFound(f"backtest {run_id!r} has no equity.parquet")
        df = pl.read_parquet(path, columns=["ts", "equity"]).drop_nulls().sort("ts")
        return {"id": run_id, "rows": df.height, **_series(df, "equity", points)}

    # ---- walk-forward -----------------------------------------------------------------------------
    def walkforward(self, table: str) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            import polars as pl

            parts = self.lake.partitions(table)
            if not parts:
                return []
            df = pl.concat([self.lake.read(table, p) for p in parts], how="diagonal_relaxed")
            return jsonable(df.to_dicts())
        return self._cache.get(f"wf:{table}", load)


def _problems(rep: dict[str, Any]) -> dict[str, int]:
    try:
        from flowsense.data.validate import SEVERITY
    except ImportError:  # pragma: no cover
        return {}
    return {k: int(rep[k]) for k, sev in SEVERITY.items() if sev != "info" and rep.get(k)}


def _book_from_row(row: dict[str, Any]) -> dict[str, Any]:
    bids, asks = [], []
    k = 1
    while f"bid_px_{k}" in row or f"ask_px_{k}" in row:
        bp, bs = row.get(f"bid_px_{k}"), row.get(f"bid_sz_{k}")
        ap, az = row.get(f"ask_px_{k}"), row.get(f"ask_sz_{k}")
        if bp is not None and bs:
            bids.append([bp, bs])
        if ap is not None and az:
            asks.append([ap, az])
        k += 1
    ts = row.get("ts")
    return {"ts": ts.isoformat() if ts is not None else None, "seq": row.get("seq"), "bids": bids, "asks": asks}


def _series(df: Any, col: str, points: int) -> dict[str, Any]:
    """``ts`` (epoch seconds) and ``col`` values, thinned to at most ``points`` rows (keeping the last)."""
    import polars as pl

    n = df.height
    if n > points:
        step = math.ceil(n / points)
        df = df.with_row_index("__i").filter((pl.col("__i") % step == 0) | (pl.col("__i") == n - 1)).drop("__i")
    ts = (df["ts"].dt.epoch("ns") / 1e9).to_list()
    return {"t": ts, "v": jsonable(df[col].to_list())}
