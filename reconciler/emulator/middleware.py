"""Around every /api/ request: auth, latency, rate limits, faults and the request log; the shared state."""

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
from typing import Any
from urllib.parse import parse_qsl

from fastapi.responses import JSONResponse, Response

from reconciler.emulator.config import EmulatorConfig
from reconciler.emulator.masking import mask
from reconciler.emulator.store import Store, StoredSecret

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

API_PREFIX = "/api/"
USER_SCOPE_KEY = "reconciler.emulator.user_id"
# Accounts are derived from keys, so one key always maps to the same user_id across restarts.
ACCOUNT_NAMESPACE = uuid.uuid5(
    uuid.NAMESPACE_URL, "https://api.intelligence.io.solutions/reconciler-emulator"
)
AUTH_HEADERS = (b"authorization", b"x-api-key", b"token")
REQUEST_LOG_LIMIT = 100_000
LOGGED_QUERY_KEYS = ("page", "page_size", "limit", "offset", "skip", "cursor")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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
