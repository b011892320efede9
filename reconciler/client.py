"""The io.net secrets API client: auth, paginated listing, CRUD, retries, and error mapping."""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import httpx

from reconciler.errors import (
    ApiError,
    AuthError,
    ConflictError,
    NotFoundError,
    QuotaError,
    RateLimitedError,
    ServerError,
    TransportError,
    UsageError,
    ValidationApiError,
)
from reconciler.models import PatchValue, RemoteSecret, SecretValue

log = logging.getLogger("reconciler.client")

DEFAULT_API_URL = "https://api.intelligence.io.solutions"
SECRETS_PATH = "/api/v1/secrets/"
PAGE_SIZE = 100
# A server that keeps answering has_next with new ids forever is cut off here rather than hanging.
MAX_PAGES = 1_000
MAX_BODY_BYTES = 64 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
AUTH_HEADERS = ("bearer", "x-api-key")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class ClientConfig:
    """Everything the client needs, resolved by settings; `api_key` is never printed."""

    api_url: str = DEFAULT_API_URL
    api_key: str = ""
    auth_header: str = "bearer"
    timeout: float = 30.0
    max_retries: int = 4
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    concurrency: int = 4
    # Where `--api-url local` keeps its SQLite file.
    local_db: Path | None = None

    def __repr__(self) -> str:
        return f"ClientConfig(api_url={self.api_url!r}, auth_header={self.auth_header!r})"


def check_api_url(url: str) -> None:
    """Plain http is refused except on loopback: an API key must not cross a network in clear text."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--api-url {url!r} is not an http(s) URL (or 'local' for the embedded emulator)")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(
            f"--api-url {url!r} uses plain http to a non-loopback host; use https "
            "(plain http is accepted only for 127.0.0.1, ::1 and localhost)"
        )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _redact(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "(sensitive)")
    return text


def _body_json(body: Mapping[str, PatchValue]) -> dict[str, Any]:
    return {k: (v.reveal() if isinstance(v, SecretValue) else v) for k, v in body.items()}


def _sent_secrets(body: Mapping[str, PatchValue] | None) -> tuple[str, ...]:
    if not body:
        return ()
    return tuple(v.reveal() for v in body.values() if isinstance(v, SecretValue))


def parse_secret(item: object, where: str) -> RemoteSecret:
    """A SecretInfo object, checked field by field: a malformed answer is an error, not a guess."""
    if not isinstance(item, dict):
        raise ServerError(f"malformed answer from {where}: a secret is {type(item).__name__}, not an object")

    def text(name: str, *, optional: bool = False) -> str | None:
        value = item.get(name)
        if value is None and optional:
            return None
        if not isinstance(value, str):
            kind = "missing" if name not in item else f"a {type(value).__name__}, not a string"
            raise ServerError(f"malformed answer from {where}: field {name!r} is {kind}")
        return value

    default = item.get("is_default_for_tool", False)
    if default is None:
        default = False
    if not isinstance(default, bool):
        raise ServerError(f"malformed answer from {where}: field 'is_default_for_tool' is not a boolean")
    secret_id = text("secret_id")
    name = text("secret_name")
    assert secret_id is not None and name is not None
    return RemoteSecret(
        secret_id=secret_id,
        secret_name=name,
        tool_name=text("tool_name", optional=True),
        tool_arg=text("tool_arg", optional=True),
        is_default_for_tool=default,
        created_at=text("created_at", optional=True) or "",
        updated_at=text("updated_at", optional=True) or "",
        user_id=text("user_id", optional=True) or "",
        display=text("display", optional=True),
    )


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _detail(response: httpx.Response, secrets: tuple[str, ...]) -> str:
    """The server's explanation, shortened, with anything we sent as a value taken out."""
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, str):
        return _redact(detail[:300], secrets)
    if isinstance(detail, list):
        parts = []
        for err in detail[:5]:
            if not isinstance(err, dict):
                continue
            loc = err.get("loc")
            field = ".".join(str(p) for p in loc[1:]) if isinstance(loc, list) and len(loc) > 1 else ""
            msg = str(err.get("msg", ""))[:200]
            parts.append(f"{field}: {msg}" if field else msg)
        return _redact("; ".join(parts), secrets)
    return ""


