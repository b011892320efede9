"""Wording helpers shared by the messages of several modules."""

from __future__ import annotations


def quoted(text: str) -> str:
    """'name' in single quotes, or Python's quoting when the name does not print on one line."""
    return f"'{text}'" if text.isprintable() else repr(text)
