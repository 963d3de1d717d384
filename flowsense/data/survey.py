"""What every real file in a folder ingests to: ``python -m flowsense.data.survey [DATA_DIR] [--markdown]``.

Each file is ingested alone into a fresh temporary lake (so the rows are what that file gives), and the
result is one row per partition: format, symbol, date, rows of ``events``/``book``/``trades``, book levels
and the validation result (ERROR checks that failed, warnings), or the one-line reason a file is refused.
Definition files report the instruments they define. This is the table in ``docs/DATA.md``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

SKIP_SUFFIXES = (".md",)


def survey(data_dir: Path) -> list[dict[str, object]]:
    from flowsense.data.ingest import ingest_definitions, ingest_file, is_definition_file
    from flowsense.data.lake import Lake
    from flowsense.errors import FlowSenseError

    rows: list[dict[str, object]] = []
    for path in sorted(p for p in data_dir.rglob("*") if p.is_file() and not p.name.endswith(SKIP_SUFFIXES)):
        rel = path.relative_to(data_dir).as_posix()
        with tempfile.TemporaryDirectory() as tmp:
            lake = Lake(Path(tmp) / "lake")
            t0 = time.perf_counter()
            try:
                if is_definition_file(path):
                    for r in ingest_definitions(path, lake):
                        i = r.instrument
                        rows.append({"file": rel, "format": "dbn definition", "symbol": i.symbol, "date": "",
                                     "events": "", "book": "", "trades": "", "levels": "",
                                     "result": f"instrument: tick {i.tick_size:g}, multiplier {i.multiplier:g} "
                                               f"{i.currency}, {i.venue}", "seconds": time.perf_counter() - t0})
                    continue
                results = ingest_file(path, lake)
            except FlowSenseError as exc:
                rows.append({"file": rel, "format": "", "symbol": "", "date": "", "events": "", "book": "",
                             "trades": "", "levels": "", "result": f"refused: {getattr(exc, 'reason', exc)}",
                             "seconds": time.perf_counter() - t0})
                continue
            secs = time.perf_counter() - t0
            for r in results:
                rep = r.report
                errors = rep.problems("error")
                warns = rep.problems("warn")
                report = lake.read_report(r.partition) or {}
                notes = []
                if "book_complete_rows" in report:
                    notes.append(f"book complete on {report['book_complete_rows']:,} rows")
                if report.get("book_complete") is False:
                    notes.append("book incomplete (no initial snapshot)")
                if rep.crossed_book_excluded:
                    notes.append(f"{rep.crossed_book_excluded:,} crossed rows mid-event/outside sessions")
                verdict = "ok" if not errors else "NOT OK: " + ", ".join(f"{k}={v:,}" for k, v in errors.items())
                if warns:
                    verdict += "; warn " + ", ".join(f"{k}={v:,}" for k, v in warns.items())
                if notes:
                    verdict += "; " + "; ".join(notes)
                rows.append({
                    "file": rel, "format": r.format, "symbol": r.partition.symbol,
                    "date": r.partition.date.isoformat(), "events": rep.events, "book": rep.book_rows,
                    "trades": rep.trades, "levels": rep.levels, "result": verdict, "seconds": secs,
                })
    return rows


def markdown(rows: list[dict[str, object]]) -> str:
    cols = ["file", "format", "symbol", "date", "events", "book", "trades", "levels", "result"]
    out = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        cells = []
        for c in cols:
            v = r[c]
            cells.append(f"{v:,}" if isinstance(v, int) else str(v).replace("|", "\\|"))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dir", nargs="?", default=str(Path(__file__).resolve().parents[3] / "shared" / "data"))
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    rows = survey(Path(args.data_dir))
    if args.markdown:
        print(markdown(rows))
    else:
        for r in rows:
            print(f"{r['file']}\t{r['format']}\t{r['symbol']}\t{r['date']}\t{r['events']}\t{r['book']}\t"
                  f"{r['trades']}\t{r['levels']}\t{r['result']}\t{float(r['seconds']):.2f}s")  # type: ignore[arg-type]
    return 0


if __name__ == "__main__":
    sys.exit(main())
