"""API keys: `flowsense api keys create|list|revoke`, stored hashed, checked by the store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from flowsense.cli import app
from flowsense_api.keys import CachedVerifier, KeyStore


def test_cli_create_prints_the_key_alone_and_stores_only_a_hash(home: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["api", "keys", "create", "--scope", "admin", "--name", "ops"])
    assert res.exit_code == 0, res.output
    token = res.stdout.strip()
    assert res.stdout == token + "\n" and token.startswith("fsk_")
    assert "created key" in res.stderr and token not in res.stderr
    store = KeyStore(home / "api" / "keys.db")
    info = store.verify(token)
    assert info is not None and info.scope == "admin" and info.name == "ops"
    raw = (home / "api" / "keys.db").read_bytes() + b"".join(
        p.read_bytes() for p in (home / "api").glob("keys.db-*"))
    secret = token.split("_", 2)[2]
    assert secret.encode() not in raw and token.encode() not in raw
    with sqlite3.connect(home / "api" / "keys.db") as con:
        (digest,) = con.execute("select digest from api_keys where key_id = ?", (info.key_id,)).fetchone()
    assert len(digest) == 32
    assert oct((home / "api" / "keys.db").stat().st_mode & 0o777) == "0o600"

    listed = runner.invoke(app, ["api", "keys", "list", "--json"])
    rows = json.loads(listed.stdout)
    assert [r["key_id"] for r in rows] == [info.key_id] and token not in listed.stdout

    rev = runner.invoke(app, ["api", "keys", "revoke", info.key_id])
    assert rev.exit_code == 0 and "revoked" in rev.stderr
    assert store.verify(token) is None
    again = runner.invoke(app, ["api", "keys", "revoke", info.key_id])
    assert again.exit_code == 2 and "already revoked" in again.stderr
    unknown = runner.invoke(app, ["api", "keys", "revoke", "0123456789ab"])
    assert unknown.exit_code == 2 and "no API key" in unknown.stderr
    bad = runner.invoke(app, ["api", "keys", "create", "--scope", "root"])
    assert bad.exit_code == 2 and "--scope" in bad.stderr and bad.stdout == ""


def test_verify_rejects_tampered_malformed_and_revoked_keys(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.db")
    info, token = store.create("read")
    assert store.verify(token) == store.get(info.key_id)
    key_id, secret = token[4:].split("_", 1)
    other_info, other = store.create("read")
    other_secret = other[4:].split("_", 1)[1]
    for bad in ("", "fsk_", token + "x", token[:-1], f"fsk_{key_id}_{other_secret}", f"fsk_{other_info.key_id}_{secret}",
                "Bearer " + token, "x" * 500):
        assert store.verify(bad) is None, bad
    cached = CachedVerifier(store, ttl_s=0.0)
    assert cached.verify(token) is not None
    store.revoke(token)  # by the token itself also works
    assert cached.verify(token) is None
    with pytest.raises(Exception, match="scope"):
        store.create("superuser")
