"""Ticks on Redis Streams.

Layout: stream ``KEY`` with one entry per tick, fields ``k`` (dedupe key ``SYMBOL|DATE|seq``) and ``t``
(the binary wire record of :mod:`flowsense.live.ticks`); hash ``KEY:meta`` with ``symbol``, ``date``,
``levels``, ``n`` (events in the session) written by the publisher before the first entry.

Consumer (:class:`StreamSource`): a consumer group (created at id ``0`` with ``MKSTREAM``). On start it
claims entries a dead consumer left pending for longer than ``claim_idle_ms`` (``XAUTOCLAIM``), then reads
its own pending entries (id ``0``: delivered before a restart but never acknowledged), then new ones
(``>``). Delivery is at least once: the worker deduplicates by its committed watermark and the key in the
message, and acknowledges a batch only after the batch's effects are committed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from flowsense.errors import FlowSenseError
from flowsense.live.ticks import decode, dedupe_key, encode


class StreamError(FlowSenseError):
    """The stream is missing, unreachable or malformed."""


def connect(url: str) -> Any:
    import redis

    client = redis.Redis.from_url(url, decode_responses=False, socket_timeout=30, socket_connect_timeout=5)
    try:
        client.ping()
    except redis.exceptions.ConnectionError as exc:
        raise StreamError(f"{url}: cannot reach Redis ({exc})") from None
    return client


def id_key(entry_id: str | bytes) -> tuple[int, int]:
    s = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
    a, _, b = s.partition("-")
    return int(a), int(b or 0)


def publish(client: Any, stream: str, symbol: str, date: str, records: np.ndarray, *, speed: float | None = None,
            chunk: int = 2000, maxlen: int | None = None) -> int:
    """Append ``records`` to ``stream`` (as fast as possible, or at ``speed`` x real time by their ``ts``).
    Returns the number of entries written."""
    from flowsense.live.ticks import levels_of

    n = int(records.shape[0])
    client.hset(f"{stream}:meta", mapping={"symbol": symbol, "date": date, "levels": levels_of(records.dtype),
                                            "n": int(records["n"][0]) if n else 0})
    payloads = encode(records)
    seqs = records["seq"].tolist()
    ts = records["ts"]
    t0_wall = time.perf_counter()
    t0_data = int(ts[0]) if n else 0
    step = chunk if speed is None else 1
    for k in range(0, n, step):
        if speed is not None:
            due = (int(ts[k]) - t0_data) / 1e9 / speed
            wait = due - (time.perf_counter() - t0_wall)
            if wait > 0:
                time.sleep(wait)
        pipe = client.pipeline(transaction=False)
        for j in range(k, min(k + step, n)):
            pipe.xadd(stream, {"k": dedupe_key(symbol, date, seqs[j]), "t": payloads[j]},
                      maxlen=maxlen, approximate=maxlen is not None)
        pipe.execute()
    return n


class StreamSource:
    """Consumer-group reader of one tick stream (see the module docstring)."""

    finite = False

    def __init__(self, url: str, stream: str, group: str, consumer: str, *, count: int = 2000,
                 block_ms: int = 200, claim_idle_ms: int = 30_000, meta_wait_s: float = 30.0) -> None:
        import redis

        self.client = connect(url)
        self.stream, self.group, self.consumer = stream, group, consumer
        self.count, self.block_ms, self.claim_idle_ms = count, block_ms, claim_idle_ms
        try:
            self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise StreamError(f"{stream}: cannot create consumer group {group}: {exc}") from None
        meta = self._meta(meta_wait_s)
        self.symbol = meta["symbol"]
        self.date = meta["date"]
        self.levels = int(meta["levels"])
        self.n = int(meta["n"])
        self._phase = "claim"
        self.claimed = 0

    def _meta(self, wait_s: float) -> dict[str, str]:
        deadline = time.monotonic() + wait_s
        while True:
            raw = self.client.hgetall(f"{self.stream}:meta")
            if raw:
                return {k.decode(): v.decode() for k, v in raw.items()}
            if time.monotonic() > deadline:
                raise StreamError(f"{self.stream}: no {self.stream}:meta hash after {wait_s:.0f} s "
                                  f"(publish with `flowsense publish --stream {self.stream} ...`)")
            time.sleep(0.1)

    def _decode(self, entries: list) -> tuple[list[str], np.ndarray]:
        ids, payloads = [], []
        for eid, fields in entries:
            if not fields:  # deleted while pending
                self.client.xack(self.stream, self.group, eid)
                continue
            ids.append(eid.decode() if isinstance(eid, bytes) else eid)
            payloads.append(fields[b"t"])
        return ids, decode(payloads, self.levels)

    def replay_upto(self, last_id: str, batch: int = 20_000) -> Iterator[tuple[list[str], np.ndarray]]:
        """Entries from the start of the stream to ``last_id`` inclusive (recovery replay)."""
        start = "-"
        while True:
            entries = self.client.xrange(self.stream, min=start, max=last_id, count=batch)
            if not entries:
                return
            ids, rec = self._decode(entries)
            yield ids, rec
            a, b = id_key(ids[-1] if ids else entries[-1][0])
            start = f"({a}-{b}"

    def read(self) -> tuple[list[str], np.ndarray] | None:
        """Next batch (claimed, then own pending, then new entries); None when nothing arrived in time."""
        if self._phase == "claim":
            self._phase = "pending"
            start = "0-0"
            while True:  # take over what a dead consumer left pending (it becomes our pending)
                # (redis-py drops the cursor from the reply with justid=True: take the full entries)
                got = self.client.xautoclaim(self.stream, self.group, self.consumer,
                                             min_idle_time=self.claim_idle_ms, start_id=start, count=10_000)
                if not got:
                    break
                nxt, claimed = got[0], got[1]
                self.claimed += len(claimed)
                start = nxt.decode() if isinstance(nxt, bytes) else nxt
                if start == "0-0":
                    break
        if self._phase == "pending":
            got = self.client.xreadgroup(self.group, self.consumer, {self.stream: "0"}, count=self.count)
            entries = got[0][1] if got else []
            if entries:
                return self._decode(entries)
            self._phase = "new"
        got = self.client.xreadgroup(self.group, self.consumer, {self.stream: ">"}, count=self.count,
                                     block=self.block_ms)
        if not got:
            return None
        return self._decode(got[0][1])

    def ack(self, ids: list[str]) -> None:
        if ids:
            self.client.xack(self.stream, self.group, *ids)

    def close(self) -> None:
        self.client.close()


StreamSource.id_key = staticmethod(id_key)  # type: ignore[attr-defined]