class Client:
    """An async client for one account. Use as `async with Client(config) as client:`."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._limit = asyncio.Semaphore(max(1, config.concurrency))
        self.requests_sent = 0
        base_url = config.api_url
        if base_url == "local":
            transport, base_url = _local_transport(config.local_db)
            key = config.api_key or "local"
        else:
            check_api_url(base_url)
            key = config.api_key
        if not key:
            raise AuthError(
                "no io.net API key: set IOINTELLIGENCE_API_KEY (or IO_API_KEY), "
                "or use --api-url local for the embedded emulator"
            )
        if config.auth_header not in AUTH_HEADERS:
            raise UsageError(f"--auth-header must be one of {', '.join(AUTH_HEADERS)}")
        headers = {"authorization": f"Bearer {key}"} if config.auth_header == "bearer" else {"x-api-key": key}
        headers["user-agent"] = "reconciler"
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=config.timeout,
            transport=transport,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max(1, config.concurrency) + 1),
        )

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- operations -------------------------------------------------------------------------------

    async def list_secrets(self) -> tuple[RemoteSecret, ...]:
        """Every secret of the account, following pages while the server says there are more."""
        seen: dict[str, RemoteSecret] = {}
        page = 1
        while page <= MAX_PAGES:
            params = {"page": page, "page_size": PAGE_SIZE} if page > 1 else {"page_size": PAGE_SIZE}
            body = await self._json("GET", SECRETS_PATH, params=params, what="listing secrets")
            items, has_next = _page_items(body)
            new = 0
            for item in items:
                secret = parse_secret(item, "GET /api/v1/secrets/")
                if secret.secret_id not in seen:
                    seen[secret.secret_id] = secret
                    new += 1
            if not has_next or new == 0:
                break
            page += 1
        else:
            raise ServerError(f"listing secrets did not end after {MAX_PAGES} pages; the server keeps paging")
        return tuple(seen.values())

    async def get(self, secret_id: str) -> RemoteSecret:
        body = await self._json("GET", f"{SECRETS_PATH}{secret_id}", what=f"reading secret {secret_id}")
        return parse_secret(body, f"GET /api/v1/secrets/{secret_id}")

    async def exists(self, secret_id: str) -> bool:
        try:
            await self.get(secret_id)
        except NotFoundError:
            return False
        return True

    async def create(
        self, body: Mapping[str, PatchValue], *, known_ids: frozenset[str] = frozenset()
    ) -> RemoteSecret:
        """POST once; after an ambiguous failure, look for the name before ever sending it again.

        `known_ids` are secrets of that name that existed before, so they are not mistaken for ours.
        """
        name = str(body.get("secret_name", ""))
        what = f"creating secret {name!r}"
        attempt = 0
        while True:
            try:
                response = await self._send("POST", SECRETS_PATH, body=body, retry=False, what=what)
            except (ServerError, TransportError) as exc:
                # The server may have acted before failing: find out instead of guessing.
                listed = await self.list_secrets()
                created = [s for s in listed if s.secret_name == name and s.secret_id not in known_ids]
                if len(created) == 1:
                    log.info("%s: the failed request had created it (found by listing)", what)
                    return created[0]
                if len(created) > 1:
                    ids = ", ".join(s.secret_id for s in created)
                    raise ConflictError(f"{what}: several secrets named {name!r} exist ({ids})") from exc
                attempt += 1
                if attempt > self.config.max_retries:
                    raise
                await self._backoff(attempt, None)
                continue
            return parse_secret(_decode(response, what), f"POST {SECRETS_PATH}")

    async def update(self, secret_id: str, body: Mapping[str, PatchValue]) -> None:
        name = body.get("secret_name")
        label = f"{name!r} ({secret_id})" if isinstance(name, str) else secret_id
        await self._send("PATCH", f"{SECRETS_PATH}{secret_id}", body=body, what=f"updating secret {label}")

    async def delete(self, secret_id: str) -> None:
        await self._send("DELETE", f"{SECRETS_PATH}{secret_id}", what=f"deleting secret {secret_id}")

    # -- transport --------------------------------------------------------------------------------

    async def _json(
        self, method: str, path: str, *, params: Mapping[str, int] | None = None, what: str
    ) -> Any:
        response = await self._send(method, path, params=params, what=what)
        return _decode(response, what)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, PatchValue] | None = None,
        params: Mapping[str, int] | None = None,
        retry: bool = True,
        what: str,
    ) -> httpx.Response:
        secrets = _sent_secrets(body)
        content = json.dumps(_body_json(body)).encode() if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        attempt = 0
        while True:
            delay_hint: float | None = None
            try:
                async with self._limit:
                    self.requests_sent += 1
                    response = await self._http.request(
                        method, path, content=content, params=params, headers=headers
                    )
                    await response.aread()
            except httpx.TimeoutException as exc:
                error: ApiError = TransportError(
                    f"{what}: no answer within {self.config.timeout:g}s "
                    f"(after {attempt + 1} attempt{'s' if attempt else ''}); try again or raise --timeout"
                )
                error.__cause__ = exc
            except httpx.HTTPError as exc:
                error = TransportError(
                    f"{what}: cannot reach {self.config.api_url} ({type(exc).__name__}); "
                    "check the URL and the network"
                )
                error.__cause__ = exc
            else:
                log.debug(
                    "%s %s keys=%s -> %s",
                    method,
                    path,
                    sorted(body) if body else [],
                    response.status_code,
                )
                if response.status_code < 400:
                    if len(response.content) > MAX_BODY_BYTES:
                        raise ServerError(f"{what}: the answer is larger than {MAX_BODY_BYTES} bytes")
                    return response
                error = _status_error(response, what, secrets, self.config)
                delay_hint = _retry_after(response)
                if response.status_code not in RETRY_STATUSES:
                    raise error
            retryable = retry or isinstance(error, RateLimitedError)
            attempt += 1
            if not retryable or attempt > self.config.max_retries:
                raise error
            await self._backoff(attempt, delay_hint)

    async def _backoff(self, attempt: int, hint: float | None) -> None:
        if hint is not None:
            delay = min(hint, self.config.backoff_cap)
        else:
            base = self.config.backoff_base * (2 ** (attempt - 1))
            delay = min(self.config.backoff_cap, base) * (0.5 + self._rng.random() / 2)
        log.debug("retrying in %.2fs (attempt %d)", delay, attempt + 1)
        await self._sleep(delay)


def _page_items(body: Any) -> tuple[list[Any], bool]:
    if isinstance(body, list):
        return body, False
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        pagination = body.get("pagination")
        has_next = isinstance(pagination, dict) and pagination.get("has_next") is True
        return body["data"], has_next
    raise ServerError(
        "malformed answer from GET /api/v1/secrets/: expected a list or an object with a 'data' list"
    )


def _decode(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        kind = response.headers.get("content-type", "unknown content type").split(";")[0]
        raise ServerError(
            f"{what}: the server answered {response.status_code} with {kind}, not JSON"
        ) from exc


def _status_error(
    response: httpx.Response, what: str, secrets: tuple[str, ...], config: ClientConfig
) -> ApiError:
    status = response.status_code
    detail = _detail(response, secrets)
    said = f" (server said: {detail})" if detail else ""
    if status in (401, 403):
        header = "Authorization: Bearer" if config.auth_header == "bearer" else "x-api-key"
        return AuthError(
            f"{what}: HTTP {status}: the API key was refused{said}; check IOINTELLIGENCE_API_KEY "
            f"and the header it is sent in (now {header}; see --auth-header)",
            status,
        )
    if status == 404:
        return NotFoundError(
            f"{what}: HTTP 404: not found{said}; it may have been deleted, plan again", status
        )
    if status == 409:
        return ConflictError(f"{what}: HTTP 409: the server refused a duplicate{said}", status)
    if status == 413:
        return QuotaError(
            f"{what}: HTTP 413: the account's secret storage quota would be exceeded; nothing was "
            "written for this secret. Delete unused secrets or shorten values, then apply again",
            status,
        )
    if status == 422:
        return ValidationApiError(f"{what}: HTTP 422: the server refused a field{said}", status)
    if status == 429:
        return RateLimitedError(
            f"{what}: HTTP 429: still rate limited after {config.max_retries} retries; "
            "lower --concurrency or try again later",
            status,
        )
    if status >= 500:
        return ServerError(
            f"{what}: HTTP {status} from the server after {config.max_retries} retries{said}; "
            "try again later (apply again converges)",
            status,
        )
    return ApiError(f"{what}: unexpected HTTP {status}{said}", status)


def _local_transport(db: Path | None) -> tuple[httpx.AsyncBaseTransport, str]:
    """The embedded emulator, in-process: `--api-url local` needs no server and no key."""
    from reconciler.emulator.app import create_app
    from reconciler.emulator.config import EmulatorConfig

    path = db or Path(".reconciler/local.db")
    path.parent.mkdir(parents=True, exist_ok=True)
    app = create_app(EmulatorConfig(db_path=str(path)))
    return httpx.ASGITransport(app=app), "http://local"
