"""The reader of YAML: ruamel's C parser's events built into located nodes, with limits and errors.

One builder serves every reader: workflow files and the tool catalogue are edited through the nodes
(`parse_yaml`, `read_yaml`), and the desired-state file's plain data is taken from them
(`compose`). Every problem that stops reading is found here once: the text is not YAML, more than
one document, nesting past MAX_DEPTH, aliases that point nowhere or expand past MAX_ALIAS_EXPANSION.
The one shortcut, yaml_plain, reads only files in which none of these can arise, from the same events.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.reader import ReaderError

from reconciler.errors import DesiredFileError, Problem
from reconciler.fsutil import read_regular
from reconciler.yaml_scalars import Scalar, collection_tag_problem, is_merge, tagged_scalar, untagged_scalar

# Aliases may share one node many times over; past this many expanded nodes the file is refused,
# so that a small file cannot make validation walk billions of nodes.
MAX_ALIAS_EXPANSION = 1_000_000
# Far deeper than the format goes (4 levels); it keeps every later walk of the data shallow.
MAX_DEPTH = 64
PathKey = str | int
# Turns a collection just read into its reader's data, given the keys leading to it (None for a key
# that is not text); see `compose`.
Fold = Callable[["YamlNode", list["PathKey | None"]], object]


class YamlNode(NamedTuple):
    """One node of a YAML document: its value, where it starts (1-based) and its span in the text.

    Immutable like a frozen dataclass, and built at a third of the cost: a 10,000-secret file is
    110,000 nodes. Two nodes are equal only when they are the same node.
    """

    kind: str  # "scalar", "map" or "seq"
    line: int
    col: int
    # Offsets in YamlDocument.text: the first character (anchor and tag included) and just past the
    # last one (a block scalar's trailing line breaks excluded).
    start: int
    end: int
    # Scalars: "" (plain), "'", '"', "|" or ">"; collections: "block" or "flow".
    style: str = ""
    scalar: Scalar = None
    items: tuple[YamlNode, ...] = ()
    pairs: tuple[tuple[YamlNode, YamlNode], ...] = ()
    # Written as an alias (*name): the node's text is elsewhere, under its anchor (`origin`).
    alias: bool = False
    origin: YamlNode | None = None
    # The explicit tag, as the parser resolved it (None when there is none).
    tag: str | None = None
    # A scalar's text before typing (escapes resolved): `1` and `"1"` both have the text "1".
    text: str = ""
    # Reading stopped inside this node (only `compose` returns such a tree): it is not all there.
    cut: bool = False
    # A collection folded as it was read (`compose` with `fold`): its reader's data, without items.
    data: object = None

    def __repr__(self) -> str:
        # Values stay out of repr: a workflow file can hold credentials.
        return (
            f"YamlNode(kind={self.kind!r}, line={self.line}, col={self.col}, start={self.start}, "
            f"end={self.end}, style={self.style!r}, alias={self.alias}, tag={self.tag!r}, cut={self.cut})"
        )

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __hash__(self) -> int:
        return id(self)

    def entries(self) -> tuple[tuple[YamlNode, YamlNode], ...]:
        """A mapping's effective entries in file order: its own, then those merged in with `<<`."""
        own = [pair for pair in self.pairs if not is_merge_key(pair[0])]
        seen = {key.scalar for key, _ in own if key.kind == "scalar"}
        merged: list[tuple[YamlNode, YamlNode]] = []
        for value in [value for key, value in self.pairs if is_merge_key(key)]:
            for source in value.items if value.kind == "seq" else (value,):
                for pair in source.entries() if source.kind == "map" else ():
                    if pair[0].kind == "scalar" and pair[0].scalar not in seen:
                        seen.add(pair[0].scalar)
                        merged.append(pair)
        return (*own, *merged)

    def get(self, key: str) -> YamlNode | None:
        """The value under `key` in a mapping (the last one when a key repeats, as YAML loaders do)."""
        found: YamlNode | None = None
        for pair_key, value in self.entries():
            if pair_key.kind == "scalar" and pair_key.scalar == key:
                found = value
        return found

    def to_python(self) -> object:
        """Plain data: dict, list and scalars."""
        if self.kind == "scalar":
            return self.scalar
        if self.kind == "seq":
            return [item.to_python() for item in self.items]
        return {plain_key(key): value.to_python() for key, value in self.entries()}


@dataclass(frozen=True)
class YamlDocument:
    """A YAML file's text and its root node (None for an empty document)."""

    file: str
    text: str = dataclasses.field(repr=False)
    root: YamlNode | None = dataclasses.field(repr=False)


