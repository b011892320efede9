"""How the API key travels: each --auth-header scheme as an httpx.Auth, by name."""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Mapping

import httpx

from reconciler.errors import UsageError


class KeyAuth(httpx.Auth):
    """An auth scheme: sends the API key on each request; `shown` names the header, never the key."""

    shown: str


class HeaderAuth(KeyAuth):
    """The API key in one header, after a fixed prefix."""

    def __init__(self, header: str, prefix: str, key: str) -> None:
        self.header = header
        self.shown = f"{header}: {prefix}".strip() if prefix else header
        self._value = prefix + key

    def __repr__(self) -> str:
        return f"HeaderAuth({self.shown!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self.header] = self._value
        yield request


# How the API key is sent, by the name --auth-header takes. endpoint.AUTH_HEADERS lists the same
# names for the command line, which starts without httpx; a test holds the two together. A new scheme
# is one line here (with its class, unless it is a header) and its name there.
AUTH_SCHEMES: Mapping[str, Callable[[str], KeyAuth]] = {
    "bearer": functools.partial(HeaderAuth, "Authorization", "Bearer "),
    "x-api-key": functools.partial(HeaderAuth, "x-api-key", ""),
}


def auth_for(scheme: str, key: str) -> KeyAuth:
    """The httpx.Auth that sends `key` as `scheme` says; an unknown scheme is a usage error."""
    make = AUTH_SCHEMES.get(scheme)
    if make is None:
        raise UsageError(f"--auth-header must be one of {', '.join(AUTH_SCHEMES)}")
    return make(key)
