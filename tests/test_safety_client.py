"""The client against hostile servers: wrong types, missing fields, huge or endless bodies, non-JSON,
HTML pages, endless or inconsistent paging, unsafe ids, echoed values; always a clear ApiError, never
another exception, a hang, a request outside the secrets API, or a secret in a message or a log."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable, Coroutine
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconciler.client import Client, ClientConfig
from reconciler.emulator.app import create_app
from reconciler.emulator.config import EmulatorConfig
from reconciler.errors import ApiError, ServerError, TransportError, ValidationApiError
from reconciler.models import SecretValue
from reconciler.redaction import WITHHELD

T = TypeVar("T")
URL = "http://127.0.0.1:9"
API_KEY = "api-key-CANARY-7c1e55d0a9"
SECRET_ID = "0b9c6f2e-4a57-4d8e-9a1b-3c2d1e0f9a8b"


async def no_sleep(_delay: float) -> None:
    return None


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def hostile(handler: Callable[[httpx.Request], Any], **config: Any) -> Client:
    options: dict[str, Any] = {"api_url": URL, "api_key": API_KEY, "max_retries": 2, **config}
    return Client(ClientConfig(**options), transport=httpx.MockTransport(handler), sleep=no_sleep)


def secret(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "secret_id": SECRET_ID,
        "user_id": "u",
        "secret_name": "gh",
        "display": "ghp_****1234",
        "tool_name": None,
        "tool_arg": None,
        "is_default_for_tool": False,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    item.update(overrides)
    return item


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
FIELDS = list(secret())


@st.composite
def mangled_secret(draw: st.DrawFn) -> Any:
    """A SecretInfo with fields dropped or of the wrong type, or anything else at all."""
    if draw(st.booleans()):
        return draw(JSON)
    item = secret()
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=4, unique=True)):
        if draw(st.booleans()):
            del item[name]
        else:
            item[name] = draw(JSON)
    return item


@st.composite
def listing_body(draw: st.DrawFn) -> Any:
    items = draw(st.lists(mangled_secret(), max_size=4))
    shape = draw(st.sampled_from(["array", "envelope", "paged", "other"]))
    if shape == "array":
        return items
    if shape == "envelope":
        return {"data": items}
    if shape == "paged":
        return {"data": items, "pagination": draw(JSON | st.just({"has_next": draw(st.booleans())}))}
    return draw(JSON)


@settings(max_examples=200, deadline=None)
@given(body=listing_body(), status=st.sampled_from([200, 200, 200, 400, 404, 409, 418, 422, 500, 503]))
def test_any_listing_answer_is_secrets_or_a_clear_error(body: Any, status: int) -> None:
    async def go() -> None:
        async with hostile(lambda request: httpx.Response(status, json=body)) as client:
            try:
                listed = (await client.list_secrets()).secrets
            except ApiError as exc:
                assert str(exc) and "\n" not in str(exc)
                return
        assert status == 200
        for item in listed:
            assert isinstance(item.secret_id, str) and isinstance(item.secret_name, str)
            assert isinstance(item.is_default_for_tool, bool)

    run(go())


@settings(max_examples=150, deadline=None)
@given(
    content=st.binary(max_size=300),
    content_type=st.sampled_from(
        ["application/json", "text/html", "text/plain", "", "application/json; charset=latin-1", "a\r\nb"]
    ),
    status=st.sampled_from([200, 201, 204, 301, 302, 400, 401, 403, 404, 413, 422, 429, 500, 502, 504]),
)
def test_any_bytes_under_any_status_are_a_clear_error_for_every_operation(
    content: bytes, content_type: str, status: int
) -> None:
    headers = {"content-type": content_type} if "\n" not in content_type else {}

    async def go() -> None:
        async with hostile(lambda r: httpx.Response(status, content=content, headers=headers)) as client:
            operations = [
                client.list_secrets(),
                client.get(SECRET_ID),
                client.create({"secret_name": "gh", "secret_value": SecretValue("value-1234")}),
                client.update(SECRET_ID, {"tool_arg": "x"}),
                client.delete(SECRET_ID),
            ]
            for operation in operations:
                try:
                    await operation
                except ApiError as exc:
                    assert str(exc) and "\n" not in str(exc) and "\r" not in str(exc)

    run(go())


def test_an_html_error_page_is_named_not_printed() -> None:
    page = "<html><body><h1>502 Bad Gateway</h1><script>alert(1)</script></body></html>"

    async def go() -> None:
        async with hostile(
            lambda r: httpx.Response(200, text=page, headers={"content-type": "text/html"})
        ) as c:
            with pytest.raises(ServerError) as info:
                await c.list_secrets()
        assert "text/html" in str(info.value) and "<" not in str(info.value)

    run(go())


def test_json_nested_beyond_the_parsers_depth_is_a_clear_error() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000

    async def go() -> None:
        async with hostile(lambda r: httpx.Response(200, content=deep)) as client:
            with pytest.raises(ServerError, match="not JSON"):
                await client.list_secrets()

    run(go())


async def endless(chunk: bytes, pause: float = 0.0) -> AsyncIterator[bytes]:
    while True:
        yield chunk
        if pause:
            await asyncio.sleep(pause)


def test_a_body_larger_than_the_limit_is_refused_while_it_streams() -> None:
    sent = {"bytes": 0}

    async def body() -> AsyncIterator[bytes]:
        async for chunk in endless(b"[" + b" " * 65_535):
            sent["bytes"] += len(chunk)
            yield chunk

    async def go() -> None:
        handler = lambda r: httpx.Response(200, content=body())  # noqa: E731
        async with hostile(handler, max_body_bytes=1_000_000) as client:
            with pytest.raises(ServerError, match="larger than 1000000 bytes"):
                await client.list_secrets()

    run(go())
    assert sent["bytes"] < 2_000_000  # stopped reading soon after the limit, not at the end (never)


def test_a_declared_huge_body_is_refused_before_it_is_read() -> None:
    async def go() -> None:
        headers = {"content-length": str(10**12)}
        async with hostile(lambda r: httpx.Response(200, headers=headers, content=b"[]")) as client:
            with pytest.raises(ServerError, match="larger than"):
                await client.list_secrets()

    run(go())


def test_a_server_dripping_its_answer_forever_times_out() -> None:
    async def go() -> None:
        handler = lambda r: httpx.Response(200, content=endless(b" ", pause=0.01))  # noqa: E731
        async with hostile(handler, timeout=0.3, max_retries=1) as client:
            started = time.monotonic()
            with pytest.raises(TransportError, match="no answer within"):
                await client.list_secrets()
        assert time.monotonic() - started < 5

    run(go())


def paged(items: list[dict[str, Any]], **pagination: Any) -> dict[str, Any]:
    return {"data": items, "pagination": pagination}


def test_a_page_that_repeats_earlier_secrets_while_more_follow_is_an_error() -> None:
    # A server ignoring `page` would otherwise give a plan that recreates everything past page one.
    async def go() -> None:
        body = paged([secret()], has_next=True)
        async with hostile(lambda r: httpx.Response(200, json=body)) as client:
            with pytest.raises(ServerError, match="repeated secrets"):
                await client.list_secrets()

    run(go())


def test_a_listing_shorter_than_the_servers_own_total_is_an_error() -> None:
    async def go() -> None:
        body = paged([secret()], has_next=False, total=3)
        async with hostile(lambda r: httpx.Response(200, json=body)) as client:
            with pytest.raises(ServerError, match="counts 3"):
                await client.list_secrets()

    run(go())


@pytest.mark.parametrize(
    "bad_id", ["../../admin", "a/b", "x?y=1", "id#frag", "", " ", "..", "%2e%2e", "a" * 300]
)
def test_an_id_that_is_not_one_plain_path_segment_is_refused_and_never_requested(bad_id: str) -> None:
    paths: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        paths.append(request.url.raw_path.decode())
        return httpx.Response(200, json=[secret(secret_id=bad_id)])

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(ServerError, match="not an id"):
                await client.list_secrets()
            with pytest.raises(ApiError):
                await client.delete(bad_id)

    try:
        run(go())
    except Exception as exc:  # pragma: no cover - the assertion below says what went wrong
        raise AssertionError(f"{type(exc).__name__} escaped") from exc
    assert all(path.startswith("/api/v1/secrets/") and path.count("/") == 4 for path in paths), paths
    assert len(paths) == 1


def test_a_create_that_timed_out_is_never_sent_again() -> None:
    posts: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            posts.append(1)
            raise httpx.ReadTimeout("no answer", request=request)
        return httpx.Response(200, json={"data": []})

    async def go() -> None:
        async with hostile(handler, max_retries=4) as client:
            with pytest.raises(TransportError, match="not sent again"):
                await client.create({"secret_name": "gh", "secret_value": SecretValue("value-1234")})

    run(go())
    assert posts == [1]


def test_a_delete_whose_first_attempt_acted_before_failing_succeeds() -> None:
    async def go() -> None:
        app = create_app(EmulatorConfig())
        inner = httpx.ASGITransport(app=app)
        deletes: list[int] = []

        class ActThenFail(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                response = await inner.handle_async_request(request)
                if request.method == "DELETE":
                    deletes.append(response.status_code)
                    if len(deletes) == 1:
                        return httpx.Response(500, json={"detail": "Internal Server Error"})
                return response

        config = ClientConfig(api_url=URL, api_key=API_KEY)
        async with Client(config, transport=ActThenFail(), sleep=no_sleep) as client:
            made = await client.create({"secret_name": "gh", "secret_value": SecretValue("value-1234")})
            await client.delete(made.secret_id)
            assert not await client.exists(made.secret_id)
        assert deletes == [200, 404]

    run(go())


def test_a_value_that_is_not_utf8_is_refused_before_anything_is_sent() -> None:
    sent: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request.method)
        return httpx.Response(200, json=secret())

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(ValidationApiError, match="not valid UTF-8") as info:
                await client.create({"secret_name": "gh", "secret_value": SecretValue("abc\udcffdef")})
        assert "abc" not in str(info.value)

    run(go())
    assert sent == []


ECHOES: dict[str, Callable[[str], str]] = {
    "raw": lambda v: v,
    "json": lambda v: json.dumps(v)[1:-1],
    "json-unicode": lambda v: json.dumps(v, ensure_ascii=False)[1:-1],
    "repr": repr,
    "html": lambda v: v.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;"),
    "url": lambda v: urllib.parse.quote(v, safe=""),
    "prefix": lambda v: v[:10],
    "suffix": lambda v: v[-9:],
    "middle": lambda v: v[len(v) // 2 - 4 : len(v) // 2 + 5],
    "body": lambda v: json.dumps({"secret_name": "gh", "secret_value": v}),
}


def windows(text: str, width: int = 8) -> set[str]:
    return {text[i : i + width] for i in range(len(text) - width + 1)}


@settings(max_examples=200, deadline=None)
@given(
    value=st.text(st.characters(exclude_categories=["Cs"]), min_size=8, max_size=300).map(
        lambda t: "Qx7" + t
    ),
    echo=st.sampled_from(sorted(ECHOES)),
    shape=st.sampled_from(["detail", "list-msg", "list-loc", "padded"]),
    status=st.sampled_from([400, 409, 413, 422, 500, 503]),
)
# A value that holds our own words ("creating secret") is no echo when those words are printed.
@example(value="Qx7ting sec", echo="raw", shape="detail", status=400)
def test_an_error_body_echoing_the_value_in_any_form_never_reaches_the_message(
    value: str, echo: str, shape: str, status: int
) -> None:
    def answer(echoed: str) -> Callable[[httpx.Request], httpx.Response]:
        def handler(request: httpx.Request) -> httpx.Response:
            if request.method == "GET":
                return httpx.Response(200, json={"data": []})
            if shape == "detail":
                return httpx.Response(status, json={"detail": f"bad value: {echoed}"})
            if shape == "padded":  # the echo starts just before the cut the message makes
                return httpx.Response(status, json={"detail": "x" * 295 + echoed})
            loc = ["body", echoed] if shape == "list-loc" else ["body", "secret_value"]
            msg = "bad" if shape == "list-loc" else f"bad: {echoed}"
            return httpx.Response(status, json={"detail": [{"loc": loc, "msg": msg, "type": "x"}]})

        return handler

    async def go(handler: Callable[[httpx.Request], httpx.Response]) -> str:
        async with hostile(handler) as client:
            try:
                await client.create({"secret_name": "gh", "secret_value": SecretValue(value)})
            except ApiError as exc:
                return str(exc)
        raise AssertionError("the create should have failed")

    message = run(go(answer(ECHOES[echo](value))))
    # Our own wording (what a server that echoes nothing draws) is no echo, whatever the value holds.
    ours = windows(run(go(answer("-"))))
    forms = [
        form(value) for name, form in ECHOES.items() if name not in ("prefix", "suffix", "middle", "body")
    ]
    printed = windows(message.replace(WITHHELD, "\0")) - ours
    leaked = set().union(*(windows(form) for form in forms)) & printed
    assert not leaked, f"{echo}/{shape}: the message repeats part of the value"
    if not (shape == "padded" and echo == "body"):  # there the value itself starts past the cut
        assert "withheld" in message or "(server said" not in message


def test_a_short_value_echoed_whole_is_withheld() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "value 'Zq9#' is too weak"})

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(ValidationApiError) as info:
                await client.update(SECRET_ID, {"secret_value": SecretValue("Zq9#")})
        assert "Zq9#" not in str(info.value) and "withheld" in str(info.value)

    run(go())


def test_a_value_spelled_out_only_by_escaping_the_servers_text_is_withheld() -> None:
    # The value holds the four characters of an escape sequence; the server echoes the character it
    # stands for. Escaped to print on one line, the server's text would spell the value out.
    value = r"ab\x1bcd"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "refused: ab\x1bcd\nsee the docs"})

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(ValidationApiError) as info:
                await client.update(SECRET_ID, {"secret_value": SecretValue(value)})
        assert value not in str(info.value) and "withheld" in str(info.value)

    run(go())


def test_a_servers_line_breaks_and_control_characters_are_printed_escaped() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(422, json={"detail": "bad name\r\n\x1b[31mOK"})

    async def go() -> None:
        async with hostile(handler) as client:
            with pytest.raises(ValidationApiError) as info:
                await client.update(SECRET_ID, {"secret_name": "x"})
        message = str(info.value)
        assert message.isprintable() and r"'bad name\r\n\x1b[31mOK'" in message

    run(go())


class _Server(BaseHTTPRequestHandler):
    """A real HTTP server, so that httpx and httpcore log what they log over a socket."""

    def do_GET(self) -> None:
        body = json.dumps({"data": [secret()]}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        echoed = self.rfile.read(length)
        self.send_response(422)
        self.send_header("content-type", "application/json")
        body = json.dumps({"detail": f"refused: {echoed.decode()} / {self.headers}"}).encode()
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_debug_logging_of_every_library_never_shows_the_api_key_or_a_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    value = "value-CANARY-5b0d7e21"
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    errors: list[str] = []

    async def go() -> None:
        for header in ("bearer", "x-api-key"):
            config = ClientConfig(api_url=url, api_key=API_KEY, auth_header=header, max_retries=0)
            async with Client(config, sleep=no_sleep) as client:
                await client.list_secrets()
                try:
                    await client.create({"secret_name": "gh", "secret_value": SecretValue(value)})
                except ApiError as exc:
                    errors.append(f"{exc} {exc!r} {exc.__cause__!r}")

    try:
        with caplog.at_level(logging.DEBUG):
            for name in ("httpx", "httpcore", "reconciler", "asyncio", ""):
                logging.getLogger(name).setLevel(logging.DEBUG)
            run(go())
    finally:
        server.shutdown()
        server.server_close()
        for name in ("httpx", "httpcore", "reconciler", "asyncio"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert any(r.name.startswith("httpcore") for r in caplog.records), "httpcore debug logging was not on"
    assert len(errors) == 2
    for text in [caplog.text, *errors, *(repr(r.args) for r in caplog.records)]:
        assert API_KEY not in text
        assert value not in text


# Not masked with asterisks, so that only the client's memory of what it listed can catch it.
PLAIN_DISPLAY = "ghp_xq1234"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 500])
@pytest.mark.parametrize("echoed", ["key", "key-json", "key-url", "display", "display-list"])
def test_an_error_repeating_the_api_key_or_a_listed_display_is_withheld(status: int, echoed: str) -> None:
    texts = {
        "key": f"invalid key {API_KEY}",
        "key-json": json.dumps({"auth": f"Bearer {API_KEY}"}),
        "key-url": urllib.parse.quote(f"Bearer {API_KEY}", safe=""),
        "display": f"no secret shown as {PLAIN_DISPLAY}",
        "display-list": f"{PLAIN_DISPLAY[:4]}{PLAIN_DISPLAY[4:]} exists",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"data": [secret(display=PLAIN_DISPLAY)]})
        if echoed == "display-list":
            body = {"detail": [{"loc": ["body", "tool_name"], "msg": texts[echoed], "type": "x"}]}
            return httpx.Response(status, json=body)
        return httpx.Response(status, json={"detail": texts[echoed]})

    async def go() -> str:
        async with hostile(handler) as client:
            await client.list_secrets()
            try:
                await client.update(SECRET_ID, {"tool_name": "t"})
            except ApiError as exc:
                return str(exc)
        raise AssertionError("the update should have failed")

    message = run(go())
    assert API_KEY not in message and PLAIN_DISPLAY not in message
    assert "withheld" in message and f"HTTP {status}" in message


def test_displays_listed_by_an_earlier_client_of_the_run_are_withheld_too() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json={"detail": f"{PLAIN_DISPLAY} is gone"})

    async def go() -> str:
        config = ClientConfig(api_url=URL, api_key=API_KEY, max_retries=0)
        client = Client(config, transport=httpx.MockTransport(handler), displays=[PLAIN_DISPLAY, None])
        async with client:
            with pytest.raises(ApiError) as info:
                await client.delete(SECRET_ID)
        return str(info.value)

    message = run(go())
    assert PLAIN_DISPLAY not in message and "withheld" in message


def test_a_masked_display_never_listed_is_withheld() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"detail": "key sk-a****wxyz is not valid"})

    async def go() -> str:
        async with hostile(handler) as client:
            with pytest.raises(ApiError) as info:
                await client.list_secrets()
        return str(info.value)

    message = run(go())
    assert "****" not in message and "withheld" in message


def test_a_content_type_repeating_the_api_key_is_withheld() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"<html>", headers={"content-type": f"text/x-{API_KEY}; q=1"})

    async def go() -> str:
        async with hostile(handler) as client:
            with pytest.raises(ServerError) as info:
                await client.list_secrets()
        return str(info.value)

    message = run(go())
    assert API_KEY not in message and "withheld" in message


def test_credentials_in_the_api_url_are_never_printed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async def go() -> str:
        client = hostile(handler, api_url="http://alice:pa55word@127.0.0.1:9/")
        async with client:
            with pytest.raises(ApiError) as info:
                await client.list_secrets()
        return str(info.value)

    message = run(go())
    assert "pa55word" not in message and "alice" not in message and "127.0.0.1:9" in message