@dataclass(frozen=True)
class Finding:
    """A problem that stops reading: where (0-based), under which keys (None: in the text itself)."""

    line: int
    col: int
    path: tuple[PathKey, ...] | None
    message: str


@dataclass(frozen=True)
class Composed:
    """A document's nodes and what stopped reading them; `complete` is False when reading gave up."""

    root: YamlNode | None
    findings: tuple[Finding, ...]
    complete: bool


def is_merge_key(node: YamlNode) -> bool:
    """Whether a mapping key is the merge key: `<<` written plain, untagged, not through an alias."""
    plain = node.kind == "scalar" and node.tag is None and not node.alias
    return plain and is_merge(node.text, node.style)


def key_name(node: YamlNode) -> str | None:
    """The text a mapping key names its value by: a scalar's text as written (an alias's when it is
    text); None for a key that is not text."""
    if node.kind != "scalar":
        return None
    if node.alias:
        return node.scalar if isinstance(node.scalar, str) else None
    return node.text


def unsupported_tag(node: YamlNode) -> str | None:
    """Why a node's explicit tag is not accepted by strict readers (None when it is, or has none)."""
    tag = node.tag
    if tag is None or node.alias:
        return None
    if node.kind == "scalar":
        return tagged_scalar(tag, node.text)[1]
    return collection_tag_problem(tag, node.kind)


def text_keys(path: list[PathKey | None]) -> tuple[PathKey, ...]:
    """The keys of a path up to the first one that is not text (None)."""
    end = path.index(None) if None in path else len(path)
    return tuple(key for key in path[:end] if key is not None)


def plain_key(node: YamlNode) -> object:
    """A key's plain value, or a stand-in when it is a collection (which cannot be a dict key)."""
    value = node.to_python()
    try:
        hash(value)
    except TypeError:
        return ("(complex key)", repr(value))
    return value


# ---------------------------------------------------------------------------------------------
# Reading


def read_file(path: Path) -> bytes:
    """A YAML file's bytes; a FIFO or a device (which could block or never end) is refused."""
    try:
        return read_regular(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DesiredFileError(
            [Problem(str(path), 1, 1, "(file)", f"cannot be read ({reason}); check the path")]
        ) from None


def read_yaml(path: Path) -> YamlDocument:
    """Read any YAML file into nodes with positions; DesiredFileError when it cannot be read or parsed."""
    raw = read_file(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(raw, exc.start)
        raise DesiredFileError(
            [Problem(str(path), line + 1, col + 1, "(yaml)", "is not UTF-8 text; save the file as UTF-8")]
        ) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, file: str = "<text>") -> YamlDocument:
    """Parse YAML text into nodes with positions; DesiredFileError (located) when it is not YAML."""
    # libyaml counts offsets from after a byte order mark.
    shift = 1 if text.startswith("\ufeff") else 0
    composed = _compose(text[shift:], text, shift)
    if composed.findings:
        first = composed.findings[0]
        raise DesiredFileError([Problem(file, first.line + 1, first.col + 1, "(yaml)", first.message)])
    return YamlDocument(file, text, composed.root)


def compose(raw: bytes, fold: Fold | None = None) -> Composed:
    """A document's nodes from its bytes (libyaml decodes them), with every problem that stops
    reading; it goes on past an alias that points nowhere (a null node stands in for it). Offsets
    count the decoded text, but a block scalar's span is not trimmed: the nodes are for reading data.

    With `fold`, each collection is handed to it as soon as it is read (its items folded already),
    and kept as a node without items or pairs whose `data` is what `fold` returned: a reader of data
    holds one entry's nodes at a time, not the whole file's (50,000 secrets are 190 MB of nodes).
    """
    return _compose(raw, None, 0, fold)


# ---------------------------------------------------------------------------------------------
# Building nodes from parser events


@cache
def _safe_yaml_parser() -> type:
    """ruamel's C parser (ruamel.yaml.clib) when installed, else its pure one, said once under -v."""
    parser: type = YAML(typ="safe").Parser
    if "CParser" not in parser.__name__:
        logging.getLogger("reconciler.yaml_tree").info(
            "the C YAML parser (ruamel.yaml.clib) is not installed: loading is about three times "
            "slower; install ruamel.yaml.clib"
        )
    return parser


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Hold the cyclic garbage collector off while a tree of many objects is built: trees have no
    cycles, but each collection walks every object alive, a growing tree over and over (a third of
    the time for a 10,000-secret file). Nested uses are safe."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _compose(source: str | bytes, text: str | None, shift: int, fold: Fold | None = None) -> Composed:
    builder = _Builder(text, shift, fold)
    next_event, close = event_source(source)
    try:
        with paused_gc():
            builder.build(next_event)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line, mark.column) if mark is not None else (0, 0)
        # libyaml's messages are fixed phrases and never quote the file's text.
        what = "; ".join(str(part) for part in (exc.problem, exc.context) if part)
        builder.fail(line, col, None, f"invalid YAML: {what or 'syntax error'}")
    except ReaderError as exc:
        raw = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
        line, col = _byte_position(raw, exc.position)
        builder.fail(line, col, None, f"cannot be read as YAML: {exc.reason}")
    except (YAMLError, ValueError, UnicodeError):
        builder.fail(0, 0, None, "cannot be read as YAML text")
    except _Stopped:
        pass
    finally:
        close()
    return Composed(builder.root, tuple(builder.findings), builder.complete)


