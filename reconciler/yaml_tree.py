"""The only reader of YAML: ruamel's C parser's events built into located nodes, scalar typing, limits."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

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

# Aliases may share one node many times over; past this many expanded nodes the file is refused,
# so that a small file cannot make validation walk billions of nodes.
MAX_ALIAS_EXPANSION = 1_000_000
# Far deeper than the format goes (4 levels); it keeps every later walk of the data shallow.
MAX_DEPTH = 64
YAML_TAG = "tag:yaml.org,2002:"


# ---------------------------------------------------------------------------------------------
# Any YAML file (io.net workflows, the tool catalogue): a tree of nodes that knows where each node
# sits in the text, so that edits can be made on the text itself.


@dataclass(frozen=True, eq=False)
class YamlNode:
    """One node of a YAML document: its value, where it starts (1-based) and its span in the text."""

    kind: str  # "scalar", "map" or "seq"
    line: int
    col: int
    # Offsets in YamlDocument.text: the first character (anchor and tag included) and just past the
    # last one (a block scalar's trailing line breaks excluded).
    start: int
    end: int
    # Scalars: "" (plain), "'", '"', "|" or ">"; collections: "block" or "flow".
    style: str = ""
    # Values are kept out of repr: a workflow file can hold credentials.
    scalar: str | int | float | bool | None = dataclasses.field(default=None, repr=False)
    items: tuple[YamlNode, ...] = dataclasses.field(default=(), repr=False)
    pairs: tuple[tuple[YamlNode, YamlNode], ...] = dataclasses.field(default=(), repr=False)
    # Written as an alias (*name): the node's text is elsewhere, under its anchor (`origin`).
    alias: bool = False
    origin: YamlNode | None = dataclasses.field(default=None, repr=False)

    def entries(self) -> tuple[tuple[YamlNode, YamlNode], ...]:
        """A mapping's effective entries in file order: its own, then those merged in with `<<`."""
        own = [pair for pair in self.pairs if not is_merge_key(pair[0])]
        seen = {key.scalar for key, _ in own if key.kind == "scalar"}
        merged: list[tuple[YamlNode, YamlNode]] = []
        for key, value in self.pairs:
            if not is_merge_key(key):
                continue
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
    path = Path(path)
    file = str(path)
    raw = read_file(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = byte_position(raw, exc.start)
        raise DesiredFileError(
            [Problem(file, line + 1, col + 1, "(yaml)", "is not UTF-8 text; save the file as UTF-8")]
        ) from None
    return parse_yaml(text, file)


def parse_yaml(text: str, file: str = "<text>") -> YamlDocument:
    """Parse YAML text into nodes with positions; DesiredFileError (located) when it is not YAML."""
    # libyaml counts offsets from after a byte order mark.
    shift = 1 if text.startswith("\ufeff") else 0
    builder = _NodeBuilder(file, text, shift)
    events = YAML(typ="safe").parse(text[shift:])
    try:
        root = builder.build(events)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line, mark.column) if mark is not None else (0, 0)
        what = "; ".join(str(part) for part in (exc.problem, exc.context) if part)
        raise DesiredFileError(
            [Problem(file, line + 1, col + 1, "(yaml)", f"invalid YAML: {what or 'syntax error'}")]
        ) from None
    except ReaderError as exc:
        raise DesiredFileError(
            [Problem(file, 1, 1, "(yaml)", f"cannot be read as YAML: {exc.reason}")]
        ) from None
    except (YAMLError, ValueError, UnicodeError):
        raise DesiredFileError([Problem(file, 1, 1, "(yaml)", "cannot be read as YAML text")]) from None
    finally:
        events.close()
    return YamlDocument(file, text, root)


# ---------------------------------------------------------------------------------------------
# Scalars: YAML 1.2 core schema typing of what the parser reports as text.


