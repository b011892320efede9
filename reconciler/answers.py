"""io.net's answers read into values: a SecretInfo checked field by field, a list answer and what it
says about paging, the query parameters a 422 names."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from reconciler.errors import ServerError
from reconciler.models import RemoteSecret

WHERE = "GET /api/v1/secrets/"
# The contract's ids are UUIDs; anything that is one path segment of plain characters is accepted.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_~-]{0,127}")


_OPTIONAL = ("tool_name", "tool_arg", "created_at", "updated_at", "user_id", "display")


def parse_secret(item: object, where: str) -> RemoteSecret:
    """A SecretInfo object, checked field by field: a malformed answer is an error, not a guess."""
    # The common case at once (a listing reads every secret, twice for pages); else the slow path
    # finds and names what is wrong.
    if isinstance(item, dict):
        secret_id, name = item.get("secret_id"), item.get("secret_name")
        tool, arg, created, updated, user, display = (item.get(key) for key in _OPTIONAL)
        default = item.get("is_default_for_tool", False)
        if (
            isinstance(secret_id, str)
            and isinstance(name, str)
            and (default is None or isinstance(default, bool))
            and all(v is None or isinstance(v, str) for v in (tool, arg, created, updated, user, display))
            and SAFE_ID.fullmatch(secret_id)
        ):
            return RemoteSecret(
                secret_id, name, tool, arg, bool(default), created or "", updated or "", user or "", display
            )
    return _checked(item, where)


def _checked(item: object, where: str) -> RemoteSecret:
    """parse_secret field by field, so that the error names the first field that is wrong."""
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
    if not SAFE_ID.fullmatch(secret_id):
        # Ids go into request paths: "../x" or "a?b" would send our writes somewhere else.
        raise ServerError(
            f"malformed answer from {where}: field 'secret_id' is not an id (a UUID is expected)"
        )
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


@dataclass(frozen=True)
class Answer:
    """One answer of the list operation, read: its secrets and what it says about paging."""

    items: tuple[RemoteSecret, ...] = ()
    shape: str = "{data}"
    # A `pagination` object that says something: `has_next` or `total`.
    paged: bool = False
    total: int | None = None
    has_next: bool | None = None
    cursor: str | None = None
    link: str | None = None
    # "cursor" or "next link" when the answer has a field for what follows, even an empty one.
    chain: str | None = None
    # A 422 that named these paging parameters (the answer then holds nothing else).
    refused: frozenset[str] = frozenset()

    @cached_property
    def ids(self) -> tuple[str, ...]:
        return tuple(s.secret_id for s in self.items)


def read_answer(body: Any) -> Answer:
    """An answer's secrets and paging hints; neither a list nor an object with a `data` list is an error."""
    if isinstance(body, list):
        return Answer(_items(body), shape="bare array")
    if not isinstance(body, dict) or not isinstance(body.get("data"), list):
        raise ServerError(f"malformed answer from {WHERE}: expected a list or an object with a 'data' list")
    raw = body.get("pagination")
    meta: dict[str, Any] = raw if isinstance(raw, dict) else {}
    total = _count(meta.get("total"))
    for name in ("total", "count", "total_count"):
        total = _count(body.get(name)) if total is None else total
    has_next = meta.get("has_next")
    if not isinstance(has_next, bool):
        more = body.get("has_more", body.get("has_next"))
        has_next = more if isinstance(more, bool) else None
    paged = isinstance(meta.get("has_next"), bool) or _count(meta.get("total")) is not None
    cursor = next(
        (body[k] for k in ("next_cursor", "cursor") if isinstance(body.get(k), str) and body[k]), None
    )
    link = None
    after = body.get("next")
    if isinstance(after, str) and after:
        if after.startswith(("/", "?", "http://", "https://")):
            link = after
        elif cursor is None:
            cursor = after
    chain = None
    if cursor is not None or any(k in body for k in ("next_cursor", "cursor")):
        chain = "cursor"
    elif link is not None or "next" in body:
        chain = "next link"
    items = _items(body["data"])
    return Answer(items, "{data}", paged, total, has_next, cursor, link, chain)


def _items(raw: list[Any]) -> tuple[RemoteSecret, ...]:
    return tuple(parse_secret(item, WHERE) for item in raw)


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def refused_params(body: Any) -> frozenset[str]:
    """The query parameters a FastAPI 422 body names (`"loc": ["query", NAME]`)."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, list):
        return frozenset()
    return frozenset(
        str(err["loc"][1])
        for err in detail
        if isinstance(err, dict)
        and isinstance(err.get("loc"), list)
        and len(err["loc"]) > 1
        and err["loc"][0] == "query"
    )
