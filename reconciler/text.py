"""Wording helpers shared by the messages of several modules: quoting, one-line text, counts, new names."""

from __future__ import annotations

from collections.abc import Container


def quoted(text: str) -> str:
    """'name' in single quotes, or Python's quoting when the name does not print on one line."""
    return f"'{text}'" if text.isprintable() else repr(text)


def shown(text: str, limit: int | None = None) -> str:
    """Text as written when it prints on one line, else Python's quoting with escapes (a line break
    or a terminal control character can neither split nor forge a line, and the reader still sees
    exactly what is there); cut with "…" past `limit` characters."""
    if not text.isprintable():
        text = repr(text)
    return text if limit is None or len(text) <= limit else text[:limit] + "…"


def plural(count: int, word: str) -> str:
    """'1 secret', '2 secrets'."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def unique(base: str, taken: Container[str], joiner: str) -> str:
    """`base`, or the first of base{joiner}2, base{joiner}3, ... that is not taken."""
    candidate = base
    number = 2
    while candidate in taken:
        candidate = f"{base}{joiner}{number}"
        number += 1
    return candidate
