"""The FlowSense API: REST under ``/api/v1``, WebSocket ``/ws``, the dashboard under ``/dashboard``.

Every route but ``/api/v1/health`` (and the static dashboard shell, which holds no data) needs
``Authorization: Bearer <key>``; admin routes need a key of scope ``admin`` and are written to the audit
log. Errors are JSON ``{"error": <kind>, "message": <one line>}`` with a 4xx status; an unexpected fault is
a 500 with the same shape and no traceback (the traceback goes to the server log, keys never do).
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

import flowsense
from flowsense.config import Settings
from flowsense_api import API_VERSION
from flowsense_api.audit import AuditLog
from flowsense_api.hub import EventHub
from flowsense_api.keys import CachedVerifier, KeyInfo, KeyStore
from flowsense_api.lakedata import LakeData, NotFound, jsonable
from flowsense_api.models import ModelRegistry
from flowsense_api.ratelimit import TokenBuckets
from flowsense_api.worker import WorkerUnavailable, WorkerView

log = logging.getLogger("flowsense_api")
STATIC = Path(__file__).parent / "static"
SYMBOL_RE = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,31}$"
NAME_RE = r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,127}$"
PAGES = ("overview", "live", "backtests", "models")


# ------------------------------------------------------------------------------------------------
# the application's state
# ------------------------------------------------------------------------------------------------


@dataclass
class ApiState:
    settings: Settings
    keys: KeyStore
    verifier: CachedVerifier
    buckets: TokenBuckets
    audit: AuditLog
    lake: LakeData
    worker: WorkerView
    models: ModelRegistry
    hub: EventHub
    started_at: float
    features_store: Any = None


def state_of(request: Request) -> ApiState:
    return request.app.state.api


class ApiError(Exception):
    def __init__(self, status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.message, self.headers = status, kind, message, headers


def _err(status: int, kind: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": kind, "message": message}, status_code=status, headers=headers)


# ------------------------------------------------------------------------------------------------
# authentication, scopes, rate limiting
# ------------------------------------------------------------------------------------------------


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticate(st: ApiState, authorization: str | None) -> KeyInfo:
    token = bearer_token(authorization)
    if token is None:
        raise ApiError(401, "unauthorized", "missing API key: send 'Authorization: Bearer <key>' "
                       "(create one with `flowsense api keys create`)", {"WWW-Authenticate": "Bearer"})
    info = st.verifier.verify(token)
    if info is None:
        raise ApiError(401, "unauthorized", "invalid or revoked API key", {"WWW-Authenticate": "Bearer"})
    wait = st.buckets.take(info.key_id, info.rate_limit)
    if wait > 0:
        raise ApiError(429, "rate_limited", f"rate limit of key {info.key_id} exceeded; retry in {wait:.2f} s",
                       {"Retry-After": str(max(1, round(wait + 0.5)))})
    return info


async def require_read(request: Request) -> KeyInfo:  # async: no thread-pool hop per request
    info = authenticate(state_of(request), request.headers.get("authorization"))
    request.state.key = info
    return info


async def require_admin(request: Request) -> KeyInfo:
    info = await require_read(request)
    if info.scope != "admin":
        raise ApiError(403, "forbidden", f"key {info.key_id} has scope {info.scope!r}; this call needs 'admin'")
    return info


Read = Annotated[KeyInfo, Depends(require_read)]
Admin = Annotated[KeyInfo, Depends(require_admin)]
Limit = Annotated[int, Query(ge=1, le=1000, description="page size")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="rows to skip")]
Symbol = Annotated[str, PathParam(pattern=SYMBOL_RE, description="instrument symbol")]
RunId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9._\-]+(:[A-Za-z0-9._\-]+)*$", max_length=300,
                                 description="backtest id (its report folder, ':' between folders)")]


def page(rows: list[Any], limit: int, offset: int) -> dict[str, Any]:
    items = rows[offset:offset + limit]
    nxt = offset + limit if offset + limit < len(rows) else None
    return {"items": items, "total": len(rows), "limit": limit, "offset": offset, "next_offset": nxt}


# ------------------------------------------------------------------------------------------------
# request/response models (documented in the OpenAPI spec)
# ------------------------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    error: str
    message: str


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int
    next_offset: int | None


class HaltIn(BaseModel):
    reason: str = Field("", max_length=500, description="why (kept in the audit log)")


class PromoteIn(BaseModel):
    version: int = Field(ge=1, le=10_000_000, description="registry version to point the alias at")
    alias: str = Field("champion", pattern=r"^[A-Za-z][A-Za-z0-9_\-]{0,63}$")
    force: bool = Field(False, description="skip the out-of-sample gate (champion only when it beats the champion)")


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "missing or invalid API key"},
    429: {"model": ErrorOut, "description": "rate limit exceeded"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {**ERRORS, 404: {"model": ErrorOut, "description": "not found"}}
ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {**NOT_FOUND, 403: {"model": ErrorOut, "description": "not admin"},
                                                 503: {"model": ErrorOut, "description": "no worker"}}


# ------------------------------------------------------------------------------------------------
# the application
# ------------------------------------------------------------------------------------------------


def create_app(settings: Settings | None = None, *, cors_origins: tuple[str, ...] | None = None,
               worker_ttl_s: float = 0.1, hub_poll_s: float = 0.02) -> FastAPI:
    settings = settings or Settings.from_env()
    keys = KeyStore(settings.api_dir / "keys.db")
    worker = WorkerView(settings, ttl_s=worker_ttl_s)
    st = ApiState(
        settings=settings, keys=keys, verifier=CachedVerifier(keys), buckets=TokenBuckets(settings.api_rate_limit),
        audit=AuditLog(settings.api_dir / "audit.jsonl"), lake=LakeData(settings), worker=worker,
        models=ModelRegistry(settings),
        hub=EventHub(worker, mode=settings.profile, redis_url=getattr(settings, "redis_url", None), poll_s=hub_poll_s),
        started_at=time.time(),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        st.hub.start()
        try:
            yield
        finally:
            await st.hub.stop()

    app = FastAPI(
        title="FlowSense API", version=API_VERSION, lifespan=lifespan,
        description="Read-only views of the FlowSense lake, backtests, models and the live worker; admin calls "
                    "to halt/resume the worker and promote a model. Authenticate with `Authorization: Bearer "
                    "<key>` (keys from `flowsense api keys create`). Live updates over the WebSocket `/ws`.",
        docs_url="/docs", redoc_url=None, openapi_url="/openapi.json",
    )
    app.state.api = st
    origins = settings.api_cors_origins if cors_origins is None else cors_origins
    if origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"], allow_credentials=False)
    _install_errors(app)
    _install_headers(app)
    _routes(app)
    from flowsense_api.ws import install_ws

    install_ws(app)
    _dashboard(app)
    return app


def _install_errors(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return _err(exc.status, exc.kind, exc.message, exc.headers)

    @app.exception_handler(NotFound)
    async def not_found(_: Request, exc: NotFound) -> JSONResponse:
        return _err(404, "not_found", str(exc))

    @app.exception_handler(ValueError)
    async def bad_value(_: Request, exc: ValueError) -> JSONResponse:
        return _err(400, "bad_request", str(exc).splitlines()[0][:500] if str(exc) else "bad request")

    @app.exception_handler(WorkerUnavailable)
    async def no_worker(_: Request, exc: WorkerUnavailable) -> JSONResponse:
        return _err(503, "no_worker", str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        parts = []
        for e in exc.errors()[:5]:
            where = ".".join(str(x) for x in e.get("loc", ()) if x != "body") or "request"
            parts.append(f"{where}: {e.get('msg', 'invalid')}")
        return _err(422, "invalid_request", "; ".join(parts) or "invalid request")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _err(exc.status_code, kind, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def fault(request: Request, exc: Exception) -> JSONResponse:
        log.error("internal error on %s %s: %s", request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return _err(500, "internal", f"internal error ({type(exc).__name__}); see the API server log")


_CSP = (b"default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; "
        b"style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")


class SecurityHeaders:
    """Pure ASGI middleware (no per-request task or body copy, unlike ``@app.middleware``): ``nosniff`` on
    every response; on the dashboard a CSP that allows scripts, styles and sockets from this server only."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        dash = scope["path"].startswith("/dashboard")

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-content-type-options", b"nosniff"))
                if dash:
                    headers += [(b"content-security-policy", _CSP), (b"cache-control", b"no-cache")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _install_headers(app: FastAPI) -> None:
    app.add_middleware(SecurityHeaders)


def _routes(app: FastAPI) -> None:
    v1 = "/api/v1"

    # ---- health and version --------------------------------------------------------------------
    @app.get(f"{v1}/health", tags=["meta"], summary="Liveness (no key needed)")
    async def health(request: Request) -> dict[str, Any]:
        st = state_of(request)
        return {"status": "ok", "version": flowsense.__version__, "api_version": API_VERSION,
                "uptime_s": round(time.time() - st.started_at, 3)}

    @app.get(f"{v1}/version", tags=["meta"], responses=ERRORS)
    async def version(request: Request, key: Read) -> dict[str, Any]:
        st = state_of(request)
        return {"flowsense": flowsense.__version__, "api_version": API_VERSION, "python": platform.python_version(),
                "profile": st.settings.profile, "key": {"id": key.key_id, "scope": key.scope},
                "worker": st.worker.available, "events": st.hub.stats()}

    # ---- instruments, partitions, validation ----------------------------------------------------
    @app.get(f"{v1}/instruments", tags=["data"], response_model=Page, responses=ERRORS)
    def instruments(request: Request, _: Read, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        return page(state_of(request).lake.instruments(), limit, offset)

    @app.get(f"{v1}/instruments/{{symbol}}", tags=["data"], responses=NOT_FOUND)
    def instrument(request: Request, _: Read, symbol: Symbol) -> dict[str, Any]:
        return state_of(request).lake.instrument(symbol)

    @app.get(f"{v1}/partitions", tags=["data"], response_model=Page, responses=ERRORS)
    def partitions(request: Request, _: Read, limit: Limit = 100, offset: Offset = 0,
                   symbol: Annotated[str | None, Query(pattern=SYMBOL_RE)] = None,
                   ok: Annotated[bool | None, Query(description="only partitions that passed (true) or failed")] = None,
                   ) -> dict[str, Any]:
        rows = state_of(request).lake.partitions()
        if symbol is not None:
            rows = [r for r in rows if r["symbol"] == symbol]
        if ok is not None:
            rows = [r for r in rows if bool(r["ok"]) == ok]
        return page(rows, limit, offset)

    @app.get(f"{v1}/partitions/{{symbol}}/{{date}}/validation", tags=["data"], responses=NOT_FOUND)
    def validation(request: Request, _: Read, symbol: Symbol,
                   date: Annotated[str, PathParam(pattern=r"^\d{4}-\d{2}-\d{2}$")]) -> dict[str, Any]:
        return state_of(request).lake.validation(symbol, date)

    # ---- features (Feast online store) -------------------------------------------------------------
    @app.get(f"{v1}/features/{{symbol}}", tags=["data"], responses=NOT_FOUND)
    def features(request: Request, _: Read, symbol: Symbol) -> dict[str, Any]:
        return _online_features(state_of(request), symbol)

    # ---- live book and trades ----------------------------------------------------------------------
    @app.get(f"{v1}/book/{{symbol}}", tags=["live"], responses=NOT_FOUND)
    async def book(request: Request, _: Read, symbol: Symbol,
                   levels: Annotated[int, Query(ge=1, le=50)] = 10) -> dict[str, Any]:
        st = state_of(request)
        snap = st.hub.books.get(symbol)
        if snap is not None:
            return as_json(f"book:{symbol}:{levels}", snap, lambda s: {
                "symbol": symbol, "source": "worker", "ts": s["ts"], "seq": s.get("seq"), "cursor": s["cursor"],
                "bids": s["bids"][:levels], "asks": s["asks"][:levels]})
        return await run_in_threadpool(st.lake.lake_book, symbol, levels)

    @app.get(f"{v1}/trades/{{symbol}}", tags=["live"], responses=NOT_FOUND)
    async def trades(request: Request, _: Read, symbol: Symbol, limit: Limit = 50) -> dict[str, Any]:
        st = state_of(request)
        q = st.hub.trades.get(symbol)
        if q:
            return {"symbol": symbol, "source": "worker", "items": list(q)[:limit]}
        return await run_in_threadpool(st.lake.lake_trades, symbol, limit)

    # ---- worker state ---------------------------------------------------------------------------
    # hot paths (a dashboard or a load generator polls these): cached reads, JSON bytes made once per value
    encoded: dict[str, tuple[Any, bytes]] = {}

    def as_json(name: str, val: Any, wrap: Any = None) -> Response:
        hit = encoded.get(name)
        if hit is None or hit[0] is not val:
            hit = (val, orjson.dumps(wrap(val) if wrap else val, option=orjson.OPT_NON_STR_KEYS))
            encoded[name] = hit
        return Response(hit[1], media_type="application/json")

    inflight: dict[str, asyncio.Future[Any]] = {}

    async def worker_read(request: Request, name: str, fn: Any, *args: Any, wrap: Any = None) -> Response:
        """The cached value; when it expired, one refresh runs in the thread pool (single flight) and the
        requests meanwhile get the previous value, so a burst never piles store reads up."""
        w = state_of(request).worker
        val = w.peek(name)
        if val is None:
            fut = inflight.get(name)
            if fut is None:
                fut = asyncio.ensure_future(run_in_threadpool(fn, *args))
                inflight[name] = fut

                def done(f: asyncio.Future[Any], name: str = name) -> None:
                    inflight.pop(name, None)
                    if not f.cancelled():
                        f.exception()  # retrieved here; the waiters re-raise it
                fut.add_done_callback(done)
            stale = w.last(name)
            val = stale if stale is not None and not fut.done() else await asyncio.shield(fut)
        return as_json(name, val, wrap)

    def items(v: Any) -> dict[str, Any]:
        return {"items": v}

    @app.get(f"{v1}/state", tags=["worker"], responses=ADMIN_ERRORS,
             summary="Trading state, positions, open orders, PnL, drawdown and model version in effect")
    async def state(request: Request, _: Read) -> Any:
        w = state_of(request).worker
        return await worker_read(request, "summary", w.summary)

    @app.get(f"{v1}/positions", tags=["worker"], responses=ADMIN_ERRORS)
    async def positions(request: Request, _: Read) -> Any:
        w = state_of(request).worker
        return await worker_read(request, "positions", w.positions, wrap=items)

    @app.get(f"{v1}/orders", tags=["worker"], responses=ADMIN_ERRORS, summary="Open orders")
    async def orders(request: Request, _: Read) -> Any:
        w = state_of(request).worker
        return await worker_read(request, "open_orders", w.open_orders, wrap=items)

    @app.get(f"{v1}/fills", tags=["worker"], responses=ADMIN_ERRORS, summary="Fills, newest first")
    async def fills(request: Request, _: Read, limit: Limit = 100, offset: Offset = 0) -> Any:
        w = state_of(request).worker

        def wrap(v: Any) -> dict[str, Any]:
            rows = v if isinstance(v, list) else []
            return {"items": rows, "limit": limit, "offset": offset,
                    "next_offset": offset + limit if len(rows) == limit else None}
        return await worker_read(request, f"fills:{limit}:{offset}", w.fills, limit, offset, wrap=wrap)

    @app.get(f"{v1}/signals/{{symbol}}", tags=["worker"], responses=ADMIN_ERRORS,
             summary="The worker's decisions, newest first: prediction, intended order, risk decision, latency")
    async def signals(request: Request, _: Read, symbol: Symbol, limit: Limit = 100, offset: Offset = 0) -> Any:
        w = state_of(request).worker

        def wrap(v: Any) -> dict[str, Any]:
            rows = v if isinstance(v, list) else []
            return {"symbol": symbol, "items": rows, "limit": limit, "offset": offset,
                    "next_offset": offset + limit if len(rows) == limit else None}
        return await worker_read(request, f"signals:{symbol}:{limit}:{offset}", w.signals, symbol, limit, offset,
                                 wrap=wrap)

    @app.get(f"{v1}/pnl", tags=["worker"], responses=ADMIN_ERRORS, summary="PnL and drawdown")
    async def pnl(request: Request, _: Read) -> Any:
        w = state_of(request).worker
        return await worker_read(request, "pnl", w.pnl)

    @app.get(f"{v1}/equity", tags=["worker"], responses=ADMIN_ERRORS, summary="Equity curve with drawdown")
    async def equity(request: Request, _: Read) -> Any:
        w = state_of(request).worker
        return await worker_read(request, "equity", w.equity_curve, wrap=items)

    # ---- backtests and walk-forward ---------------------------------------------------------------
    @app.get(f"{v1}/backtests", tags=["research"], response_model=Page, responses=ERRORS)
    def backtests(request: Request, _: Read, limit: Limit = 100, offset: Offset = 0,
                  symbol: Annotated[str | None, Query(pattern=SYMBOL_RE)] = None,
                  strategy: Annotated[str | None, Query(pattern=NAME_RE)] = None) -> dict[str, Any]:
        rows = state_of(request).lake.backtests()
        if symbol is not None:
            rows = [r for r in rows if r["symbol"] == symbol]
        if strategy is not None:
            rows = [r for r in rows if r["strategy"] == strategy]
        return page(rows, limit, offset)

    @app.get(f"{v1}/backtests/{{run_id}}", tags=["research"], responses=NOT_FOUND)
    def backtest(request: Request, _: Read, run_id: RunId) -> dict[str, Any]:
        return state_of(request).lake.backtest(run_id)

    @app.get(f"{v1}/backtests/{{run_id}}/equity", tags=["research"], responses=NOT_FOUND)
    def backtest_equity(request: Request, _: Read, run_id: RunId,
                        points: Annotated[int, Query(ge=10, le=20_000)] = 2000) -> dict[str, Any]:
        return state_of(request).lake.backtest_equity(run_id, points)

    @app.get(f"{v1}/backtests/{{run_id}}/files/{{name}}", tags=["research"], responses=NOT_FOUND,
             response_class=FileResponse)
    def backtest_file(request: Request, _: Read, run_id: RunId,
                      name: Annotated[str, PathParam(pattern=r"^[a-z_]+\.(html|pdf|json|parquet)$")]) -> FileResponse:
        path, media = state_of(request).lake.backtest_file(run_id, name)
        return FileResponse(path, media_type=media)

    @app.get(f"{v1}/walkforward", tags=["research"], response_model=Page, responses=ERRORS,
             summary="Walk-forward out-of-sample summary per symbol x day x strategy (baselines included)")
    def walkforward(request: Request, _: Read, limit: Limit = 100, offset: Offset = 0,
                    symbol: Annotated[str | None, Query(pattern=SYMBOL_RE)] = None,
                    costs: Annotated[str | None, Query(pattern=r"^(gross|net)$")] = None,
                    folds: Annotated[bool, Query(description="per-fold rows instead of the summary")] = False,
                    ) -> dict[str, Any]:
        rows = state_of(request).lake.walkforward("walkforward_folds" if folds else "walkforward_summary")
        if symbol is not None:
            rows = [r for r in rows if r.get("symbol") == symbol]
        if costs is not None:
            rows = [r for r in rows if r.get("costs") == costs]
        return page(rows, limit, offset)

    # ---- models ----------------------------------------------------------------------------------
    @app.get(f"{v1}/models", tags=["models"], response_model=Page, responses=ERRORS)
    def models(request: Request, _: Read, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        return page(state_of(request).models.models(), limit, offset)

    @app.get(f"{v1}/models/{{name}}", tags=["models"], responses=NOT_FOUND)
    def model(request: Request, _: Read, name: Annotated[str, PathParam(pattern=NAME_RE)]) -> dict[str, Any]:
        return state_of(request).models.model(name)

    @app.get(f"{v1}/models/{{name}}/evaluation", tags=["models"], responses=NOT_FOUND,
             summary="Evaluation table of a version (default: champion) next to its baselines")
    def evaluation(request: Request, _: Read, name: Annotated[str, PathParam(pattern=NAME_RE)],
                   version: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_\-]{1,64}$")] = None) -> dict[str, Any]:
        return state_of(request).models.evaluation(name, version)

    # ---- admin -----------------------------------------------------------------------------------
    def audited(request: Request, key: KeyInfo, action: str, params: dict[str, Any], fn: Any) -> Any:
        st = state_of(request)
        client = request.client.host if request.client else None
        try:
            out = fn()
        except (NotFound, WorkerUnavailable, ValueError) as exc:
            status = 404 if isinstance(exc, NotFound) else 503 if isinstance(exc, WorkerUnavailable) else 400
            st.audit.record(key_id=key.key_id, client=client, action=action, params=params, status=status,
                            result=str(exc)[:300])
            raise
        except Exception as exc:
            st.audit.record(key_id=key.key_id, client=client, action=action, params=params, status=500,
                            result=type(exc).__name__)
            raise
        st.audit.record(key_id=key.key_id, client=client, action=action, params=params, status=200,
                        result=_short(out))
        return out

    @app.post(f"{v1}/admin/halt", tags=["admin"], responses=ADMIN_ERRORS, summary="Halt the worker's trading")
    def halt(request: Request, key: Admin, body: HaltIn) -> dict[str, Any]:
        w = state_of(request).worker
        out = audited(request, key, "halt", body.model_dump(),
                      lambda: w.control("halt", body.reason, f"api:{key.key_id}"))
        return {"requested": "halt", "result": out}

    @app.post(f"{v1}/admin/resume", tags=["admin"], responses=ADMIN_ERRORS, summary="Resume the worker's trading")
    def resume(request: Request, key: Admin, body: HaltIn) -> dict[str, Any]:
        w = state_of(request).worker
        out = audited(request, key, "resume", body.model_dump(),
                      lambda: w.control("resume", body.reason, f"api:{key.key_id}"))
        return {"requested": "resume", "result": out}

    @app.post(f"{v1}/admin/models/{{name}}/promote", tags=["admin"], responses=ADMIN_ERRORS,
              summary="Promote a registry version: gated by out-of-sample comparison unless force")
    def promote(request: Request, key: Admin, name: Annotated[str, PathParam(pattern=NAME_RE)],
                body: PromoteIn) -> dict[str, Any]:
        m = state_of(request).models
        return audited(request, key, "promote", {"name": name, **body.model_dump()},
                       lambda: m.promote(name, str(body.version), body.alias, body.force))

    @app.get(f"{v1}/admin/audit", tags=["admin"], responses=ADMIN_ERRORS, summary="Audit log, newest first")
    def audit(request: Request, _: Admin, limit: Limit = 100, offset: Offset = 0) -> dict[str, Any]:
        return {"items": state_of(request).audit.tail(limit, offset), "limit": limit, "offset": offset}


def _short(out: Any) -> str:
    s = str(jsonable(out))
    return s if len(s) <= 300 else s[:297] + "..."


def _online_features(st: ApiState, symbol: str) -> dict[str, Any]:
    lake_symbols = st.lake.symbols()
    if symbol not in lake_symbols:
        raise NotFound(f"unknown symbol {symbol!r}; ingested symbols: {', '.join(lake_symbols) or 'none'}")
    from flowsense.serving.store import feature_store, online_features

    if st.features_store is None:
        st.features_store = feature_store(st.settings)
    try:
        df = online_features(st.settings, [symbol], store=st.features_store)
    except Exception as exc:
        raise NotFound(f"no online features for {symbol}: the Feast online store is not filled "
                       f"(materialize the feast_online_store asset) [{type(exc).__name__}]") from None
    row = {k: v for k, v in (df.row(0, named=True) if df.height else {}).items() if k != "symbol"}
    values = {k: v for k, v in row.items() if v is not None}
    if not values:
        raise NotFound(f"no online features for {symbol}: the Feast online store has no row for it "
                       f"(materialize the feast_online_store asset)")
    views: dict[str, dict[str, Any]] = {}
    for k, v in row.items():
        view, sep, feat = k.partition("__")
        views.setdefault(view if sep else "features", {})[feat if sep else k] = v
    return jsonable({"symbol": symbol, "source": "feast_online_store", "views": views, "count": len(values)})


def _dashboard(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    @app.get("/dashboard", include_in_schema=False)
    async def dash_root() -> RedirectResponse:
        return RedirectResponse("/dashboard/")

    app.mount("/dashboard", StaticFiles(directory=STATIC, html=True), name="dashboard")

