"""The emulator's HTTP surface: io.net's five secrets operations, auth, validation and faults."""

from __future__ import annotations

import asyncio
import functools
import hmac
import json
import math
import random
import sys
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.errors import EmulatorHttpError
from reconciler.emulator.masking import mask
from reconciler.emulator.store import Store, StoredSecret, wall_clock_us

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/"
SECRETS_PATH = "/api/v1/secrets/"
USER_SCOPE_KEY = "reconciler.emulator.user_id"
# Accounts are derived from keys, so one key always maps to the same user_id across restarts.
ACCOUNT_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://api.intelligence.io.solutions/reconciler-emulator"
)
AUTH_HEADERS = (b"authorization", b"x-api-key", b"token")
DEFAULT_PAGE_SIZE = 50
DEFAULT_LIMIT = 10
REQUEST_LOG_LIMIT = 100_000
LOGGED_QUERY_KEYS = ("page", "page_size", "limit", "offset", "skip", "cursor")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

Name = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=1024)]
Value = Annotated[str, StringConstraints(strict=True, min_length=4, max_length=1024)]


class SecretCreate(BaseModel):
    # Strict: io.net's service rejects a number where a string is expected, so must we.
    model_config = ConfigDict(strict=True)

    secret_name: Name
    secret_value: Value
    tool_name: Name | None = None
    tool_arg: Name | None = None
    is_default_for_tool: bool | None = None


class SecretUpdate(BaseModel):
    model_config = ConfigDict(strict=True)

    secret_name: Name | None = None
    secret_value: Value | None = None
    tool_name: Name | None = None
    tool_arg: Name | None = None
    is_default_for_tool: bool | None = None


@functools.lru_cache(maxsize=4096)
def account_id(key: str) -> str:
    """The user_id of the account a key belongs to."""
    return str(uuid.uuid5(ACCOUNT_NAMESPACE, key))


def timestamp(us: int) -> str:
    """ISO 8601 in UTC with microseconds, e.g. 2025-01-02T03:04:05.000006+00:00."""
    return (_EPOCH + timedelta(microseconds=us)).isoformat(timespec="microseconds")


def authenticate(headers: list[tuple[bytes, bytes]], api_keys: tuple[str, ...]) -> tuple[str | None, str]:
    """(user_id, "") for valid credentials, else (None, the 401 detail). The detail never names the key."""
    found = [(name, value) for name, value in headers if name in AUTH_HEADERS]
    if not found:
        return None, "Not authenticated"
    if len(found) > 1:
        return None, "Send exactly one of the Authorization, x-api-key and token headers"
    name, raw = found[0]
    key = raw.decode("latin-1").strip()
    if name == b"authorization":
        scheme, _, key = key.partition(" ")
        if scheme.lower() != "bearer":
            return None, "Authorization must be 'Bearer <api key>'"
        key = key.strip()
    if not key:
        return None, "Not authenticated"
    if api_keys and not any(hmac.compare_digest(key.encode(), known.encode()) for known in api_keys):
        return None, "Invalid API key"
    return account_id(key), ""


@dataclass
class _Bucket:
    tokens: float
    at: float


