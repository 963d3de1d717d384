"""API keys: created and revoked from the command line, stored hashed, checked on every request.

A key looks like ``fsk_<id>_<secret>``: ``id`` (12 hex characters) names the key in listings, the audit log
and the rate limiter; ``secret`` (32 random bytes, URL-safe base64) is never stored. The store keeps
``HMAC-SHA256(salt, secret)`` per key (the secret has 256 bits of entropy, so a slow password hash adds
nothing; the salt keeps equal secrets from hashing alike). Verification compares in constant time.

Storage: SQLite at ``$FLOWSENSE_HOME/api/keys.db`` (the file is created with mode 0600). This module does not
import FastAPI, so the CLI can manage keys quickly.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from flowsense.errors import FlowSenseError

SCOPES = ("read", "admin")
PREFIX = "fsk_"


class KeyError_(FlowSenseError):
    """A key operation that cannot be done (unknown id, bad scope)."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    scope: str
    name: str
    created_at: str
    revoked_at: str | None
    rate_limit: float | None  # requests/s for this key; None = the server default
    last_used_at: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "active": self.active}


_SCHEMA = """
create table if not exists api_keys (
    key_id text primary key,
    salt blob not null,
    digest blob not null,
    scope text not null,
    name text not null default '',
    created_at text not null,
    revoked_at text,
    rate_limit real,
    last_used_at text
)
"""


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def _digest(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def split_key(token: str) -> tuple[str, str] | None:
    """``fsk_<id>_<secret>`` -> ``(id, secret)``; None when the token does not have that shape."""
    if not token.startswith(PREFIX):
        return None
    key_id, sep, secret = token[len(PREFIX):].partition("_")
    if not sep or len(key_id) != 12 or not secret or len(token) > 200:
        return None
    return key_id, secret


class KeyStore:
    """Keys in one SQLite file. Safe to share between threads; every method opens a short transaction."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        self._local = threading.local()
        with self._conn() as con:
            con.execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None)
            con.execute("pragma journal_mode=wal")
            self._local.con = con
        return con

    # ---- management (CLI) -----------------------------------------------------------------
    def create(self, scope: str = "read", name: str = "", rate_limit: float | None = None) -> tuple[KeyInfo, str]:
        """A new key: returns its info and the full token (shown once, never stored)."""
        if scope not in SCOPES:
            raise KeyError_(f"scope {scope!r} is not one of {', '.join(SCOPES)}")
        if rate_limit is not None and not rate_limit > 0:
            raise KeyError_(f"rate limit {rate_limit!r} must be > 0 requests/s")
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        created = _now()
        with self._conn() as con:
            con.execute(
                "insert into api_keys (key_id, salt, digest, scope, name, created_at, rate_limit) "
                "values (?, ?, ?, ?, ?, ?, ?)",
                (key_id, salt, _digest(salt, secret), scope, name, created, rate_limit),
            )
        return KeyInfo(key_id, scope, name, created, None, rate_limit), f"{PREFIX}{key_id}_{secret}"

    def revoke(self, key_id: str) -> KeyInfo:
        """Revoke a key by id (or by a full token); revoking twice is an error that says so."""
        parts = split_key(key_id)
        key_id = parts[0] if parts else key_id
        info = self.get(key_id)
        if info is None:
            raise KeyError_(f"no API key with id {key_id!r} (see `flowsense api keys list`)")
        if info.revoked_at is not None:
            raise KeyError_(f"API key {key_id} was already revoked at {info.revoked_at}")
        with self._conn() as con:
            con.execute("update api_keys set revoked_at = ? where key_id = ?", (_now(), key_id))
        got = self.get(key_id)
        assert got is not None
        return got

    def list(self) -> list[KeyInfo]:
        rows = self._conn().execute(
            "select key_id, scope, name, created_at, revoked_at, rate_limit, last_used_at from api_keys "
            "order by created_at, key_id").fetchall()
        return [KeyInfo(*r) for r in rows]

    def get(self, key_id: str) -> KeyInfo | None:
        row = self._conn().execute(
            "select key_id, scope, name, created_at, revoked_at, rate_limit, last_used_at from api_keys "
            "where key_id = ?", (key_id,)).fetchone()
        return KeyInfo(*row) if row else None

    # ---- verification (server) ------------------------------------------------------------
    def verify(self, token: str) -> KeyInfo | None:
        """The key's info when ``token`` is an active key, else None (unknown, revoked, malformed)."""
        parts = split_key(token)
        if parts is None:
            return None
        key_id, secret = parts
        row = self._conn().execute(
            "select salt, digest, scope, name, created_at, revoked_at, rate_limit, last_used_at from api_keys "
            "where key_id = ?", (key_id,)).fetchone()
        if row is None:
            return None
        salt, digest, *rest = row
        if not hmac.compare_digest(_digest(salt, secret), digest):
            return None
        info = KeyInfo(key_id, *rest)
        return info if info.active else None

    def touch(self, key_id: str) -> None:
        with self._conn() as con:
            con.execute("update api_keys set last_used_at = ? where key_id = ?", (_now(), key_id))


class CachedVerifier:
    """``KeyStore.verify`` with a short cache, so a hot endpoint does not hash and query per request.

    A revocation takes effect within ``ttl_s`` seconds. Failed lookups are not cached (a key created a
    moment ago works at once). ``last_used_at`` is updated at most once per ``ttl_s`` per key.
    """

    def __init__(self, store: KeyStore, ttl_s: float = 2.0) -> None:
        self.store = store
        self.ttl_s = ttl_s
        self._cache: dict[str, tuple[float, KeyInfo]] = {}
        self._lock = threading.Lock()

    def verify(self, token: str) -> KeyInfo | None:
        now = time.monotonic()
        hit = self._cache.get(token)
        if hit is not None and now - hit[0] < self.ttl_s:
            return hit[1]
        info = self.store.verify(token)
        with self._lock:
            if info is None:
                self._cache.pop(token, None)
            else:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[token] = (now, info)
        if info is not None:
            self.store.touch(info.key_id)
        return info
