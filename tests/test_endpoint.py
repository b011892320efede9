"""endpoint: the one canonical form of a base URL, the checks on it, and URLs as they may be printed."""

from __future__ import annotations

import pytest

from reconciler.endpoint import DEFAULT_API_URL, LOCAL, canonical, check_api_url, shown
from reconciler.errors import UsageError


@pytest.mark.parametrize(
    "spelling",
    [
        "https://api.intelligence.io.solutions",
        "https://api.intelligence.io.solutions/",
        "HTTPS://API.Intelligence.IO.Solutions",
        "https://api.intelligence.io.solutions:443",
        "https://api.intelligence.io.solutions:443/",
        "https://api.intelligence.io.solutions/api",
        "https://api.intelligence.io.solutions/api/",
        "https://api.intelligence.io.solutions/API//",
        "https://user:password@api.intelligence.io.solutions/api",
    ],
)
def test_every_spelling_of_one_endpoint_has_one_canonical_form(spelling: str) -> None:
    assert canonical(spelling) == DEFAULT_API_URL


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("http://LOCALHOST:80/", "http://localhost"),
        ("http://[::1]:8765/api", "http://[::1]:8765"),
        ("https://example.com:8443/proxy/api/", "https://example.com:8443/proxy"),
        ("https://example.com/apis", "https://example.com/apis"),
        ("https://example.com/Path/Case", "https://example.com/Path/Case"),
        (LOCAL, LOCAL),
    ],
)
def test_what_canonical_keeps_and_what_it_drops(url: str, expected: str) -> None:
    assert canonical(url) == expected


def test_different_endpoints_stay_different() -> None:
    forms = {
        canonical(url)
        for url in (
            "https://example.com",
            "http://localhost",
            "https://example.com:8443",
            "https://example.org",
            "https://example.com/other",
        )
    }
    assert len(forms) == 5


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://localhost:99999", "invalid port (1 to 65535)"),
        ("http://localhost:-1", "invalid port"),
        ("http://localhost:port", "invalid port"),
        ("ftp://example.com", "not an http(s) URL"),
        ("example.com", "not an http(s) URL"),
        ("https://", "not an http(s) URL"),
        ("http://example.com", "plain http to a non-loopback host"),
        ("https://example.com/?next=x", "query or fragment"),
        ("https://example.com/#top", "query or fragment"),
    ],
)
def test_an_unusable_url_is_one_line_naming_it(url: str, words: str) -> None:
    for check in (check_api_url, canonical):
        with pytest.raises(UsageError) as caught:
            check(url)
        assert words in caught.value.message and "\n" not in caught.value.message


def test_credentials_in_a_url_are_never_shown() -> None:
    assert shown("https://alice:s3cret@example.com/api") == "https://***@example.com/api"
    assert shown("https://token@example.com") == "https://***@example.com"
    assert shown("https://example.com/a@b") == "https://example.com/a@b"
    with pytest.raises(UsageError) as caught:
        check_api_url("http://alice:s3cret@example.com")
    assert "s3cret" not in caught.value.message and "alice" not in caught.value.message
