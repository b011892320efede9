"""The io.net API endpoint: its default, auth headers, the one canonical form of a base URL, URL checks."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from reconciler.errors import UsageError

DEFAULT_API_URL = "https://api.intelligence.io.solutions"
# How the API key may be sent: `Authorization: Bearer KEY` or `x-api-key: KEY`.
AUTH_HEADERS = ("bearer", "x-api-key")
# `--api-url local`: the embedded emulator, in-process; never a network address.
LOCAL = "local"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def check_api_url(url: str) -> None:
    """Plain http is refused except on loopback: an API key must not cross a network in clear text."""
    if url == LOCAL:
        return
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(
            f"--api-url {shown(url)!r} is not an http(s) URL (or 'local' for the embedded emulator)"
        )
    if parts.query or parts.fragment:
        raise UsageError(f"--api-url {shown(url)!r} has a query or fragment; give the API's base URL only")
    _port(url)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise UsageError(
            f"--api-url {shown(url)!r} uses plain http to a non-loopback host; use https "
            "(plain http is accepted only for 127.0.0.1, ::1 and localhost)"
        )


def canonical(url: str) -> str:
    """One spelling per endpoint: scheme and host in lower case, no default port, no credentials, no
    trailing slash and no `/api` suffix (io.net's own clients are given a base that ends in `/api`).

    Saved plans, the listing and the state's account binding all compare URLs in this form.
    """
    if url == LOCAL:
        return LOCAL
    check_api_url(url)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = _port(url)
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = parts.path.rstrip("/")
    if path.lower().endswith("/api"):
        path = path[: -len("/api")].rstrip("/")
    return f"{scheme}://{netloc}{path}"


def host(url: str) -> str:
    """The host (and port) a URL names, for a report's header: never credentials; `local` stays."""
    if url == LOCAL:
        return LOCAL
    return urlsplit(canonical(url)).netloc


def shown(url: str) -> str:
    """A URL as it may be printed: any `user:password@` in it replaced."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return parts._replace(netloc=f"***@{host}").geturl()


def _port(url: str) -> int | None:
    try:
        return urlsplit(url).port
    except ValueError:
        raise UsageError(f"--api-url {shown(url)!r} has an invalid port (1 to 65535)") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
