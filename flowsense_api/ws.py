"""WebSocket ``/ws``: live updates per topic and symbol, with resume.

Protocol (JSON text frames):

1. Authenticate: either send ``Authorization: Bearer <key>`` with the upgrade request, or (browsers,
   which cannot set headers on a WebSocket) send ``{"op": "auth", "key": "<key>"}`` as the first frame
   within 5 s. Without a valid key the server closes with code 4401.
2. The server answers ``{"type": "hello", "cursor": <latest>, "topics": [...]}``.
3. ``{"op": "subscribe", "topics": ["book", "trades"], "symbols": ["GOOG"], "cursor": 123}``:
   ``symbols`` defaults to every symbol (``["*"]``); with ``cursor``, every kept event after it is
   replayed first (resume after a reconnect), without it the latest event of each subscription is sent
   as a ``snapshot``. ``{"op": "unsubscribe", ...}`` and ``{"op": "ping"}`` (-> ``pong``) also exist.
4. Updates: ``{"type": "events", "cursor": <last>, "items": [{cursor, topic, symbol, ts, data}, ...]}``.
   Keep the last ``cursor`` to resume. ``{"type": "gap"}`` means events were lost between two cursors,
   ``{"type": "lagged"}`` that the client was too slow and is being disconnected (reconnect with cursor).

A bad frame gets ``{"type": "error", "message": ...}``; the connection stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from flowsense_api.hub import TOPICS, Client

AUTH_TIMEOUT_S = 5.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_RATE_LIMITED = 4429


def _subs(msg: dict[str, Any]) -> set[tuple[str, str]]:
    topics = msg.get("topics", list(TOPICS))
    symbols = msg.get("symbols", ["*"])
    if isinstance(topics, str):
        topics = [topics]
    if isinstance(symbols, str):
        symbols = [symbols]
    if not isinstance(topics, list) or not isinstance(symbols, list) or not topics or not symbols:
        raise ValueError("topics and symbols must be non-empty lists of strings")
    bad = [t for t in topics if t not in TOPICS]
    if bad:
        raise ValueError(f"unknown topic(s) {bad}; topics: {', '.join(TOPICS)}")
    if any(not isinstance(s, str) or not s or len(s) > 32 for s in symbols):
        raise ValueError("symbols must be strings of 1 to 32 characters")
    if len(topics) * len(symbols) > 1000:
        raise ValueError("at most 1000 (topic, symbol) subscriptions per connection")
    return {(t, s) for t in topics for s in symbols}


def install_ws(app: FastAPI) -> None:
    from flowsense_api.app import ApiError, authenticate

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        st = websocket.app.state.api
        await websocket.accept()
        header = websocket.headers.get("authorization")
        try:
            if header is None:
                try:
                    raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
                    first = json.loads(raw)
                except (TimeoutError, ValueError):
                    first = {}
                key = first.get("key") if isinstance(first, dict) and first.get("op") == "auth" else None
                header = f"Bearer {key}" if isinstance(key, str) else None
            info = authenticate(st, header)
        except ApiError as exc:
            code = CLOSE_RATE_LIMITED if exc.status == 429 else CLOSE_UNAUTHORIZED
            with contextlib.suppress(Exception):
                await websocket.send_text(json.dumps({"type": "error", "error": exc.kind, "message": exc.message}))
                await websocket.close(code=code, reason=exc.kind)
            return
        except WebSocketDisconnect:
            return

        hub = st.hub
        client: Client = hub.new_client()
        await websocket.send_text(json.dumps({"type": "hello", "cursor": hub.cursor, "topics": list(TOPICS),
                                              "key_id": info.key_id}))

        async def sender() -> None:
            while True:
                frame = await client.queue.get()
                if frame is None:
                    with contextlib.suppress(Exception):
                        await websocket.close(code=1013 if client.lagged else 1001)
                    return
                await websocket.send_text(frame)

        send_task = asyncio.create_task(sender())
        try:
            while True:
                recv = asyncio.create_task(websocket.receive_text())
                done, _ = await asyncio.wait({recv, send_task}, return_when=asyncio.FIRST_COMPLETED)
                if send_task in done:
                    recv.cancel()
                    with contextlib.suppress(BaseException):
                        await recv
                    break
                raw = recv.result()
                try:
                    msg = json.loads(raw)
                    if not isinstance(msg, dict):
                        raise ValueError("a frame must be a JSON object with an 'op'")
                    op = msg.get("op")
                    if op == "subscribe":
                        cursor = msg.get("cursor")
                        if cursor is not None and (not isinstance(cursor, int) or isinstance(cursor, bool)
                                                   or cursor < 0):
                            raise ValueError("cursor must be a non-negative integer")
                        subs = _subs(msg)
                        await hub.subscribe(client, subs, cursor)
                        client.queue.put_nowait(json.dumps({"type": "subscribed", "subscriptions":
                                                            sorted([list(s) for s in client.subs])}))
                    elif op == "unsubscribe":
                        hub.unsubscribe(client, _subs(msg))
                        client.queue.put_nowait(json.dumps({"type": "unsubscribed", "subscriptions":
                                                            sorted([list(s) for s in client.subs])}))
                    elif op == "ping":
                        client.queue.put_nowait(json.dumps({"type": "pong", "cursor": hub.cursor}))
                    elif op == "auth":
                        pass
                    else:
                        raise ValueError(f"unknown op {op!r}; ops: subscribe, unsubscribe, ping")
                except (ValueError, asyncio.QueueFull) as exc:
                    with contextlib.suppress(asyncio.QueueFull):
                        client.queue.put_nowait(json.dumps({"type": "error", "message": str(exc)[:300]}))
        except WebSocketDisconnect:
            pass
        finally:
            hub.drop(client)
            send_task.cancel()
            with contextlib.suppress(BaseException):
                await send_task