def event_source(source: str | bytes) -> tuple[Callable[[], Any], Callable[[], None]]:
    """The parser's events one at a time (None after the last), and what releases the parser."""
    parser = _safe_yaml_parser()
    if parser.__name__ == "CParser":
        # libyaml's parser asked directly: ruamel's generator around it asks twice for each event.
        direct = parser(source)
        return direct.get_event, direct.dispose
    events = YAML(typ="safe", pure=True).parse(source)
    return functools.partial(next, events, None), events.close


def _byte_position(raw: bytes, position: object) -> tuple[int, int]:
    if not isinstance(position, int) or position < 0:
        return 0, 0
    before = raw[:position].decode("utf-8", errors="replace")
    return before.count("\n"), len(before) - (before.rfind("\n") + 1)


# tuple.__new__ skips the named tuple's argument handling (a third of its cost): nodes are built once
# per scalar and per collection, with every field given in declaration order.
_new_node = tuple.__new__


class _Stopped(Exception):
    """Reading cannot go on (the finding is recorded)."""


class _Open(NamedTuple):
    """A collection being built: where it starts, how it is written, and its nodes read so far."""

    is_map: bool
    flow: bool
    line: int
    col: int
    start: int
    anchor: str | None
    tag: str | None
    # The builder's count of nodes when it opened (aliases to it count what it holds).
    size_at_start: int
    nodes: list[YamlNode]


