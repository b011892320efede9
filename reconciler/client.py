"""The io.net secrets API client: auth, paginated listing, CRUD, retries, and error mapping."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import logging
import random
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpx

from reconciler import listing, listing_run
from reconciler.answers import SAFE_ID, Answer, displays_in, parse_secret, read_answer, refused_params
from reconciler.auth import auth_for
from reconciler.endpoint import DEFAULT_API_URL, LOCAL, canonical, shown
from reconciler.errors import (
    ApiError,
    AuthError,
    ConflictError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    TransportError,
    UsageError,
    ValidationApiError,
)
from reconciler.listing import Listing, Query
from reconciler.models import PENDING_CREATE_HOLD_S, PatchValue, RemoteSecret, SecretValue
from reconciler.redaction import Redactor
from reconciler.statuses import (
    CHECK_URL,
    UNSETTLED_ADVICE,
    relist_waits,
    retry_after,
    status_error,
)

log = logging.getLogger("reconciler.client")

SECRETS_PATH = "/api/v1/secrets/"
MAX_BODY_BYTES = 64 * 1024 * 1024
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]
# An ASGI application, as httpx.ASGITransport takes it.
ASGIApp = Callable[..., Any]
Transport = httpx.AsyncBaseTransport


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
    # An answer larger than this is refused while it streams in, before it can exhaust memory.
    max_body_bytes: int = MAX_BODY_BYTES
    # Go on with a listing nothing proves whole (--assume-complete-listing; never the default).
    assume_complete_listing: bool = False

    def __repr__(self) -> str:
        return f"ClientConfig(api_url={self.api_url!r}, auth_header={self.auth_header!r})"


def _encode_body(body: Mapping[str, PatchValue], what: str) -> bytes:
    plain = {k: (v.reveal() if isinstance(v, SecretValue) else v) for k, v in body.items()}
    for name, value in plain.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                # Bytes the environment could not decode: the server would store something else.
                raise ValidationApiError(
                    f"{what}: {name} is not valid UTF-8 text (the environment variable holds bytes that "
                    "are not UTF-8); fix the value and apply again"
                ) from None
    return json.dumps(plain).encode()


def _sent_secrets(body: Mapping[str, PatchValue] | None) -> tuple[str, ...]:
    if not body:
        return ()
    return tuple(v.reveal() for v in body.values() if isinstance(v, SecretValue))


def _body_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


class Client:
    """An async client for one account. Use as `async with Client(config) as client:`."""

    def __init__(
        self,
        config: ClientConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        app: ASGIApp | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
        displays: Iterable[str | None] = (),
        state_ids: frozenset[str] = frozenset(),
    ) -> None:
        """`app`: an ASGI application served in-process (`--api-url local` passes the emulator's).
        `displays`: those an earlier client of this run has seen; no error message repeats them.
        `state_ids`: the secrets the state knows; every listing must hold those that exist."""
        self.config = config
        self.state_ids = state_ids
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(max(1, config.concurrency))
        if app is not None:
            transport = httpx.ASGITransport(app=app)
        base_url, key = _base_url_and_key(config, in_process=transport is not None)
        self._auth = auth_for(config.auth_header, key)
        # Server texts we print never repeat the key or a display, as they never repeat a value.
        self.redactor = Redactor([key, *(d for d in displays if d)])
        # Plain http (loopback only, checked above) uses no TLS: skip loading the CA bundle, a tenth
        # of a second of every run. https always verifies, with one context for every connection.
        verify: ssl.SSLContext | bool = False
        if not base_url.startswith("http://"):
            verify = httpx.create_ssl_context()
        self._connect = functools.partial(
            httpx.AsyncClient,
            base_url=base_url,
            auth=self._auth,
            headers={"user-agent": "reconciler"},
            timeout=config.timeout,
            follow_redirects=False,
            verify=verify,
        )
        self._base_url = base_url
        # Each request slot has its own client with one connection, kept while idle. One pool shared
        # by all slots costs more client CPU per request the more connections it holds (httpcore
        # checks every idle connection on each request): past 16 in flight apply got slower, not
        # faster. An in-process transport has no connections to keep apart and is shared.
        self._shared = None if transport is None else self._connect(transport=transport)
        self._idle: list[httpx.AsyncClient] = []
        self._opened: list[httpx.AsyncClient] = []
        # List answers by the digest of their body (a pure function of it), for this client's lifetime.
        self._answers: dict[bytes, Answer] = {}

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for http in [*self._opened, *([self._shared] if self._shared is not None else [])]:
            await http.aclose()

    def _slot_client(self) -> httpx.AsyncClient:
        """The client for a request that holds a slot: the shared one, an idle one, or a new one."""
        if self._shared is not None:
            return self._shared
        if self._idle:
            return self._idle.pop()
        http = self._connect(limits=httpx.Limits(max_connections=1, max_keepalive_connections=1))
        self._opened.append(http)
        return http

    # -- operations -------------------------------------------------------------------------------

    async def list_secrets(self, *, once: bool = False, expect: int | None = None) -> Listing:
        """Every secret of the account, proven whole (see `listing`): a plan made from part of it would
        create again what it missed. An unprovable listing is an IncompleteListingError, unless the
        configuration assumes it whole. `once`: pages are read once, which proves nothing missing.
        `expect`: how many secrets the account is thought to hold (by default, as many as the state
        knows); it decides only how many pages are asked with the first question."""
        return await listing_run.read_account(
            self._list_answer,
            self.find,
            list_url=self._base_url.rstrip("/") + SECRETS_PATH,
            batch=self.config.concurrency,
            # An id that is no plain path segment is no secret of this API (and is never requested).
            known_ids=[i for i in self.state_ids if SAFE_ID.fullmatch(i)],
            assume_complete=self.config.assume_complete_listing,
            once=once,
            expect=len(self.state_ids) if expect is None else expect,
        )

    async def _list_answer(self, query: Query) -> Answer:
        what = "listing secrets"
        params = dict(query.params) if query.link is None else None
        response = await self._send(
            "GET", query.link or SECRETS_PATH, params=params, what=what, passthrough=frozenset({404, 422})
        )
        if response.status_code == 404:
            detail = self.redactor.detail(_body_of(response))
            said = f" (server said: {detail})" if detail else ""
            where = shown(self.config.api_url)
            raise NotFoundError(f"{what}: HTTP 404{said}: no secrets list at {where}; {CHECK_URL}", 404)
        if response.status_code == 422:
            body = _body_of(response)
            refused = refused_params(body) & listing.PAGING_PARAMS
            if not refused:
                raise status_error(response.status_code, what, self.redactor.detail(body), self._auth.shown)
            return Answer(refused=refused)
        # A page read again with the same bytes is the same answer: a listing reads every page twice to
        # prove itself, and decoding and checking a page is about half the client's work for it.
        digest = hashlib.blake2b(response.content, digest_size=32).digest()
        answer = self._answers.get(digest)
        if answer is None:
            answer = self._answers[digest] = read_answer(self._decode(response, what, CHECK_URL))
        return answer

    async def get(self, secret_id: str) -> RemoteSecret:
        body = await self._json("GET", _secret_path(secret_id), what=f"reading secret {secret_id}")
        return parse_secret(body, f"GET /api/v1/secrets/{secret_id}")

    async def find(self, secret_id: str) -> RemoteSecret | None:
        """The secret, or None when the server says it does not exist (404)."""
        try:
            return await self.get(secret_id)
        except NotFoundError:
            return None

    async def exists(self, secret_id: str) -> bool:
        return await self.find(secret_id) is not None

    async def create(
        self, body: Mapping[str, PatchValue], *, known_ids: frozenset[str] = frozenset()
    ) -> RemoteSecret:
        """POST once; after an ambiguous failure, look for the name before ever sending it again.

        `known_ids` are secrets of that name that existed before, so they are not mistaken for ours.
        When the request may still be in progress on the server (a timeout, 504), it is never sent
        again: the account is listed again after 1, 2 and 4 s (as far as --timeout reaches), and a
        create still missing then is reported in doubt, since a second copy would be a duplicate.
        """
        name = str(body.get("secret_name", ""))
        what = f"creating secret {name!r}"
        attempt = 0
        while True:
            try:
                response = await self._send(
                    "POST", SECRETS_PATH, body=body, retry=False, what=what, attempts_before=attempt
                )
            except (ServerError, TransportError) as exc:
                in_flight = _maybe_in_flight(exc)
                waits = relist_waits(self.config.timeout) if in_flight else (0.0,)
                # The server may have acted before failing, or may still: find out instead of guessing.
                for wait in waits:
                    if wait:
                        log.info("%s: %s; listing again in %gs to see whether it landed", what, exc, wait)
                        await self._sleep(wait)
                    try:
                        listed = (await self.list_secrets()).secrets
                    except ApiError as unknown:
                        # Held back only while the server may still be working on it; an answered
                        # request is over, and the next run's listing tells whether it landed.
                        raise type(exc)(
                            f"{exc}. Whether it was created anyway could not be checked ({unknown}); "
                            f"{IN_DOUBT_ADVICE if in_flight else UNSETTLED_ADVICE}",
                            exc.status,
                            in_doubt=in_flight,
                            unsettled=not in_flight,
                        ) from unknown
                    created = [s for s in listed if s.secret_name == name and s.secret_id not in known_ids]
                    if len(created) == 1:
                        log.info("%s: the failed request had created it (found by listing)", what)
                        return created[0]
                    if len(created) > 1:
                        ids = ", ".join(s.secret_id for s in created)
                        raise ConflictError(f"{what}: several secrets named {name!r} exist ({ids})") from exc
                if in_flight:
                    looked = f" over {sum(waits):g} s" if sum(waits) else ""
                    raise TransportError(
                        f"{exc}. It was not in the account when listed again{looked}, but the server may "
                        f"still create it, so it was not sent again; {IN_DOUBT_ADVICE}",
                        exc.status,
                        in_doubt=True,
                    ) from exc
                attempt += 1
                if attempt > self.config.max_retries:
                    raise
                await self._backoff(attempt, None, f"{exc}; not found by listing, so sent again")
                continue
            return parse_secret(self._decode(response, what), f"POST {SECRETS_PATH}")

    async def update(self, secret_id: str, body: Mapping[str, PatchValue]) -> None:
        name = body.get("secret_name")
        label = f"{name!r} ({secret_id})" if isinstance(name, str) else secret_id
        await self._send("PATCH", _secret_path(secret_id), body=body, what=f"updating secret {label}")

    async def delete(self, secret_id: str) -> None:
        """DELETE; a 404 after an earlier attempt failed ambiguously means that attempt deleted it."""
        await self._send(
            "DELETE", _secret_path(secret_id), what=f"deleting secret {secret_id}", gone_after_retry=True
        )

    # -- transport --------------------------------------------------------------------------------

    async def _json(
        self, method: str, path: str, *, params: Mapping[str, int | str] | None = None, what: str
    ) -> Any:
        response = await self._send(method, path, params=params, what=what)
        return self._decode(response, what)

    def _decode(self, response: httpx.Response, what: str, hint: str = "") -> Any:
        try:
            body = response.json()
        except (ValueError, RecursionError) as exc:
            kind = response.headers.get("content-type", "").split(";")[0]
            raise ServerError(
                f"{what}: the server answered {response.status_code} with "
                f"{self.redactor.line(kind, 60) or 'no content type'}, not JSON that can be read"
                f"{'; ' + hint if hint else ''}"
            ) from exc
        for display in displays_in(body):
            self.redactor.add(display)
        return body

    async def _send(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, PatchValue] | None = None,
        params: Mapping[str, int | str] | None = None,
        retry: bool = True,
        gone_after_retry: bool = False,
        what: str,
        attempts_before: int = 0,
        passthrough: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """The answer of the first attempt that succeeds (or has a status in `passthrough`)."""
        secrets = _sent_secrets(body)
        content = _encode_body(body, what) if body is not None else None
        headers = {"content-type": "application/json"} if content is not None else None
        attempt = attempts_before
        while True:
            delay_hint: float | None = None
            try:
                response = await self._attempt(method, path, content, params, headers, what)
            except (httpx.TimeoutException, TimeoutError) as exc:
                reason = f"{what}: no answer within {self.config.timeout:g}s"
                error: ApiError = TransportError(
                    f"{reason} (after {attempt + 1} attempt{'s' if attempt else ''}); "
                    "try again or raise --timeout"
                )
                error.__cause__ = exc
            except httpx.HTTPError as exc:
                reason = f"{what}: {type(exc).__name__}"
                error = TransportError(
                    f"{what}: cannot reach {shown(self.config.api_url)} ({type(exc).__name__}); "
                    "check the URL and the network"
                )
                error.__cause__ = exc
            else:
                log.debug("%s %s keys=%s -> %s", method, path, sorted(body or ()), response.status_code)
                status = response.status_code
                if status < 300 or status in passthrough:
                    return response
                if status == 404 and gone_after_retry and attempt > 0:
                    log.info("%s: already gone after an earlier attempt that failed", what)
                    return response
                detail = self.redactor.detail(_body_of(response), secrets)
                error = status_error(status, what, detail, self._auth.shown, attempt + 1)
                reason = f"{what}: HTTP {status}" + (f" (server said: {detail})" if detail else "")
                delay_hint = retry_after(response.headers.get("retry-after"))
                if status not in RETRY_STATUSES:
                    raise error
            attempt += 1
            if not (retry or isinstance(error, RateLimitedError)) or attempt > self.config.max_retries:
                raise error
            await self._backoff(attempt, delay_hint, reason)

    async def _attempt(
        self,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, int | str] | None,
        headers: Mapping[str, str] | None,
        what: str,
    ) -> httpx.Response:
        """One exchange over a request slot's client, given back to the idle ones afterwards."""
        async with self._slots:
            http = self._slot_client()
            try:
                return await self._exchange(http, method, path, content, params, headers, what)
            finally:
                if http is not self._shared:
                    # Most recently used first: its connection is the likeliest to be open.
                    self._idle.append(http)

    async def _exchange(
        self,
        http: httpx.AsyncClient,
        method: str,
        path: str,
        content: bytes | None,
        params: Mapping[str, int | str] | None,
        headers: Mapping[str, str] | None,
        what: str,
    ) -> httpx.Response:
        """One request and its whole answer within the timeout, the body read up to max_body_bytes."""
        request = http.build_request(method, path, content=content, params=params, headers=headers)
        limit = self.config.max_body_bytes
        # httpx's timeout bounds each read; this bounds the whole answer (a server could drip forever).
        async with asyncio.timeout(self.config.timeout):
            streamed = await http.send(request, stream=True)
            try:
                declared = streamed.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise ServerError(f"{what}: the answer is larger than {limit} bytes; refused")
                chunks: list[bytes] = []
                size = 0
                # Decoded bytes are counted, so a small compressed answer cannot unpack into a huge one.
                async for chunk in streamed.aiter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise ServerError(f"{what}: the answer is larger than {limit} bytes; refused")
                    chunks.append(chunk)
            finally:
                await streamed.aclose()
        kept = [
            (k, v) for k, v in streamed.headers.items() if k not in ("content-encoding", "content-length")
        ]
        return httpx.Response(streamed.status_code, headers=kept, content=b"".join(chunks), request=request)

    async def _backoff(self, attempt: int, hint: float | None, reason: str) -> None:
        if hint is not None:
            delay = min(hint, self.config.backoff_cap)
            why = "as Retry-After asks"
        else:
            base = self.config.backoff_base * (2 ** (attempt - 1))
            delay = min(self.config.backoff_cap, base) * (0.5 + self._rng.random() / 2)
            why = "backing off"
        # The reason is the error text a failure would print: values and keys are already withheld.
        log.info("retry %d of %d in %.2fs (%s): %s", attempt, self.config.max_retries, delay, why, reason)
        await self._sleep(delay)


def _base_url_and_key(config: ClientConfig, *, in_process: bool) -> tuple[str, str]:
    """Where requests go and the key they carry; `--api-url local` needs an in-process app."""
    base_url = canonical(config.api_url)
    key = config.api_key
    if base_url == LOCAL:
        if not in_process:
            raise UsageError("--api-url local: no embedded emulator was given to talk to")
        base_url = "http://local"
        key = key or "local"
    if not key:
        raise AuthError(
            "no io.net API key: set IOINTELLIGENCE_API_KEY (or IO_API_KEY), "
            "or use --api-url local for the embedded emulator"
        )
    return base_url, key


def _secret_path(secret_id: str) -> str:
    if not SAFE_ID.fullmatch(secret_id):
        raise ApiError(f"{secret_id[:80]!r} is not a secret id (a UUID is expected); nothing was sent")
    return SECRETS_PATH + secret_id


IN_DOUBT_ADVICE = (
    "the state keeps it as a pending create, so the next apply looks for the name first and does not "
    f"send it again within {PENDING_CREATE_HOLD_S // 60} minutes of this attempt. Not guaranteed: that "
    "the server never creates it later than that, and, if the state file is lost, that the record of it "
    "survives"
)


def _maybe_in_flight(error: ApiError) -> bool:
    """Whether a failed request may still be carried out by the server after we stopped waiting."""
    if error.status == 504:
        return True
    cause = error.__cause__
    return isinstance(cause, httpx.ReadTimeout | httpx.WriteTimeout | TimeoutError)
