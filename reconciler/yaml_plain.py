"""Plain YAML read straight from the parser's events into data, with no node per scalar.

The fast reading of a file expected to be valid: mappings, sequences and scalars, keys that are
text. Anything else (an anchor, an alias, a tag, a merge key, a duplicate key or one that is not
text, a second document, nesting past MAX_DEPTH, text that is not YAML) gives None, and yaml_tree's
nodes read the file instead, finding and placing every problem. What both read, they read alike:
the same scalars, the same keys, the same positions of each collection.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    DocumentEndEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
    StreamStartEvent,
)

from reconciler.yaml_scalars import is_merge, untagged_scalar
from reconciler.yaml_tree import MAX_DEPTH, event_source, paused_gc

# A collection made where it starts (0-based line and column): a mapping or a sequence.
Make = Callable[[int, int], Any]


def plain_mapping(raw: bytes, mapping: Make, sequence: Make) -> dict[str, Any] | None:
    """The document's data when it is a plain mapping, its collections made by `mapping` and
    `sequence`; None when anything in it is not plain. Equal texts are one string object."""
    next_event, close = event_source(raw)
    reader = _Reader(mapping, sequence)
    try:
        with paused_gc():
            reader.read(next_event)
    except (_NotPlain, YAMLError, ValueError, UnicodeError):
        return None
    finally:
        close()
    return reader.root if isinstance(reader.root, dict) else None


class _NotPlain(Exception):
    """Something only yaml_tree's nodes read."""


class _Reader:
    """The data of the events read so far: the open collections, and in a mapping the key waiting."""

    def __init__(self, mapping: Make, sequence: Make) -> None:
        self.mapping = mapping
        self.sequence = sequence
        self.texts: dict[str, str] = {}
        # The open collections above the innermost, each with whether it is a mapping.
        self.stack: list[tuple[Any, bool]] = []
        self.top: Any = None
        self.in_map = False
        self.key: str | None = None
        self.root: Any = None
        self.documents = 0

    def read(self, next_event: Callable[[], Any]) -> None:
        texts = self.texts
        while (event := next_event()) is not None:
            cls = event.__class__
            if cls is not ScalarEvent:
                self.structure(event, cls)
                continue
            if event.anchor is not None or event.ctag is not None:
                raise _NotPlain
            text: str = event.value
            if self.in_map and self.key is None:
                self.key = self.name(text, event.style)
                continue
            value = untagged_scalar(text, event.style)
            if value.__class__ is str:
                value = texts.setdefault(value, value)
            self.put(value)

    def name(self, text: str, style: str | None) -> str:
        """A mapping key: text, neither one the mapping has already nor the merge key."""
        if text in self.top or is_merge(text, style):
            raise _NotPlain
        return self.texts.setdefault(text, text)

    def put(self, value: object) -> None:
        if self.in_map:
            self.top[self.key] = value
            self.key = None
        elif self.top is not None:
            self.top.append(value)
        else:
            raise _NotPlain

    def structure(self, event: Any, cls: type) -> None:
        """An event that is not a scalar: a collection opens or closes, a document starts."""
        if cls is MappingStartEvent or cls is SequenceStartEvent:
            if event.anchor is not None or event.ctag is not None or len(self.stack) >= MAX_DEPTH:
                raise _NotPlain
            if self.in_map and self.key is None:
                raise _NotPlain
            mark = event.start_mark
            made = (self.mapping if cls is MappingStartEvent else self.sequence)(mark.line, mark.column)
            if self.top is not None:
                self.put(made)
            self.stack.append((self.top, self.in_map))
            self.top, self.in_map = made, cls is MappingStartEvent
        elif cls is MappingEndEvent or cls is SequenceEndEvent:
            done = self.top
            self.top, self.in_map = self.stack.pop()
            if self.top is None:
                self.root = done
        elif cls is DocumentStartEvent:
            self.documents += 1
            if self.documents > 1:
                raise _NotPlain
        elif cls not in _FRAME:
            # An alias, or an event this reading does not know.
            raise _NotPlain


# The events around the document, which carry no data.
_FRAME = frozenset({StreamStartEvent, StreamEndEvent, DocumentEndEvent})