class _Builder:
    """Turns parser events into YamlNodes, recording what stops reading."""

    def __init__(self, text: str | None, shift: int, fold: Fold | None = None) -> None:
        self.text = text
        self.shift = shift
        self.fold = fold
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[YamlNode, int]] = {}
        self.open_anchors: set[str] = set()
        self.size = 0
        self.root: YamlNode | None = None
        self.documents = 0
        self.findings: list[Finding] = []
        self.complete = True

    def build(self, next_event: Callable[[], Any]) -> None:
        scalar = self.scalar
        # The nodes of the innermost open collection (the root's stand-in at the top).
        top: list[YamlNode] = []
        while (event := next_event()) is not None:
            cls = event.__class__
            self.size += 1
            if cls is ScalarEvent:
                node = scalar(event)
                if event.anchor is None and self.stack:
                    top.append(node)
                else:
                    self.add(node, event.anchor)
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                top = self.start(event, cls is MappingStartEvent)
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                self.end(event.end_mark.index + self.shift)
                top = self.stack[-1].nodes if self.stack else top
            elif cls is AliasEvent:
                self.add(self.alias(event), None)
            elif cls is DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    mark = event.start_mark
                    self.stop(mark.line, mark.column, (), "holds more than one YAML document (---); keep one")

    def fail(self, line: int, col: int, path: tuple[PathKey, ...] | None, message: str) -> None:
        """Record what stops reading; the collections still open are closed as they stand (cut)."""
        self.findings.append(Finding(line, col, path, message))
        self.complete = False
        while self.stack:
            frame = self.stack[-1]
            if frame.is_map and len(frame.nodes) % 2:
                # A key still waiting for its value gets a cut null, so that the key itself is kept.
                key = frame.nodes[-1]
                frame.nodes.append(YamlNode("scalar", key.line, key.col, key.end, key.end, cut=True))
            self.end(None)

    def stop(self, line: int, col: int, path: tuple[PathKey, ...] | None, message: str) -> None:
        self.fail(line, col, path, message)
        raise _Stopped

    def path(self) -> tuple[PathKey, ...]:
        """The keys leading to the node being read now (up to a key that is not text)."""
        return text_keys(self.data_path())

    def data_path(self) -> list[PathKey | None]:
        """The keys leading to the node being read now, None standing for a key that is not text."""
        return [
            (key_name(f.nodes[-1]) if len(f.nodes) % 2 else None) if f.is_map else len(f.nodes)
            for f in self.stack
        ]

    def scalar(self, event: ScalarEvent) -> YamlNode:
        mark = event.start_mark
        text: str = event.value
        style = event.style or ""
        # The raw tag: the event's `tag` property turns it into text even when there is none.
        tag = None if event.ctag is None else str(event.ctag)
        if tag is not None:
            value: Scalar = tagged_scalar(tag, text)[0]
        else:
            value = untagged_scalar(text, style)
        start = mark.index + self.shift
        end = event.end_mark.index + self.shift
        if self.text is not None and style in ("|", ">"):
            # libyaml ends a block scalar after its trailing line breaks; the span stops at its text.
            end = start + len(self.text[start:end].rstrip(" \t\r\n"))
        line, col = mark.line + 1, mark.column + 1
        return _new_node(
            YamlNode,
            ("scalar", line, col, start, end, style, value, (), (), False, None, tag, text, False, None),
        )

    def start(self, event: MappingStartEvent | SequenceStartEvent, is_map: bool) -> list[YamlNode]:
        """Open a collection; its list of nodes, which the nodes read next go into."""
        if len(self.stack) >= MAX_DEPTH:
            where = event.start_mark
            self.stop(where.line, where.column, self.path(), f"is nested more than {MAX_DEPTH} levels deep")
        mark, tag = event.start_mark, None if event.ctag is None else str(event.ctag)
        start = mark.index + self.shift
        flow = bool(event.flow_style)
        frame = _Open(is_map, flow, mark.line + 1, mark.column + 1, start, event.anchor, tag, self.size, [])
        if frame.anchor is not None:
            self.open_anchors.add(frame.anchor)
        self.stack.append(frame)
        return frame.nodes

    def end(self, end: int | None) -> None:
        """Close the innermost collection; `end` is where a flow collection ends (None: cut short)."""
        frame = self.stack.pop()
        nodes = frame.nodes
        cut = end is None
        if end is None or not frame.flow:
            # A block collection ends with its last node (nodes are in text order).
            end = nodes[-1].end if nodes else frame.start
        pairs = tuple(zip(nodes[::2], nodes[1::2], strict=True)) if frame.is_map else ()
        items = () if frame.is_map else tuple(nodes)
        kind, style = "map" if frame.is_map else "seq", "flow" if frame.flow else "block"
        head = (kind, frame.line, frame.col, frame.start, end, style, None)
        data = None
        if self.fold is not None:
            # Folded as soon as it is read: its data stands in for its items, which can go.
            read = _new_node(YamlNode, (*head, items, pairs, False, None, frame.tag, "", cut, None))
            data, items, pairs = self.fold(read, self.data_path()), (), ()
        node: YamlNode = _new_node(YamlNode, (*head, items, pairs, False, None, frame.tag, "", cut, data))
        self.add(node, None)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.anchors[frame.anchor] = (node, self.size - frame.size_at_start)

    def alias(self, event: AliasEvent) -> YamlNode:
        mark = event.start_mark
        name: str = event.anchor
        start, end = mark.index + self.shift, event.end_mark.index + self.shift
        found = None if name in self.open_anchors else self.anchors.get(name)
        if found is None:
            # It cannot be followed: recorded, and a null node stands in for it.
            inside = name in self.open_anchors
            problem = "refers to a node that contains it" if inside else f"has no anchor &{name} before it"
            self.findings.append(Finding(mark.line, mark.column, self.path(), f"alias *{name} {problem}"))
            return YamlNode("scalar", mark.line + 1, mark.column + 1, start, end, alias=True)
        node, size = found
        self.size += size
        if self.size > MAX_ALIAS_EXPANSION:
            self.stop(
                mark.line, mark.column, self.path(), "aliases expand to too many nodes; write the entries out"
            )
        return node._replace(
            line=mark.line + 1, col=mark.column + 1, start=start, end=end, alias=True, origin=node
        )

    def add(self, node: YamlNode, anchor: str | None) -> None:
        if anchor is not None:
            self.anchors[anchor] = (node, 1)
        if self.stack:
            self.stack[-1].nodes.append(node)
        else:
            self.root = node
