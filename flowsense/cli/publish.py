"""``flowsense publish``: feed a Redis stream with one lake partition's ticks (the worker's ``redis`` source).

Each entry carries one tick in the worker's binary wire format (``flowsense.live.ticks``) and its dedupe
key; the stream's ``KEY:meta`` hash names the symbol, date, book depth and event count.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated

import typer

from flowsense.cli.common import console, fail, reported_errors, settings


def register(app: typer.Typer) -> None:
    @app.command()
    def publish(
        symbol: Annotated[str, typer.Option("--symbol", "-s", help="Symbol of the lake partition.")],
        date: Annotated[str, typer.Option("--date", "-d", help="Trading date YYYY-MM-DD.")],
        stream: Annotated[str, typer.Option(help="Redis stream key to append to.")],
        speed: Annotated[float | None, typer.Option(help="Multiple of real time (default: as fast as possible).")] = None,
        limit: Annotated[int | None, typer.Option(help="Publish only the first N ticks (the session then has N events).")] = None,
        redis_url: Annotated[str | None, typer.Option(help="Redis URL (default FLOWSENSE_REDIS_URL).")] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    ) -> None:
        """Append the ticks of SYMBOL on DATE from the lake to a Redis stream.

        Example: flowsense publish --symbol GOOG --date 2012-06-21 --stream ticks:GOOG --speed 10
        """
        cfg = settings()
        if speed is not None and speed <= 0:
            fail("--speed must be > 0")
        with reported_errors():
            from flowsense.adapters.redis.streams import connect
            from flowsense.adapters.redis.streams import publish as publish_records
            from flowsense.live.ticks import lake_records

            rec = lake_records(str(cfg.lake), symbol, date)
            if limit is not None:
                rec = rec[:limit].copy()
                rec["n"] = rec.shape[0]
            client = connect(redis_url or cfg.redis_url)
            t0 = time.perf_counter()
            n = publish_records(client, stream, symbol, date, rec, speed=speed)
            wall = time.perf_counter() - t0
        out = {"stream": stream, "symbol": symbol, "date": date, "published": n, "wall_s": wall,
               "ticks_per_s": n / wall if wall > 0 else None}
        if as_json:
            sys.stdout.write(json.dumps(out) + "\n")
        else:
            console.print(f"published {n:,} ticks of {symbol} {date} to {stream} in {wall:.2f} s")
