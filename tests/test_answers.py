"""answers: a SecretInfo read field by field, text shared between secrets, malformed fields named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reconciler.answers import parse_secret, read_answer
from reconciler.errors import ServerError
from reconciler.models import RemoteSecret


def info(n: int, **fields: Any) -> dict[str, Any]:
    base = {
        "secret_id": f"00000000-0000-0000-0000-{n:012}",
        "user_id": "user-1",
        "secret_name": f"s{n}",
        "display": "ghp_****0001",
        "tool_name": "agno__github__*",
        "tool_arg": "access_token",
        "is_default_for_tool": False,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
    }
    return {**base, **fields}


def test_a_secret_is_read_field_by_field() -> None:
    secret = parse_secret(info(1, is_default_for_tool=None, tool_arg=None, updated_at="later"), "here")
    assert secret == RemoteSecret(
        "00000000-0000-0000-0000-000000000001",
        "s1",
        "agno__github__*",
        None,
        False,
        "2026-01-01T00:00:00+00:00",
        "later",
        "user-1",
        "ghp_****0001",
    )


def test_text_that_repeats_from_secret_to_secret_is_kept_once() -> None:
    # Decoded from JSON, as a listing reads them: each answer's strings are new objects.
    body = json.loads(json.dumps({"data": [info(1), info(2)]}))
    first, second = read_answer(body).items
    for name in ("user_id", "tool_name", "tool_arg"):
        assert getattr(first, name) is getattr(second, name), name
    # A secret never changed since it was created holds one string for both times.
    assert first.updated_at is first.created_at


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"tool_arg": 5}, "'tool_arg' is a int"),
        ({"is_default_for_tool": "yes"}, "'is_default_for_tool' is not a boolean"),
        ({"display": ["x"]}, "'display' is a list"),
        ({"secret_id": "../other"}, "'secret_id' is not an id"),
    ],
)
def test_a_malformed_field_is_named(fields: dict[str, Any], named: str) -> None:
    with pytest.raises(ServerError, match=named):
        parse_secret(info(1, **fields), "GET /api/v1/secrets/")