_PLAIN_CONSTANTS: dict[str, object] = {
    "": None,
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_NOT_CONSTANT = object()
# YAML 1.2 core schema numbers; anything else plain is a string (so `yes`, `on`, dates stay text).
_INT_DEC = re.compile(r"[-+]?[0-9]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")
_INF = re.compile(r"[-+]?\.(?:inf|Inf|INF)")
_NAN = re.compile(r"\.(?:nan|NaN|NAN)")
_NUMBER_START = frozenset("+-.0123456789")


def plain_scalar(text: str) -> object:
    constant = _PLAIN_CONSTANTS.get(text, _NOT_CONSTANT)
    if constant is not _NOT_CONSTANT:
        return constant
    if text[0] not in _NUMBER_START:
        return text
    try:
        if _INT_DEC.fullmatch(text):
            return int(text, 10)
        if _INT_OCT.fullmatch(text):
            return int(text[2:], 8)
        if _INT_HEX.fullmatch(text):
            return int(text[2:], 16)
    except ValueError:
        # More digits than Python converts (sys.get_int_max_str_digits): no field takes such a
        # number, and as text the length rules report it.
        return text
    if _FLOAT.fullmatch(text):
        return float(text)
    if _INF.fullmatch(text):
        return float("-inf") if text[0] == "-" else float("inf")
    if _NAN.fullmatch(text):
        return float("nan")
    return text


def tagged_scalar(tag: str, text: str) -> tuple[object, str | None]:
    """A scalar with an explicit tag: its value, or an error message."""
    if tag == "!" or tag == YAML_TAG + "str":
        return text, None
    plain = plain_scalar(text) if text else None
    expected: dict[str, Callable[[object], bool]] = {
        "null": lambda v: v is None,
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    }
    short = tag.removeprefix(YAML_TAG)
    if tag.startswith(YAML_TAG) and short in expected:
        if not expected[short](plain):
            return text, f"is not a valid !!{short}"
        if short == "float" and isinstance(plain, int):
            return float(plain), None
        return plain, None
    return text, f"has the tag {short_tag(tag)}, which is not supported; remove it"


def short_tag(tag: str) -> str:
    shown = f"!!{tag.removeprefix(YAML_TAG)}" if tag.startswith(YAML_TAG) else tag
    return shown if len(shown) <= 40 else shown[:37] + "..."


@cache
def safe_yaml_parser() -> type:
    """ruamel's C parser (ruamel.yaml.clib) when installed, else its pure one, said once under -v."""
    parser: type = YAML(typ="safe").Parser
    if "CParser" not in parser.__name__:
        logging.getLogger("reconciler.yaml_tree").info(
            "the C YAML parser (ruamel.yaml.clib) is not installed: loading is about three times "
            "slower; install ruamel.yaml.clib"
        )
    return parser


def byte_position(raw: bytes, position: object) -> tuple[int, int]:
    if not isinstance(position, int) or position < 0:
        return 0, 0
    before = raw[:position].decode("utf-8", errors="replace")
    line = before.count("\n")
    return line, len(before) - (before.rfind("\n") + 1)


# --- building nodes from parser events


def is_merge_key(node: YamlNode) -> bool:
    return node.kind == "scalar" and node.style == "" and node.scalar == "<<"


def plain_key(node: YamlNode) -> object:
    value = node.to_python()
    try:
        hash(value)
    except TypeError:
        return ("(complex key)", repr(value))
    return value


class _Open:
    """A collection being built."""

    __slots__ = ("anchor", "col", "flow", "is_map", "key", "line", "nodes", "size_at_start", "start")

    def __init__(self, is_map: bool, flow: bool, line: int, col: int, start: int, anchor: str | None) -> None:
        self.is_map = is_map
        self.flow = flow
        self.line = line
        self.col = col
        self.start = start
        self.anchor = anchor
        self.nodes: list[YamlNode] = []
        self.key: YamlNode | None = None
        self.size_at_start = 0


class _NodeBuilder:
    def __init__(self, file: str, text: str, shift: int) -> None:
        self.file = file
        self.text = text
        self.shift = shift
        self.stack: list[_Open] = []
        self.anchors: dict[str, tuple[YamlNode, int]] = {}
        self.open_anchors: set[str] = set()
        self.size = 0
        self.root: YamlNode | None = None
        self.documents = 0

    def fail(self, mark: Any, message: str) -> DesiredFileError:
        return DesiredFileError([Problem(self.file, mark.line + 1, mark.column + 1, "(yaml)", message)])

    def build(self, events: Iterator[Any]) -> YamlNode | None:
        for event in events:
            self.size += 1
            if isinstance(event, ScalarEvent):
                self.add(self.scalar(event), event.anchor)
            elif isinstance(event, MappingStartEvent | SequenceStartEvent):
                self.start(event)
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                self.end(event)
            elif isinstance(event, AliasEvent):
                self.add(self.alias(event), None)
            elif isinstance(event, DocumentStartEvent):
                self.documents += 1
                if self.documents > 1:
                    raise self.fail(event.start_mark, "holds more than one YAML document (---); keep one")
        return self.root

    def scalar(self, event: ScalarEvent) -> YamlNode:
        mark = event.start_mark
        text: str = event.value
        style = event.style or ""
        tag = event.tag
        value: str | int | float | bool | None
        if tag is not None and tag != "!":
            value = _as_scalar(tagged_scalar(tag, text)[0])
        elif style == "" and tag is None:
            value = _as_scalar(plain_scalar(text) if text else None)
        else:
            value = text
        start = mark.index + self.shift
        end = event.end_mark.index + self.shift
        return YamlNode("scalar", mark.line + 1, mark.column + 1, start, end, style, value)

    def start(self, event: MappingStartEvent | SequenceStartEvent) -> None:
        mark = event.start_mark
        if len(self.stack) >= MAX_DEPTH:
            raise self.fail(mark, f"is nested more than {MAX_DEPTH} levels deep")
        anchor = event.anchor
        if anchor is not None:
            self.open_anchors.add(anchor)
        frame = _Open(
            isinstance(event, MappingStartEvent),
            bool(event.flow_style),
            mark.line + 1,
            mark.column + 1,
            mark.index + self.shift,
            anchor,
        )
        frame.size_at_start = self.size
        self.stack.append(frame)

    def end(self, event: MappingEndEvent | SequenceEndEvent) -> None:
        frame = self.stack.pop()
        if frame.flow:
            end = event.end_mark.index + self.shift
        else:
            end = max((node.end for node in frame.nodes), default=frame.start)
        style = "flow" if frame.flow else "block"
        if frame.is_map:
            nodes = frame.nodes
            pairs = tuple((nodes[i], nodes[i + 1]) for i in range(0, len(nodes) - 1, 2))
            node = YamlNode("map", frame.line, frame.col, frame.start, end, style, pairs=pairs)
        else:
            node = YamlNode("seq", frame.line, frame.col, frame.start, end, style, items=tuple(frame.nodes))
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
        self.add(node, None)
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (node, self.size - frame.size_at_start)

    def alias(self, event: AliasEvent) -> YamlNode:
        mark = event.start_mark
        name: str = event.anchor
        if name in self.open_anchors:
            raise self.fail(mark, f"alias *{name} refers to a node that contains it")
        found = self.anchors.get(name)
        if found is None:
            raise self.fail(mark, f"alias *{name} has no anchor &{name} before it")
        node, size = found
        self.size += size
        if self.size > MAX_ALIAS_EXPANSION:
            raise self.fail(mark, "aliases expand to too many nodes; write the entries out")
        return dataclasses.replace(
            node,
            line=mark.line + 1,
            col=mark.column + 1,
            start=mark.index + self.shift,
            end=event.end_mark.index + self.shift,
            alias=True,
            origin=node,
        )

    def add(self, node: YamlNode, anchor: str | None) -> None:
        if node.kind == "scalar" and node.style in ("|", ">"):
            # libyaml ends a block scalar after its trailing line breaks; the span stops at its text.
            kept = self.text[node.start : node.end].rstrip(" \t\r\n")
            node = dataclasses.replace(node, end=node.start + len(kept))
        if anchor is not None:
            self.anchors[anchor] = (node, 1)
        if self.stack:
            self.stack[-1].nodes.append(node)
        else:
            self.root = node


def _as_scalar(value: object) -> str | int | float | bool | None:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
