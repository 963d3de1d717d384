"""Audit log of every admin call: one JSON object per line in ``$FLOWSENSE_HOME/api/audit.jsonl``.

Each entry names the time, the key id (never the key), the client address, the action, its parameters and
the outcome (status code and a short result). Written with ``O_APPEND`` and fsync, so concurrent API
processes interleave whole lines and an entry survives a crash right after the call.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path
from typing import Any


class AuditLog:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def record(self, *, key_id: str, client: str | None, action: str, params: dict[str, Any],
               status: int, result: str) -> dict[str, Any]:
        entry = {
            "ts": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            "key_id": key_id, "client": client, "action": action, "params": params,
            "status": status, "result": result,
        }
        line = (json.dumps(entry, default=str, separators=(",", ":")) + "\n").encode()
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        return entry

    def tail(self, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
        """The most recent entries first."""
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        lines.reverse()
        out = []
        for raw in lines[offset:offset + limit]:
            try:
                out.append(json.loads(raw))
            except json.JSONDecodeError:
                continue
        return out
