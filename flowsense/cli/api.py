"""``flowsense api``: run the REST/WebSocket API and dashboard, and manage its API keys.

``flowsense api [--host 127.0.0.1] [--port 8000]`` serves until interrupted;
``flowsense api keys create [--scope read|admin]`` prints the new key alone on stdout (shown once; only a
hash is stored), ``keys list`` and ``keys revoke ID``. The server package ``flowsense_api`` is imported
inside the commands only (the library itself never imports it).
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from flowsense.cli.common import console, err_console, fail, reported_errors, settings


def _store():
    from flowsense_api.keys import KeyStore

    return KeyStore(settings().api_dir / "keys.db")


def register(app: typer.Typer) -> None:
    api = typer.Typer(name="api", help="The REST/WebSocket API and web dashboard, and its API keys.",
                      no_args_is_help=False, invoke_without_command=True)
    keys = typer.Typer(name="keys", help="Create, list and revoke API keys (stored hashed).", no_args_is_help=True)
    api.add_typer(keys)
    app.add_typer(api)

    @api.callback()
    def serve(
        ctx: typer.Context,
        host: Annotated[str, typer.Option(help="Address to bind (loopback by default; 0.0.0.0 exposes it).")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port (0 = any free port).", min=0, max=65535)] = 8000,
        cors_origin: Annotated[list[str] | None, typer.Option(
            "--cors-origin", help="Browser origin allowed by CORS (repeatable; default: FLOWSENSE_API_CORS_ORIGINS, "
                                  "else none).")] = None,
        no_access_log: Annotated[bool, typer.Option("--no-access-log", help="Do not log each request.")] = False,
    ) -> None:
        """Serve the API (/api/v1, /ws, /docs) and the dashboard (/dashboard/) until interrupted.

        Example: flowsense api --port 8000, then open http://127.0.0.1:8000/dashboard/ and log in with a key
        from `flowsense api keys create`.
        """
        if ctx.invoked_subcommand is not None:
            return
        cfg = settings()
        from flowsense_api.server import serve as run

        err_console.print(f"FlowSense API on http://{host}:{port}/ (dashboard /dashboard/, docs /docs); "
                          f"state in {cfg.home}", highlight=False)
        with reported_errors():
            run(host, port, settings=cfg, access_log=not no_access_log,
                cors_origins=tuple(cors_origin) if cors_origin else None)

    @keys.command("create")
    def create(
        scope: Annotated[str, typer.Option(help="read (every GET) or admin (also halt/resume/promote).")] = "read",
        name: Annotated[str, typer.Option(help="A label for listings (who or what uses the key).")] = "",
        rate: Annotated[float | None, typer.Option(help="Requests/s allowed to this key (default: "
                                                        "FLOWSENSE_API_RATE_LIMIT, 100).")] = None,
    ) -> None:
        """Create a key and print it alone on stdout (it is shown once; only its hash is stored)."""
        from flowsense_api.keys import SCOPES

        if scope not in SCOPES:
            fail(f"--scope must be one of {', '.join(SCOPES)}, got {scope!r}")
        with reported_errors():
            info, token = _store().create(scope=scope, name=name, rate_limit=rate)
        sys.stdout.write(token + "\n")
        sys.stdout.flush()
        err_console.print(f"created key {info.key_id} (scope {info.scope}); store it now, it is not shown again",
                          highlight=False)

    @keys.command("list")
    def list_(as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout.")] = False) -> None:
        """List keys (ids, scopes, names, dates; never the keys themselves)."""
        with reported_errors():
            rows = _store().list()
        if as_json:
            print(json.dumps([r.as_dict() for r in rows]))
            return
        from rich.table import Table

        table = Table(title="API keys")
        for col in ("id", "scope", "name", "created", "last used", "revoked", "rate/s"):
            table.add_column(col)
        for r in rows:
            table.add_row(r.key_id, r.scope, r.name, r.created_at, r.last_used_at or "", r.revoked_at or "",
                          "" if r.rate_limit is None else f"{r.rate_limit:g}")
        console.print(table)

    @keys.command("revoke")
    def revoke(key_id: Annotated[str, typer.Argument(help="Key id (from `keys list`) or the key itself.")]) -> None:
        """Revoke a key: requests with it are refused (401) within 2 s on a running API."""
        with reported_errors():
            info = _store().revoke(key_id)
        err_console.print(f"revoked key {info.key_id} at {info.revoked_at}", highlight=False)