@dataclass
class EmulatorState:
    """Everything one emulator instance holds; the app and its middleware share it."""

    config: EmulatorConfig
    store: Store
    rng: random.Random = field(init=False)
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    request_log: deque[dict[str, object]] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_LIMIT))
    monotonic: Callable[[], float] = time.monotonic
    # Which of ECHO_STATUSES the next echo fault answers.
    echo_turn: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.config.seed)

    def reset(self) -> None:
        """Forget every secret, the request log and the rate-limit history; restart the fault sequence."""
        self.store.reset()
        self.request_log.clear()
        self.buckets.clear()
        self.rng = random.Random(self.config.seed)
        self.echo_turn = 0

    def retry_after(self, user_id: str) -> int | None:
        """None when the account may make a request now (and counts it), else seconds to wait."""
        rate = self.config.rate_limit
        if rate is None:
            return None
        now = self.monotonic()
        capacity = max(1.0, rate)
        bucket = self.buckets.get(user_id)
        if bucket is None:
            bucket = self.buckets[user_id] = _Bucket(tokens=capacity, at=now)
        bucket.tokens = min(capacity, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return None
        return max(1, math.ceil((1.0 - bucket.tokens) / rate))

    def secret_info(self, secret: StoredSecret) -> dict[str, object]:
        return {
            "secret_id": secret.secret_id,
            "user_id": secret.user_id,
            "secret_name": secret.secret_name,
            "display": mask(secret.secret_value, self.config.display_head, self.config.display_tail),
            "tool_name": secret.tool_name,
            "tool_arg": secret.tool_arg,
            "is_default_for_tool": secret.is_default_for_tool,
            "created_at": timestamp(secret.created_us),
            "updated_at": timestamp(secret.updated_us),
        }


async def _send_response(send: Send, response: Response, scope: Scope, receive: Receive) -> int:
    await response(scope, receive, send)
    return response.status_code


def _body_keys(body: bytes) -> list[str]:
    if not body:
        return []
    try:
        parsed = json.loads(body)
    except ValueError:
        return []
    return sorted(str(key) for key in parsed) if isinstance(parsed, dict) else []


_GATEWAY_HTML = (
    b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
)


def _fault_response(status: int) -> Response:
    # A gateway in front of a real service answers HTML, not JSON; clients must survive both.
    if status == 502:
        return Response(_GATEWAY_HTML, status_code=502, media_type="text/html")
    detail = "Internal Server Error" if status == 500 else "Service Unavailable"
    return JSONResponse({"detail": detail}, status_code=status)


# The statuses an echo fault answers, in turn; 200 carries the key in its Content-Type instead.
ECHO_STATUSES = (400, 401, 403, 404, 409, 422, 500, 200)


def _echo_response(turn: int, credential: str, displays: list[str]) -> Response:
    """A careless server's error: it repeats the caller's credential and the account's displays."""
    status = ECHO_STATUSES[turn % len(ECHO_STATUSES)]
    shown = ", ".join(displays) or "(no secrets)"
    if status == 200:
        key = credential.rsplit(maxsplit=1)[-1]
        return Response(b"not json", status_code=200, media_type=f"application/x-{key}")
    if status == 422:
        detail: object = [
            {"loc": ["body", shown], "msg": f"rejected for {credential}", "type": "value_error"}
        ]
    else:
        detail = f"refused ({credential}); this account holds {shown}"
    return JSONResponse({"detail": detail}, status_code=status)


def _credential(headers: list[tuple[bytes, bytes]]) -> str:
    """The credential header as the caller sent it, e.g. "Authorization: Bearer KEY"."""
    for name, value in headers:
        if name in AUTH_HEADERS:
            return f"{name.decode('latin-1')}: {value.decode('latin-1')}"
    return ""


class EmulatorMiddleware:
    """Auth, latency, rate limits, injected faults and the request log, around every /api/ request."""

    def __init__(self, app: ASGIApp, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        state = self.state
        config = state.config
        started = time.perf_counter()
        body = await _read_body(receive)
        replay = _replay(body, receive)
        if config.latency_ms:
            await asyncio.sleep(config.latency_ms / 1000)

        fault: str | None = None
        user_id, problem = authenticate(scope["headers"], config.api_keys)
        if user_id is None:
            response: Response = JSONResponse(
                {"detail": problem}, status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
            status = await _send_response(send, response, scope, replay)
        elif (wait := state.retry_after(user_id)) is not None:
            fault = "rate_limit"
            response = JSONResponse(
                {"detail": "Rate limit exceeded"}, status_code=429, headers={"Retry-After": str(wait)}
            )
            status = await _send_response(send, response, scope, replay)
        else:
            # Always three draws per request, so one seed gives one fault sequence whatever the rates.
            fail_draw, code_draw, after_draw = state.rng.random(), state.rng.randrange(3), state.rng.random()
            if fail_draw < config.fail_rate:
                fault = "fail"
                response = _fault_response((500, 502, 503)[code_draw])
                status = await _send_response(send, response, scope, replay)
            elif fail_draw < config.fail_rate + config.fail_echo_rate:
                # The same draw as --fail-rate: existing seeds meet the same faults with this one off.
                fault = "echo"
                displays = [state.secret_info(s)["display"] for s in state.store.all(user_id)]
                turn, state.echo_turn = state.echo_turn, state.echo_turn + 1
                response = _echo_response(turn, _credential(scope["headers"]), [str(d) for d in displays])
                status = await _send_response(send, response, scope, replay)
            else:
                scope[USER_SCOPE_KEY] = user_id
                fail_after = after_draw < config.fail_after_rate
                status, swallowed = await self._call_app(scope, replay, send, fail_after)
                if swallowed:
                    fault = "fail_after"
                    status = await _send_response(send, _fault_response(500), scope, replay)

        self._record(scope, body, status=status, user_id=user_id, fault=fault, started=started)

    async def _call_app(
        self, scope: Scope, receive: Receive, send: Send, fail_after: bool
    ) -> tuple[int, bool]:
        status = 0
        swallowed = False

        async def watch(message: Message) -> None:
            nonlocal status, swallowed
            if message["type"] == "http.response.start":
                status = int(message["status"])
                # The ambiguous failure: the operation happened, the client is told it did not.
                swallowed = fail_after and 200 <= status < 300
            if not swallowed:
                await send(message)

        await self.app(scope, receive, watch)
        return status, swallowed

    def _record(
        self,
        scope: Scope,
        body: bytes,
        *,
        status: int,
        user_id: str | None,
        fault: str | None,
        started: float,
    ) -> None:
        method = str(scope["method"])
        path = str(scope["path"])
        if self.state.config.inspect:
            query = {
                key: value
                for key, value in parse_qsl(scope.get("query_string", b"").decode("latin-1"))
                if key in LOGGED_QUERY_KEYS
            }
            self.state.request_log.append(
                {
                    "method": method,
                    "path": path,
                    "query": query,
                    "body_keys": _body_keys(body),
                    "status": status,
                    "user_id": user_id,
                    "fault": fault,
                }
            )
        if self.state.config.log_requests:
            elapsed_ms = (time.perf_counter() - started) * 1000
            account = user_id[:8] if user_id else "-"
            suffix = f" fault={fault}" if fault else ""
            sys.stderr.write(f"{method} {path} {status} account={account} {elapsed_ms:.1f}ms{suffix}\n")


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _user(request: Request) -> str:
    user_id: str = request.scope[USER_SCOPE_KEY]
    return user_id


def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    # pydantic adds `input` and `ctx` to each error; they would echo the submitted secret value.
    assert isinstance(exc, RequestValidationError)
    detail = [
        {
            "loc": list(error.get("loc", ())),
            "msg": str(error.get("msg", "")),
            "type": str(error.get("type", "")),
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def _refused(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EmulatorHttpError)
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


def create_app(config: EmulatorConfig, *, clock: Callable[[], int] = wall_clock_us) -> FastAPI:
    """The emulator as an ASGI app; its store opens here, so it also works without lifespan events."""
    offset_us = round(config.clock_offset_s * 1_000_000)
    store = Store(
        config.db_path,
        quota_bytes=config.quota_bytes,
        unique_names=config.duplicate_names == "reject",
        clock=(lambda: clock() + offset_us) if offset_us else clock,
    )
    state = EmulatorState(config=config, store=store)
    app = FastAPI(
        title="IO Intelligence secrets (reconciler emulator)",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.emulator = state
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(EmulatorHttpError, _refused)
    app.add_middleware(EmulatorMiddleware, state=state)

    @app.get(SECRETS_PATH)
    async def list_secrets(
        request: Request,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int | None, Query(ge=1)] = None,
        limit: Annotated[int | None, Query(ge=1)] = None,
        offset: Annotated[int, Query(ge=0)] = 0,
        cursor: Annotated[str | None, Query(max_length=64)] = None,
    ) -> Response:
        user_id = _user(request)
        style = config.list_style
        if config.cap is not None or style in ("envelope", "array"):
            # Every paging parameter ignored: the first `cap` secrets, or all of them.
            found = store.page(user_id, 0, config.cap) if config.cap is not None else store.all(user_id)
            data = [state.secret_info(s) for s in found]
            return JSONResponse(data if style == "array" else {"data": data})
        if style == "paged":
            return _paged(state, user_id, page, page_size, limit)
        size = min(limit or config.default_limit or DEFAULT_LIMIT, config.max_limit)
        if style == "offset":
            found = store.page(user_id, offset, size)
            return JSONResponse({"data": [state.secret_info(s) for s in found]})
        if cursor is not None and not (cursor.startswith("c") and cursor[1:].isdigit()):
            return _query_error("cursor", "Invalid cursor", "value_error")
        # One more than asked tells whether a next cursor is due; keyed by creation order, it does
        # not shift when secrets are created or deleted meanwhile.
        found = store.after(user_id, int(cursor[1:]) if cursor else 0, size + 1)
        more = len(found) > size
        data = [state.secret_info(s) for s in found[:size]]
        return JSONResponse({"data": data, "next_cursor": f"c{found[size - 1].seq}" if more else None})

    @app.post(SECRETS_PATH)
    async def create_secret(request: Request, body: SecretCreate) -> Response:
        secret = store.create(
            _user(request),
            secret_name=body.secret_name,
            secret_value=body.secret_value,
            tool_name=body.tool_name,
            tool_arg=body.tool_arg,
            is_default_for_tool=bool(body.is_default_for_tool),
        )
        return JSONResponse(state.secret_info(secret))

    @app.get(SECRETS_PATH + "{secret_id}")
    async def get_secret(request: Request, secret_id: uuid.UUID) -> Response:
        return JSONResponse(state.secret_info(store.get(_user(request), str(secret_id))))

    @app.patch(SECRETS_PATH + "{secret_id}")
    async def update_secret(
        request: Request, secret_id: uuid.UUID, body: SecretUpdate | None = None
    ) -> Response:
        changes: dict[str, str | bool | None] = {}
        if body is not None:
            for name in sorted(body.model_fields_set):
                value = getattr(body, name)
                if value is not None:
                    changes[name] = value
                elif name in ("secret_name", "secret_value"):
                    # A secret always has a name and a value: null cannot clear them, in either mode.
                    continue
                elif config.patch_null == "clear":
                    changes[name] = False if name == "is_default_for_tool" else None
        store.update(_user(request), str(secret_id), changes)
        return JSONResponse({"message": "Secret updated successfully"})

    @app.delete(SECRETS_PATH + "{secret_id}")
    async def delete_secret(request: Request, secret_id: uuid.UUID) -> Response:
        store.delete(_user(request), str(secret_id))
        return JSONResponse({"message": "Secret deleted successfully"})

    if config.inspect:

        @app.get("/_emulator/requests")
        async def inspect_requests() -> Response:
            return JSONResponse(list(state.request_log))

        @app.post("/_emulator/reset")
        async def inspect_reset() -> Response:
            state.reset()
            return JSONResponse({"message": "Emulator reset"})

    return app


def _query_error(name: str, msg: str, kind: str) -> JSONResponse:
    """A 422 in FastAPI's shape, for checks that depend on the configuration."""
    return JSONResponse({"detail": [{"loc": ["query", name], "msg": msg, "type": kind}]}, status_code=422)


def _paged(
    state: EmulatorState, user_id: str, page: int, page_size: int | None, limit: int | None
) -> Response:
    """`{data, pagination}`: `limit`, when given, is the page size instead of `page_size`."""
    config = state.config
    for name, asked in (("page_size", page_size), ("limit", limit)):
        if asked is not None and asked > config.max_limit:
            message = f"Input should be less than or equal to {config.max_limit}"
            return _query_error(name, message, "less_than_equal")
    size = limit or page_size or config.default_limit or DEFAULT_PAGE_SIZE
    total = state.store.count(user_id)
    offset = (page - 1) * size
    secrets = state.store.page(user_id, offset, size) if offset < total else []
    total_pages = math.ceil(total / size)
    pagination = {
        "total": total,
        "page": page,
        "page_size": size,
        "total_pages": total_pages,
        "has_next": page < total_pages,
        "has_previous": page > 1,
    }
    return JSONResponse({"data": [state.secret_info(s) for s in secrets], "pagination": pagination})


def state_of(app: FastAPI) -> EmulatorState:
    """The state behind an app made by create_app (for the command's shutdown and for tests)."""
    state: EmulatorState = app.state.emulator
    return state
