"""io.net's answers read into values: a SecretInfo checked field by field, a list answer and what it
says about paging, the query parameters a 422 names."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from functools import cached_property
from operator import contains
from typing import Any

from reconciler.errors import ServerError
from reconciler.models import ANSWERED_FIELDS, RemoteSecret

WHERE = "GET /api/v1/secrets/"
# The contract's ids are UUIDs; anything that is one path segment of plain characters is accepted.
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_~-]{0,127}")


_NAMES = tuple(f.name for f in ANSWERED_FIELDS)
_ID = _NAMES.index("secret_id")
# The Python types each field may hold in a well-formed answer (null only where it is optional).
_KINDS = tuple(
    frozenset({bool if f.json_type == "boolean" else str} | (set() if f.required else {type(None)}))
    for f in ANSWERED_FIELDS
)
# The fields whose null reads as something else, and what.
_FILLED = tuple((i, f.default) for i, f in enumerate(ANSWERED_FIELDS) if f.default is not None)
# Text that repeats from secret to secret, kept once (an account has one user id, bindings repeat):
# 50,000 copies of each would be a tenth of a large plan's memory.
_SHARED = tuple(_NAMES.index(name) for name in ("tool_name", "tool_arg", "user_id"))
_CREATED, _UPDATED = _NAMES.index("created_at"), _NAMES.index("updated_at")


def parse_secret(item: object, where: str) -> RemoteSecret:
    """A SecretInfo object, checked field by field: a malformed answer is an error, not a guess."""
    # The common case at once, each field's type looked up without a Python-level loop (a listing
    # reads every secret, twice for pages); else the slow path finds and names what is wrong.
    if isinstance(item, dict):
        found: list[Any] = list(map(item.get, _NAMES))
        if all(map(contains, _KINDS, map(type, found))) and SAFE_ID.fullmatch(found[_ID]):
            for index, default in _FILLED:
                if found[index] is None:
                    found[index] = default
            for index in _SHARED:
                if found[index]:
                    found[index] = sys.intern(found[index])
            if found[_UPDATED] == found[_CREATED]:
                # A secret never changed since it was created: one string for both.
                found[_UPDATED] = found[_CREATED]
            return RemoteSecret(*found)
    return _checked(item, where)


def _checked(item: object, where: str) -> RemoteSecret:
    """parse_secret field by field, so that the error names the first field that is wrong."""
    if not isinstance(item, dict):
        raise ServerError(f"malformed answer from {where}: a secret is {type(item).__name__}, not an object")
    found: list[Any] = []
    for field in ANSWERED_FIELDS:
        value = item.get(field.name)
        if value is None and not field.required:
            value = field.default
        elif field.json_type == "boolean" and not isinstance(value, bool):
            raise ServerError(f"malformed answer from {where}: field {field.name!r} is not a boolean")
        elif field.json_type == "string" and not isinstance(value, str):
            kind = "missing" if field.name not in item else f"a {type(value).__name__}, not a string"
            raise ServerError(f"malformed answer from {where}: field {field.name!r} is {kind}")
        found.append(value)
    if not SAFE_ID.fullmatch(str(found[_ID])):
        # Ids go into request paths: "../x" or "a?b" would send our writes somewhere else.
        raise ServerError(
            f"malformed answer from {where}: field 'secret_id' is not an id (a UUID is expected)"
        )
    return RemoteSecret(*found)


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


# The answered fields that copy part of a secret (`display`): no server message may repeat them.
_HIDDEN = tuple(f.name for f in ANSWERED_FIELDS if f.sensitive)


def displays_in(body: Any) -> list[str]:
    """The `display` (every sensitive field) of each secret in an answer: one, a list, or a page."""
    items = body.get("data", [body]) if isinstance(body, dict) else body
    if not isinstance(items, list):
        return []
    return [i[k] for i in items if isinstance(i, dict) for k in _HIDDEN if isinstance(i.get(k), str)]


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
