"""The desired-state file, other YAML files: the only ruamel.yaml importer; load, validate, locate, edit."""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
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
from ruamel.yaml.reader import ReaderError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from reconciler import values
from reconciler.desired_policy import MAX_AGE_HINT, is_max_age, max_age_hours, schema_accepts
from reconciler.errors import DesiredFileError, Problem, ReconcilerError
from reconciler.fsutil import atomic_write, read_regular
from reconciler.models import (
    DesiredSecret,
    DesiredState,
    FieldValue,
    Location,
    Prune,
    SecretValue,
    frozen_map,
)

if TYPE_CHECKING:
    import jsonschema

SCHEMA_FILE = Path(__file__).parent / "data" / "desired-state.schema.json"
FORMAT_VERSION = 1
MAX_NAME_CHARS = 1024

# Keys of an entry that DesiredSecret.fields carries (only when the entry states them).
BINDING_FIELDS = ("tool_name", "tool_arg", "is_default_for_tool")
ENTRY_KEYS = (
    "secret_name",
    "secret_value",
    "tool_name",
    "tool_arg",
    "is_default_for_tool",
    "previous_names",
    "protect",
    "secret_id",
    "max_age",
)
TOP_KEYS = ("version", "allow_plaintext", "prune", "workflows", "tool_credentials", "max_age", "secrets")

# Aliases may share one node many times over; past this many expanded nodes the file is refused,
# so that a small file cannot make validation walk billions of nodes.
_MAX_ALIAS_EXPANSION = 1_000_000
# Far deeper than the format goes (4 levels); it keeps every later walk of the data shallow.
_MAX_DEPTH = 64
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_YAML_TAG = "tag:yaml.org,2002:"


class _Map(dict[str, Any]):
    """A mapping read from the file, with where it starts and where each key and value sits (0-based)."""

    __slots__ = ("at", "col", "line")

    def __init__(self, line: int, col: int) -> None:
        super().__init__()
        self.line = line
        self.col = col
        # key -> (key line, key col, value line, value col)
        self.at: dict[str, tuple[int, int, int, int]] = {}


class _Seq(list[Any]):
    """A sequence read from the file, with where it starts and where each item sits (0-based)."""

    __slots__ = ("at", "col", "line")

    def __init__(self, line: int, col: int) -> None:
        super().__init__()
        self.line = line
        self.col = col
        self.at: list[tuple[int, int]] = []


PathKey = str | int


class _Issues:
    """Problems found so far, kept with 0-based positions and sorted into file order at the end."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.items: list[tuple[int, int, int, str, str]] = []
        self.seen: set[tuple[int, int, str, str]] = set()
        # Paths whose node is already reported as unusable: later rules stay quiet about them.
        self.silenced: set[tuple[PathKey, ...]] = set()

    def add(self, line: int, col: int, key: str, message: str) -> None:
        # jsonschema reports some findings once per missing key or branch; each is said once.
        if (line, col, key, message) not in self.seen:
            self.seen.add((line, col, key, message))
            self.items.append((line, col, len(self.items), key, message))

    def is_silenced(self, path: Sequence[PathKey]) -> bool:
        silenced = self.silenced
        return bool(silenced) and any(tuple(path[:end]) in silenced for end in range(len(path) + 1))

    def problems(self) -> list[Problem]:
        return [
            Problem(self.file, line + 1, col + 1, key, msg) for line, col, _, key, msg in sorted(self.items)
        ]

    def __bool__(self) -> bool:
        return bool(self.items)


# ---------------------------------------------------------------------------------------------
# Public interface


def load(path: Path, *, resolve: bool = True, environ: Mapping[str, str] | None = None) -> DesiredState:
    """Read, validate and (unless resolve=False) resolve the desired-state file at `path`.

    Every problem in the file is collected and raised together as one DesiredFileError.
    """
    env: Mapping[str, str] = os.environ if environ is None else environ
    path = Path(path)
    file = str(path)
    raw = _read(path)
    issues = _Issues(file)
    root, ok = _compose(raw, issues)
    if not ok:
        raise DesiredFileError(issues.problems())
    if not isinstance(root, _Map):
        if root is None:
            issues.add(0, 0, "(file)", "is empty; a desired-state file starts with 'version: 1'")
        else:
            line, col = _start(root)
            issues.add(
                line, col, "(file)", f"must be a mapping with 'version: 1' and 'secrets', not {_kind(root)}"
            )
        raise DesiredFileError(issues.problems())
    _validate_schema(root, issues)
    if _future_version(root):
        # Another format version: its other rules are unknown here, so only the version is reported.
        issues.items = [i for i in issues.items if i[3] == "version"]
        raise DesiredFileError(issues.problems())
    resolved = _check_entries(root, issues, resolve=resolve, base_dir=path.parent, environ=env)
    _check_max_ages(root, issues)
    if issues:
        raise DesiredFileError(issues.problems())
    return _build_state(root, file, hashlib.sha256(raw).hexdigest(), resolved)


def locate(path: Path, keys: Sequence[str | int]) -> Location | None:
    """Where the node reached by `keys` (e.g. ("secrets", 3, "secret_name")) sits in the file.

    A mapping key leads to its value's position, an index to the item's position; () is the document.
    None when the file cannot be read or parsed, or the keys lead nowhere.
    """
    path = Path(path)
    try:
        data = YAML(typ="rt").load(read_regular(path))
    except (OSError, YAMLError, ValueError, RecursionError):
        return None
    position: tuple[int, int] | None = (0, 0)
    node: Any = data
    try:
        for key in keys:
            if isinstance(node, CommentedMap) and isinstance(key, str) and key in node:
                position = _rt_position(node.lc.value(key))
                node = node[key]
            elif isinstance(node, CommentedSeq) and isinstance(key, int) and not isinstance(key, bool):
                position = _rt_position(node.lc.item(key))
                node = node[key]
            else:
                return None
    except (KeyError, IndexError):
        # A key merged in with `<<` has no position of its own in this mapping.
        return None
    if position is None:
        return None
    return Location(str(path), position[0] + 1, position[1] + 1)


def _read(path: Path) -> bytes:
    """A YAML file's bytes; a FIFO or a device (which could block or never end) is refused."""
    try:
        return read_regular(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise DesiredFileError(
            [Problem(str(path), 1, 1, "(file)", f"cannot be read ({reason}); check the path")]
        ) from None


@cache
def schema() -> Mapping[str, Any]:
    """The JSON Schema of format v1 (the file editors use too)."""
    loaded: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    return loaded


# ---------------------------------------------------------------------------------------------
# Parsing: libyaml's C parser produces events; this builds plain data with positions from them.
# The round-trip loader is several times slower and is kept off this path.

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


def _plain_scalar(text: str) -> object:
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


def _tagged_scalar(tag: str, text: str) -> tuple[object, str | None]:
    """A scalar with an explicit tag: its value, or an error message."""
    if tag == "!" or tag == _YAML_TAG + "str":
        return text, None
    plain = _plain_scalar(text) if text else None
    expected: dict[str, Callable[[object], bool]] = {
        "null": lambda v: v is None,
        "bool": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    }
    short = tag.removeprefix(_YAML_TAG)
    if tag.startswith(_YAML_TAG) and short in expected:
        if not expected[short](plain):
            return text, f"is not a valid !!{short}"
        if short == "float" and isinstance(plain, int):
            return float(plain), None
        return plain, None
    return text, f"has the tag {_short_tag(tag)}, which is not supported; remove it"


def _short_tag(tag: str) -> str:
    shown = f"!!{tag.removeprefix(_YAML_TAG)}" if tag.startswith(_YAML_TAG) else tag
    return shown if len(shown) <= 40 else shown[:37] + "..."


class _Frame:
    """A collection being built: a mapping waiting for a key or a value, or a sequence."""

    __slots__ = ("anchor", "container", "is_map", "key", "key_col", "key_line", "merges", "size_at_start")

    def __init__(self, container: _Map | _Seq, anchor: str | None, size_at_start: int) -> None:
        self.container = container
        self.is_map = isinstance(container, _Map)
        self.anchor = anchor
        self.size_at_start = size_at_start
        self.key: object = _NO_KEY
        self.key_line = 0
        self.key_col = 0
        self.merges: list[_Map] = []


_NO_KEY = object()
_BAD_KEY = object()
_MERGE_KEY = object()


class _Aborted(Exception):
    """The file cannot be built any further (reported already)."""


class _Builder:
    """Turns parser events into _Map/_Seq/scalars, reporting duplicate keys, bad tags and aliases."""

    def __init__(self, issues: _Issues) -> None:
        self.issues = issues
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[object, int]] = {}
        self.open_anchors: set[str] = set()
        self.size = 0
        self.root: object = None

    def path(self) -> list[PathKey]:
        keys: list[PathKey] = []
        for frame in self.stack:
            if frame.is_map:
                if isinstance(frame.key, str):
                    keys.append(frame.key)
                elif frame.key is _MERGE_KEY:
                    keys.append("<<")
                else:
                    break
            else:
                keys.append(len(frame.container))
        return keys

    def report(
        self, line: int, col: int, message: str, *, extra: PathKey | None = None, silence: bool = True
    ) -> None:
        keys = self.path()
        if extra is not None:
            keys.append(extra)
        if silence:
            # The node is unusable as written: rules that would look at it again stay quiet.
            self.issues.silenced.add(tuple(keys))
        self.issues.add(line, col, _path_text(keys), message)

    def add(self, value: object, line: int, col: int, key_text: str | None) -> None:
        """Attach a finished node to its parent (or make it the document)."""
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        container = frame.container
        if isinstance(container, _Seq):
            container.append(value)
            container.at.append((line, col))
            return
        if frame.key is _NO_KEY:
            if key_text is not None:
                frame.key = key_text
            elif isinstance(value, str):
                frame.key = value
            else:
                self.report(line, col, "mapping keys must be plain text", silence=False)
                frame.key = _BAD_KEY
            frame.key_line, frame.key_col = line, col
            return
        key = frame.key
        frame.key = _NO_KEY
        if key is _BAD_KEY:
            return
        if key is _MERGE_KEY:
            self.merge(frame, value, line, col)
            return
        assert isinstance(key, str) and isinstance(container, _Map)
        if key in container:
            first = container.at[key][0] + 1
            self.report(
                frame.key_line,
                frame.key_col,
                f"duplicate key (first at line {first}); YAML would silently keep only one, remove the other",
                extra=key,
                silence=False,
            )
            return
        container[key] = value
        container.at[key] = (frame.key_line, frame.key_col, line, col)

    def merge(self, frame: _Frame, value: object, line: int, col: int) -> None:
        sources = value if isinstance(value, _Seq) else [value]
        if all(isinstance(source, _Map) for source in sources):
            frame.merges.extend(sources)  # type: ignore[arg-type]
        else:
            self.report(
                line, col, "a merge ('<<') takes a mapping or a list of mappings", extra="<<", silence=False
            )

    def finish_map(self, frame: _Frame) -> None:
        container = frame.container
        assert isinstance(container, _Map)
        # Keys written in the mapping win over merged ones; earlier merged mappings win over later.
        for source in frame.merges:
            for key, item in source.items():
                if key not in container:
                    container[key] = item
                    container.at[key] = source.at[key]

    def build(self, events: Iterator[Any]) -> object:
        documents = 0
        for event in events:
            cls = event.__class__
            self.size += 1
            if cls is ScalarEvent:
                self.scalar(event)
            elif cls is MappingStartEvent or cls is SequenceStartEvent:
                self.start(event, _Map if cls is MappingStartEvent else _Seq)
            elif cls is MappingEndEvent or cls is SequenceEndEvent:
                self.end()
            elif cls is AliasEvent:
                self.alias(event)
            elif cls is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    mark = event.start_mark
                    self.issues.add(
                        mark.line, mark.column, "(file)", "holds more than one YAML document (---); keep one"
                    )
                    raise _Aborted
            elif cls is StreamEndEvent:
                return self.root
            elif cls is not StreamStartEvent and cls is not DocumentEndEvent:
                raise _Aborted
        return self.root

    def scalar(self, event: ScalarEvent) -> None:
        mark = event.start_mark
        line, col = mark.line, mark.column
        text: str = event.value
        tag = event.tag
        frame = self.stack[-1] if self.stack else None
        if frame is not None and frame.is_map and frame.key is _NO_KEY:
            # A key: its text as written, except a plain `<<`, the merge key.
            if tag is None and not event.style and text == "<<":
                frame.key = _MERGE_KEY
                frame.key_line, frame.key_col = line, col
                return
            self.add(text, line, col, text)
            self.record_anchor(event.anchor, text, 1)
            return
        value: object
        if tag is None:
            value = _plain_scalar(text) if not event.style else text
        else:
            value, error = _tagged_scalar(tag, text)
            if error is not None:
                self.report(line, col, error)
        self.add(value, line, col, None)
        self.record_anchor(event.anchor, value, 1)

    def start(self, event: MappingStartEvent | SequenceStartEvent, kind: type[_Map] | type[_Seq]) -> None:
        mark = event.start_mark
        tag = event.tag
        if tag is not None and tag != "!" and tag != _YAML_TAG + ("map" if kind is _Map else "seq"):
            self.report(
                mark.line, mark.column, f"has the tag {_short_tag(tag)}, which is not supported; remove it"
            )
        if len(self.stack) >= _MAX_DEPTH:
            self.report(
                mark.line, mark.column, f"is nested more than {_MAX_DEPTH} levels deep", silence=False
            )
            raise _Aborted
        anchor = event.anchor
        if anchor is not None:
            self.open_anchors.add(anchor)
        self.stack.append(_Frame(kind(mark.line, mark.column), anchor, self.size))

    def end(self) -> None:
        frame = self.stack.pop()
        container = frame.container
        if frame.is_map and frame.merges:
            self.finish_map(frame)
        self.add(container, container.line, container.col, None)
        if frame.anchor is not None:
            self.open_anchors.discard(frame.anchor)
            self.record_anchor(frame.anchor, container, self.size - frame.size_at_start)

    def record_anchor(self, anchor: str | None, value: object, size: int) -> None:
        if anchor is not None:
            self.anchors[anchor] = (value, size)

    def alias(self, event: AliasEvent) -> None:
        mark = event.start_mark
        name: str = event.anchor
        if name in self.open_anchors:
            self.report(mark.line, mark.column, f"alias *{name} refers to a node that contains it")
            self.add(None, mark.line, mark.column, None)
            return
        found = self.anchors.get(name)
        if found is None:
            self.report(mark.line, mark.column, f"alias *{name} has no anchor &{name} before it")
            self.add(None, mark.line, mark.column, None)
            return
        value, size = found
        self.size += size
        if self.size > _MAX_ALIAS_EXPANSION:
            self.report(mark.line, mark.column, "aliases expand to too many nodes; write the entries out")
            raise _Aborted
        self.add(value, mark.line, mark.column, value if isinstance(value, str) else None)


@cache
def _safe_yaml_parser() -> type:
    """ruamel's C parser (ruamel.yaml.clib) when installed, else its pure one, said once under -v."""
    parser: type = YAML(typ="safe").Parser
    if "CParser" not in parser.__name__:
        logging.getLogger("reconciler.desired").info(
            "the C YAML parser (ruamel.yaml.clib) is not installed: loading is about three times "
            "slower; install ruamel.yaml.clib"
        )
    return parser


def _compose(raw: bytes, issues: _Issues) -> tuple[object, bool]:
    """Parse the file's bytes into plain data; (root, False) when it cannot be read as YAML."""
    builder = _Builder(issues)
    _safe_yaml_parser()
    # typ="safe" parses with libyaml's C parser (ruamel.yaml.clib) when it is installed.
    events = YAML(typ="safe").parse(raw)
    try:
        root = builder.build(events)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line, mark.column) if mark is not None else (0, 0)
        # libyaml's messages are fixed phrases and never quote the file's text.
        what = "; ".join(str(part) for part in (exc.problem, exc.context) if part)
        issues.add(line, col, "(yaml)", f"invalid YAML: {what or 'syntax error'}")
        return None, False
    except ReaderError as exc:
        line, col = _byte_position(raw, exc.position)
        issues.add(line, col, "(yaml)", f"cannot be read as YAML: {exc.reason}")
        return None, False
    except (YAMLError, ValueError, UnicodeError):
        issues.add(0, 0, "(yaml)", "cannot be read as YAML text")
        return None, False
    except _Aborted:
        return None, False
    finally:
        events.close()
    return root, True


def _byte_position(raw: bytes, position: object) -> tuple[int, int]:
    if not isinstance(position, int) or position < 0:
        return 0, 0
    before = raw[:position].decode("utf-8", errors="replace")
    line = before.count("\n")
    return line, len(before) - (before.rfind("\n") + 1)


def _rt_position(pair: object) -> tuple[int, int] | None:
    if isinstance(pair, list | tuple) and len(pair) >= 2 and all(isinstance(p, int) for p in pair[:2]):
        return int(pair[0]), int(pair[1])
    return None


# ---------------------------------------------------------------------------------------------
# Schema validation. A hand-written check mirrors the schema exactly (tests prove that on random
# documents) so that valid files never pay for jsonschema; only what fails it is run through the
# validator, and the validator's findings are turned into our own messages (its text quotes values).


def _is_name(value: object) -> bool:
    return isinstance(value, str) and 1 <= len(value) <= MAX_NAME_CHARS


def _is_bool(value: object) -> bool:
    return value is True or value is False


def _secret_value_ok(value: object) -> bool:
    if isinstance(value, str):
        return True
    if not isinstance(value, dict) or len(value) != 1:
        return False
    target = value.get("from_env", _NO_KEY)
    if target is not _NO_KEY:
        # The schema's pattern is matched with re.search, as jsonschema does.
        return isinstance(target, str) and _ENV_PATTERN.search(target) is not None
    target = value.get("from_file", _NO_KEY)
    return isinstance(target, str) and len(target) >= 1


def _names_ok(value: object) -> bool:
    return isinstance(value, list) and all(_is_name(v) for v in value) and len(set(value)) == len(value)


_ENTRY_RULES: dict[str, Callable[[object], bool]] = {
    "secret_name": _is_name,
    "secret_value": _secret_value_ok,
    "tool_name": lambda v: v is None or _is_name(v),
    "tool_arg": lambda v: v is None or _is_name(v),
    "is_default_for_tool": lambda v: v is None or _is_bool(v),
    "previous_names": _names_ok,
    "protect": _is_bool,
    "secret_id": lambda v: isinstance(v, str) and _UUID_PATTERN.search(v) is not None,
    "max_age": schema_accepts,
}


def _entry_conforms(entry: object) -> bool:
    if not isinstance(entry, dict) or "secret_name" not in entry or "secret_value" not in entry:
        return False
    rules = _ENTRY_RULES
    for key, item in entry.items():
        rule = rules.get(key)
        if rule is None or not rule(item):
            return False
    return True


def _prune_ok(value: object) -> bool:
    if _is_bool(value):
        return True
    if not isinstance(value, dict) or list(value) != ["match"]:
        return False
    match = value["match"]
    return isinstance(match, list) and len(match) >= 1 and all(_is_name(m) for m in match)


def _tool_credential_ok(value: object) -> bool:
    if not isinstance(value, dict) or set(value) != {"pattern", "args"}:
        return False
    args = value["args"]
    return _is_name(value["pattern"]) and isinstance(args, list) and all(_is_name(a) for a in args)


_TOP_RULES: dict[str, Callable[[object], bool]] = {
    "version": lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v == FORMAT_VERSION,
    "allow_plaintext": _is_bool,
    "prune": _prune_ok,
    "workflows": lambda v: isinstance(v, list) and all(isinstance(w, str) and len(w) >= 1 for w in v),
    "tool_credentials": lambda v: isinstance(v, list) and all(_tool_credential_ok(e) for e in v),
    "max_age": schema_accepts,
    "secrets": lambda v: v is None or isinstance(v, list),
}


def _top_conforms(root: Mapping[str, object]) -> bool:
    """The top level without looking into `secrets` entries."""
    if "version" not in root:
        return False
    for key, item in root.items():
        rule = _TOP_RULES.get(key)
        if rule is None or not rule(item):
            return False
    return True


def conforms(document: object) -> bool:
    """True when `document` (plain data) satisfies the schema; the fast equivalent of jsonschema."""
    if not isinstance(document, dict) or not _top_conforms(document):
        return False
    secrets = document.get("secrets")
    return secrets is None or all(_entry_conforms(e) for e in secrets)


def _defs() -> dict[str, Any]:
    return {"$schema": schema()["$schema"], "$defs": schema()["$defs"]}


@cache
def _validators() -> tuple[jsonschema.Draft202012Validator, jsonschema.Draft202012Validator]:
    # Only a file that fails the fast check pays for importing jsonschema (a tenth of a second).
    import jsonschema

    top = jsonschema.Draft202012Validator(dict(schema()))
    entry = jsonschema.Draft202012Validator({**_defs(), "$ref": "#/$defs/secret"})
    return top, entry


def _schema_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    entry = schema()["$defs"]["secret"]["properties"]
    env = entry["secret_value"]["anyOf"][1]["properties"]["from_env"]["pattern"]
    return re.compile(env), re.compile(entry["secret_id"]["pattern"])


_PATTERNS = _schema_patterns()
_ENV_PATTERN: re.Pattern[str] = _PATTERNS[0]
_UUID_PATTERN: re.Pattern[str] = _PATTERNS[1]


def _validate_schema(root: _Map, issues: _Issues) -> None:
    secrets = root.get("secrets")
    if not _top_conforms(root):
        # Entries are checked one by one below; the top level is checked without them.
        shallow = {**root, "secrets": []} if isinstance(secrets, list) else dict(root)
        for error in _validators()[0].iter_errors(shallow):
            _report_schema_error(error, (), root, issues)
    if isinstance(secrets, list):
        for index, entry in enumerate(secrets):
            if not _entry_conforms(entry):
                for error in _validators()[1].iter_errors(entry):
                    _report_schema_error(error, ("secrets", index), root, issues)


_TYPE_WORDS = {
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
    "integer": "a whole number",
    "number": "a number",
}
_REQUIRED_HINTS = {
    "version": "start the file with 'version: 1'",
    "secret_name": "every secret needs a name",
    "secret_value": "every secret needs a value reference such as ${NAME}",
    "match": "write prune: {match: [GLOB, ...]}",
    "pattern": "write {pattern: GLOB, args: [ARG, ...]}",
    "args": "write {pattern: GLOB, args: [ARG, ...]}; [] means the tools need no credential",
}
_TYPE_HINTS = {
    "tool_name": "one tool name; a trailing * such as agno__github__* covers a family",
    "prune": "true, false or {match: [GLOB, ...]}",
}


def _report_schema_error(
    error: jsonschema.ValidationError, prefix: tuple[PathKey, ...], root: _Map, issues: _Issues
) -> None:
    path = (*prefix, *error.absolute_path)
    if len(path) >= 3 and path[0] == "secrets" and path[2] == "secret_value":
        # Never a jsonschema message under secret_value: it would quote the value. values.check
        # reports what is wrong there in its own words.
        return
    if issues.is_silenced(path):
        return
    instance = error.instance
    validator = error.validator
    if validator == "additionalProperties" and isinstance(instance, dict):
        rule = error.schema if isinstance(error.schema, Mapping) else {}
        allowed = list(rule.get("properties", {}))
        node = _node_at(root, path)
        for key in instance:
            if key in allowed:
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
            hint = f"did you mean '{close[0]}'?" if close else f"expected one of: {', '.join(allowed)}"
            line, col = _key_position(node, key)
            issues.add(line, col, _path_text([*path, key]), f"unknown key; {hint}")
        return
    if validator == "required" and isinstance(instance, dict):
        line, col = _position(root, path)
        for key in _as_list(error.validator_value):
            if key not in instance:
                hint = _REQUIRED_HINTS.get(key, "it is required")
                issues.add(line, col, _path_text([*path, key]), f"missing; {hint}")
        return
    if validator == "anyOf":
        _report_any_of(error, prefix, root, issues)
        return
    line, col = _position(root, path)
    issues.add(line, col, _path_text(path), _schema_message(error, path))


def _report_any_of(
    error: jsonschema.ValidationError, prefix: tuple[PathKey, ...], root: _Map, issues: _Issues
) -> None:
    """An anyOf (prune): report the branch of the value's own type in detail, else what is expected."""
    path = (*prefix, *error.absolute_path)
    instance = error.instance
    branches = [b for b in _as_list(error.validator_value) if isinstance(b, Mapping)]
    matching = [i for i, branch in enumerate(branches) if _json_type_matches(branch.get("type"), instance)]
    if len(matching) == 1:
        for sub in error.context or ():
            if sub.relative_schema_path and sub.relative_schema_path[0] == matching[0]:
                _report_schema_error(sub, prefix, root, issues)
        return
    line, col = _position(root, path)
    expected = _TYPE_HINTS.get(str(path[-1]) if path else "", "a different kind of value")
    issues.add(line, col, _path_text(path), f"must be {expected}, not {_kind(instance)}")


def _as_list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _json_type_matches(expected: object, instance: object) -> bool:
    names = expected if isinstance(expected, list) else [expected]
    return any(_json_type(instance) == name for name in names)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _schema_message(error: jsonschema.ValidationError, path: tuple[PathKey, ...]) -> str:
    validator = error.validator
    value = error.validator_value
    instance = error.instance
    field = next((p for p in reversed(path) if isinstance(p, str)), "")
    if validator == "type":
        names = value if isinstance(value, list) else [value]
        words: list[str] = []
        for name in names:
            words.extend(["true", "false"] if name == "boolean" else [_TYPE_WORDS.get(str(name), str(name))])
        expected = _either(words)
        hint = _TYPE_HINTS.get(field) if isinstance(path[-1], str) else None
        message = f"must be {expected}{f' ({hint})' if hint else ''}, not {_kind(instance)}"
        if "string" in names and isinstance(instance, bool | int | float):
            message += "; quote it if it is meant as text"
        if "boolean" in names and isinstance(instance, str) and instance.lower() in _YAML11_BOOLEANS:
            message += " (YAML 1.2 reads yes/no/on/off as text)"
        return message
    if validator == "const":
        if field == "version":
            if isinstance(instance, int | float) and not isinstance(instance, bool):
                return (
                    f"version {_short(instance)} is not supported; "
                    f"this reconciler reads version {FORMAT_VERSION}"
                )
            return f"must be the number {FORMAT_VERSION}, not {_kind(instance)}"
        return f"must be {_short(value)}"
    if validator == "minLength":
        if isinstance(instance, str) and not instance:
            return "is empty"
        return f"must be at least {value} characters long"
    if validator == "maxLength":
        length = len(instance) if isinstance(instance, str) else 0
        return f"is {length} characters long; the API accepts at most {value}"
    if validator == "minItems":
        return f"must list at least {value} item{'s' if value != 1 else ''}"
    if validator == "uniqueItems" and isinstance(instance, list):
        seen: set[str] = set()
        for item in instance:
            if isinstance(item, str):
                if item in seen:
                    return f"lists {_short(item)} more than once"
                seen.add(item)
        return "lists an item more than once"
    if validator == "pattern":
        if field == "secret_id":
            return "must be a UUID such as 0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c"
        if field == "max_age":
            return f"must be {MAX_AGE_HINT}, not {_short(instance)}"
        return "does not have the expected form"
    return f"breaks the schema's '{validator}' rule"


_YAML11_BOOLEANS = frozenset({"yes", "no", "on", "off", "y", "n"})


def _either(words: list[str]) -> str:
    """["a", "b", "c"] -> "a, b or c"."""
    if len(words) <= 1:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def _future_version(root: _Map) -> bool:
    version = root.get("version")
    return isinstance(version, int | float) and not isinstance(version, bool) and version != FORMAT_VERSION


# ---------------------------------------------------------------------------------------------
# Rules across entries, and value references.


def _check_entries(
    root: _Map, issues: _Issues, *, resolve: bool, base_dir: Path, environ: Mapping[str, str]
) -> dict[int, SecretValue]:
    secrets = root.get("secrets")
    if not isinstance(secrets, list):
        return {}
    allow_plaintext = root.get("allow_plaintext") is True
    entries = [(i, e) for i, e in enumerate(secrets) if isinstance(e, _Map)]
    _check_names(entries, issues)
    _check_ids(entries, issues)
    _check_defaults(entries, issues)
    resolved: dict[int, SecretValue] = {}
    for index, entry in entries:
        if "secret_value" not in entry or issues.is_silenced(("secrets", index, "secret_value")):
            continue
        ref = entry["secret_value"]
        name = entry.get("secret_name")
        owner = f"secret {_quoted(name)}: " if isinstance(name, str) and _is_name(name) else ""
        line, col = _value_position(entry, "secret_value")
        key = _path_text(["secrets", index, "secret_value"])
        try:
            if resolve:
                resolved[index] = values.resolve(
                    ref, base_dir=base_dir, environ=environ, allow_plaintext=allow_plaintext
                )
            else:
                values.check(ref, allow_plaintext=allow_plaintext)
        except values.LiteralValueError:
            suggestion = values.suggested_env_name(name) if isinstance(name, str) else "NAME"
            issues.add(
                line,
                col,
                key,
                f"{owner}a literal value must not be committed; reference it instead, e.g. "
                f"secret_value: ${{{suggestion}}} (or {{from_env: {suggestion}}}, {{from_file: PATH}}), "
                "or set allow_plaintext: true for demos and tests",
            )
        except values.ValueRefError as exc:
            issues.add(line, col, key, f"{owner}{exc.message}")
    return resolved


def _check_names(entries: list[tuple[int, _Map]], issues: _Issues) -> None:
    owners: dict[str, tuple[int, int]] = {}  # secret_name -> (entry index, line)
    for index, entry in entries:
        name = entry.get("secret_name")
        if not _is_name(name):
            continue
        assert isinstance(name, str)
        line, col = _value_position(entry, "secret_name")
        if name in owners:
            issues.add(
                line,
                col,
                _path_text(["secrets", index, "secret_name"]),
                f"{_quoted(name)} is listed twice (first in the entry at line {owners[name][1] + 1}); "
                "secret names must be unique",
            )
        else:
            owners[name] = (index, entry.line)
    previous: dict[str, tuple[int, int]] = {}  # previous name -> (index, line) of the first entry listing it
    for index, entry in entries:
        names = entry.get("previous_names")
        if not isinstance(names, _Seq):
            continue
        own = entry.get("secret_name")
        for position, old in enumerate(names):
            if not _is_name(old):
                continue
            line, col = names.at[position]
            key = _path_text(["secrets", index, "previous_names", position])
            if old == own:
                issues.add(line, col, key, f"{_quoted(old)} is this entry's own secret_name; remove it")
            elif old in owners and owners[old][0] != index:
                issues.add(
                    line,
                    col,
                    key,
                    f"{_quoted(old)} is the secret_name of the entry at line {owners[old][1] + 1}; "
                    "a name cannot be both current and previous",
                )
            elif old in previous and previous[old][0] != index:
                issues.add(
                    line,
                    col,
                    key,
                    f"{_quoted(old)} is also a previous name of the entry at line {previous[old][1] + 1}; "
                    "a rename needs a single target",
                )
            previous.setdefault(old, (index, entry.line))


def _check_ids(entries: list[tuple[int, _Map]], issues: _Issues) -> None:
    seen: dict[str, int] = {}
    for index, entry in entries:
        secret_id = entry.get("secret_id")
        if not isinstance(secret_id, str) or _UUID_PATTERN.search(secret_id) is None:
            continue
        line, col = _value_position(entry, "secret_id")
        key = _path_text(["secrets", index, "secret_id"])
        if not _UUID.fullmatch(secret_id):
            issues.add(line, col, key, "must be a UUID such as 0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c")
            continue
        canonical = secret_id.lower()
        if canonical in seen:
            issues.add(
                line,
                col,
                key,
                f"is also pinned by the entry at line {seen[canonical] + 1}; ids must be unique",
            )
        else:
            seen[canonical] = entry.line


def _check_max_ages(root: _Map, issues: _Issues) -> None:
    """What the schema's pattern lets through but is no max_age: a value ending in a line break."""
    secrets = root.get("secrets")
    nodes: list[tuple[_Map, list[PathKey]]] = [(root, [])]
    if isinstance(secrets, list):
        nodes += [(e, ["secrets", i]) for i, e in enumerate(secrets) if isinstance(e, _Map)]
    for node, prefix in nodes:
        value = node.get("max_age")
        if schema_accepts(value) and not is_max_age(value):
            line, col = _value_position(node, "max_age")
            issues.add(
                line, col, _path_text([*prefix, "max_age"]), f"must be {MAX_AGE_HINT}, not {_short(value)}"
            )


def _check_defaults(entries: list[tuple[int, _Map]], issues: _Issues) -> None:
    defaults: dict[tuple[object, object], int] = {}
    for index, entry in entries:
        if entry.get("is_default_for_tool") is not True:
            continue
        tool_name, tool_arg = entry.get("tool_name"), entry.get("tool_arg")
        # A default only competes with others for a tool it is bound to.
        if not isinstance(tool_name, str) or not (tool_arg is None or isinstance(tool_arg, str)):
            continue
        line, col = _value_position(entry, "is_default_for_tool")
        binding = (tool_name, tool_arg)
        if binding in defaults:
            issues.add(
                line,
                col,
                _path_text(["secrets", index, "is_default_for_tool"]),
                f"the entry at line {defaults[binding] + 1} is already the default for tool_name "
                f"{_shown(tool_name)} and tool_arg {_shown(tool_arg)}; only one secret can be",
            )
        else:
            defaults[binding] = entry.line


# ---------------------------------------------------------------------------------------------
# The validated document as model values.


def _build_state(root: _Map, file: str, digest: str, resolved: Mapping[int, SecretValue]) -> DesiredState:
    raw_secrets = root.get("secrets") or []
    secrets = tuple(
        _build_secret(entry, file, resolved.get(index)) for index, entry in enumerate(raw_secrets)
    )
    prune_value = root.get("prune", False)
    if isinstance(prune_value, dict):
        prune = Prune(enabled=True, match=tuple(prune_value["match"]))
    else:
        prune = Prune(enabled=bool(prune_value))
    return DesiredState(
        path=file,
        secrets=secrets,
        prune=prune,
        allow_plaintext=root.get("allow_plaintext") is True,
        workflows=tuple(root.get("workflows") or ()),
        tool_credentials=tuple(
            (entry["pattern"], tuple(entry["args"])) for entry in root.get("tool_credentials") or ()
        ),
        digest=digest,
        secrets_empty=not raw_secrets,
        max_age_hours=max_age_hours(root.get("max_age")),
    )


def _build_secret(entry: _Map, file: str, value: SecretValue | None) -> DesiredSecret:
    fields: dict[str, FieldValue] = {key: entry[key] for key in BINDING_FIELDS if key in entry}
    secret_id = entry.get("secret_id")
    return DesiredSecret(
        secret_name=entry["secret_name"],
        fields=frozen_map(fields),
        value=value,
        value_ref=values.describe(entry["secret_value"]),
        previous_names=tuple(entry.get("previous_names") or ()),
        protect=entry.get("protect") is True,
        # The API reports ids in lower case; a pin written in upper case still matches.
        secret_id=str(uuid.UUID(secret_id)) if isinstance(secret_id, str) else None,
        location=Location(file, entry.line + 1, entry.col + 1),
        max_age_hours=max_age_hours(entry.get("max_age")),
    )


# ---------------------------------------------------------------------------------------------
# Positions and printable paths.


def _path_text(keys: Sequence[PathKey]) -> str:
    text = ""
    for key in keys:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            shown = key if key.isprintable() else repr(key)
            text += f".{shown}" if text else shown
    return text or "(file)"


def _node_at(root: object, path: Sequence[PathKey]) -> object:
    node = root
    for key in path:
        in_map = isinstance(node, dict) and isinstance(key, str) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if not (in_map or in_list):
            return None
        node = node[key]  # type: ignore[index]
    return node


def _position(root: _Map, path: Sequence[PathKey]) -> tuple[int, int]:
    """The position of the node at `path` (a value, an item, or the root)."""
    if not path:
        return root.line, root.col
    parent = _node_at(root, path[:-1])
    last = path[-1]
    if isinstance(parent, _Map) and isinstance(last, str) and last in parent.at:
        where = parent.at[last]
        return where[2], where[3]
    if isinstance(parent, _Seq) and isinstance(last, int) and 0 <= last < len(parent.at):
        return parent.at[last]
    return _start(parent)


def _key_position(node: object, key: str) -> tuple[int, int]:
    if isinstance(node, _Map) and key in node.at:
        where = node.at[key]
        return where[0], where[1]
    return _start(node)


def _value_position(entry: _Map, key: str) -> tuple[int, int]:
    where = entry.at.get(key)
    return (where[2], where[3]) if where else (entry.line, entry.col)


def _start(node: object) -> tuple[int, int]:
    if isinstance(node, _Map | _Seq):
        return node.line, node.col
    return 0, 0


def _kind(value: object) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _quoted(text: str) -> str:
    """'name' in single quotes, or Python's quoting when the name does not print on one line."""
    return f"'{text}'" if text.isprintable() else repr(text)


def _short(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


def _shown(value: object) -> str:
    return "(none)" if value is None else _short(value)


# ---------------------------------------------------------------------------------------------
# Any YAML file (io.net workflows, the tool catalogue): a tree of nodes that knows where each node
# sits in the text, and edits made on the text itself, so that every byte outside the edited nodes
# (comments, order, quoting, indentation) stays exactly as written.


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
        own = [pair for pair in self.pairs if not _is_merge_key(pair[0])]
        seen = {key.scalar for key, _ in own if key.kind == "scalar"}
        merged: list[tuple[YamlNode, YamlNode]] = []
        for key, value in self.pairs:
            if not _is_merge_key(key):
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
        return {_plain_key(key): value.to_python() for key, value in self.entries()}


@dataclass(frozen=True)
class YamlDocument:
    """A YAML file's text and its root node (None for an empty document)."""

    file: str
    text: str = dataclasses.field(repr=False)
    root: YamlNode | None = dataclasses.field(repr=False)


@dataclass(frozen=True)
class RemoveKeys:
    """Edit: remove the entries of these keys from a mapping (a mapping left empty becomes {})."""

    mapping: YamlNode
    keys: tuple[str, ...]


@dataclass(frozen=True)
class ReplaceScalar:
    """Edit: give a scalar a new text value, written in the scalar's own quoting style when possible."""

    node: YamlNode
    value: str


@dataclass(frozen=True)
class ReplaceWithItem:
    """Edit: replace a sequence with one of its items as written, e.g. [tool, {}] with tool."""

    node: YamlNode
    index: int


YamlEdit = RemoveKeys | ReplaceScalar | ReplaceWithItem


def read_yaml(path: Path) -> YamlDocument:
    """Read any YAML file into nodes with positions; DesiredFileError when it cannot be read or parsed."""
    path = Path(path)
    file = str(path)
    raw = _read(path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line, col = _byte_position(raw, exc.start)
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


def edit_yaml(document: YamlDocument, edits: Sequence[YamlEdit]) -> str:
    """The document's text with `edits` made in place; every other byte is kept as it was.

    The result is parsed again and must hold exactly the data the edits describe; when it does not
    (the node is shared through an anchor or a merge key, or written in a layout this cannot edit),
    DesiredFileError names the node and nothing is changed.
    """
    text = document.text
    replacements: list[tuple[int, int, str, YamlNode]] = []
    for edit in edits:
        for start, end, new in _replacements(document, edit):
            replacements.append((start, end, new, _edit_node(edit)))
    replacements.sort(key=lambda r: (r[0], r[1]))
    for before, after in itertools.pairwise(replacements):
        if after[0] < before[1]:
            raise _edit_error(document, after[3], "overlaps another edit of the same node")
    pieces: list[str] = []
    position = 0
    for start, end, new, _node in replacements:
        pieces.append(text[position:start])
        pieces.append(new)
        position = end
    pieces.append(text[position:])
    result = "".join(pieces)
    if document.root is not None and edits:
        expected = _expected(document.root, {id(_edit_node(e)): e for e in edits})
        try:
            edited = parse_yaml(result, document.file).root
        except DesiredFileError:
            edited = None
        if edited is None or not _same(edited.to_python(), expected):
            raise _refused(document, edits)
    return result


_REFUSED = (
    "cannot be changed in place without changing other parts of the file (an anchor, a merge key, or "
    "a layout this cannot edit); edit it by hand"
)


def _refused(document: YamlDocument, edits: Sequence[YamlEdit]) -> DesiredFileError:
    """The error naming each edit that fails on its own (the first edit when only the mix fails)."""
    failing: list[YamlNode] = []
    if len(edits) > 1:
        for edit in edits:
            try:
                edit_yaml(document, [edit])
            except DesiredFileError:
                failing.append(_edit_node(edit))
    nodes = failing or [_edit_node(edits[0])]
    return DesiredFileError([Problem(document.file, n.line, n.col, "(edit)", _REFUSED) for n in nodes])


def write_atomic(path: Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through a temporary file and a rename; keeps the file's mode."""
    path = Path(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    except OSError as exc:
        raise ReconcilerError(f"cannot write {path} ({exc.strerror}); check its permissions") from None
    try:
        atomic_write(path, text.encode("utf-8"), mode=mode)
    except OSError as exc:
        raise ReconcilerError(f"cannot write {path} ({exc.strerror}); check its permissions") from None


def append_secrets(path: Path, entries: Sequence[Mapping[str, object]], *, dry_run: bool = False) -> str:
    """Append `entries` to the `secrets:` list of the desired-state file at `path`; return the new text.

    A missing file is created with `version: 1`. Everything already in the file (comments, order,
    quoting, indentation) is kept byte for byte. Each entry's `secret_value` must be a reference
    such as "${GITHUB_TOKEN}": a literal value is refused, so no value is ever written. A name already
    in the file is refused too. The file is replaced atomically unless `dry_run`.
    """
    path = Path(path)
    file = str(path)
    plain = [_entry_data(entry, file) for entry in entries]
    document = read_yaml(path) if path.exists() else YamlDocument(file, "", None)
    new_text = _appended_text(document, plain)
    if not dry_run and plain:
        write_atomic(path, new_text)
    return new_text


# --- building nodes from parser events


def _is_merge_key(node: YamlNode) -> bool:
    return node.kind == "scalar" and node.style == "" and node.scalar == "<<"


def _plain_key(node: YamlNode) -> object:
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
            value = _as_scalar(_tagged_scalar(tag, text)[0])
        elif style == "" and tag is None:
            value = _as_scalar(_plain_scalar(text) if text else None)
        else:
            value = text
        start = mark.index + self.shift
        end = event.end_mark.index + self.shift
        return YamlNode("scalar", mark.line + 1, mark.column + 1, start, end, style, value)

    def start(self, event: MappingStartEvent | SequenceStartEvent) -> None:
        mark = event.start_mark
        if len(self.stack) >= _MAX_DEPTH:
            raise self.fail(mark, f"is nested more than {_MAX_DEPTH} levels deep")
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
        if self.size > _MAX_ALIAS_EXPANSION:
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


# --- edits made on the text


def _edit_node(edit: YamlEdit) -> YamlNode:
    return edit.mapping if isinstance(edit, RemoveKeys) else edit.node


def _edit_error(document: YamlDocument, node: YamlNode, message: str) -> DesiredFileError:
    return DesiredFileError([Problem(document.file, node.line, node.col, "(edit)", message)])


def _next_line(text: str, end: int) -> int:
    """The start of the line after the one holding text[end - 1] (the end of the text if none)."""
    found = text.find("\n", max(end, 1) - 1)
    return len(text) if found < 0 else found + 1


def _line_start(text: str, position: int) -> int:
    return text.rfind("\n", 0, position) + 1


def _pair_end(pair: tuple[YamlNode, YamlNode]) -> int:
    return max(pair[0].end, pair[1].end)


_REST_OF_FLOW_LINE = re.compile(r"[ \t]*,?[ \t]*(?:#[^\n]*)?(?:\n|$)")


def _alone_on_lines(text: str, pair: tuple[YamlNode, YamlNode]) -> bool:
    """Whether a flow entry has its lines to itself: nothing before its key, only a comma after."""
    key = pair[0]
    before = text[_line_start(text, key.start) : key.start]
    return not before.strip() and _REST_OF_FLOW_LINE.match(text, _pair_end(pair)) is not None


def _replacements(document: YamlDocument, edit: YamlEdit) -> list[tuple[int, int, str]]:
    node = _edit_node(edit)
    if node.alias:
        raise _edit_error(document, node, "is an alias (*name) of a node written elsewhere; edit it by hand")
    text = document.text
    if isinstance(edit, RemoveKeys):
        if node.kind != "map":
            raise _edit_error(document, node, "is not a mapping")
        return _remove_keys(document, node, edit.keys)
    if isinstance(edit, ReplaceWithItem):
        if node.kind != "seq" or not 0 <= edit.index < len(node.items):
            raise _edit_error(document, node, f"is not a sequence with an item {edit.index}")
        item = node.items[edit.index]
        return [(node.start, node.end, text[item.start : item.end])]
    if node.kind != "scalar":
        raise _edit_error(document, node, "is not a scalar")
    start = node.start
    if text[start : start + 1] in ("&", "!"):
        # An anchor or a tag comes first; only the scalar after it is replaced.
        if node.style not in ("'", '"'):
            raise _edit_error(document, node, "carries an anchor or tag; edit it by hand")
        start = text.index(node.style, start, node.end)
    return [(start, node.end, _render_scalar(edit.value, node.style))]


def _remove_keys(document: YamlDocument, node: YamlNode, keys: Sequence[str]) -> list[tuple[int, int, str]]:
    text = document.text
    pairs = node.pairs
    wanted = set(keys)
    removed = [
        i
        for i, (key, _value) in enumerate(pairs)
        if key.kind == "scalar"
        and isinstance(key.scalar, str)
        and key.scalar in wanted
        and not _is_merge_key(key)
    ]
    missing = wanted - {pairs[i][0].scalar for i in removed}
    if missing:
        raise _edit_error(
            document,
            node,
            f"has no key {_quoted(sorted(missing)[0])} of its own (a merge key?); edit it by hand",
        )
    if len(removed) == len(pairs):
        return [(node.start, node.end, "{}")]
    runs: list[list[int]] = []
    for index in removed:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    result: list[tuple[int, int, str]] = []
    for run in runs:
        first, last = run[0], run[-1]
        following = last + 1 if last + 1 < len(pairs) else None
        first_key = pairs[first][0]
        if node.style == "flow":
            if all(_alone_on_lines(text, pairs[i]) for i in run):
                # A multi-line flow mapping with one entry a line: those lines go, as in a block.
                result.extend(
                    (_line_start(text, pairs[i][0].start), _next_line(text, _pair_end(pairs[i])), "")
                    for i in run
                )
                continue
            if following is not None:
                # `a: 1, b: 2` -> `b: 2`: the entry and its comma up to the next key.
                result.append((first_key.start, pairs[following][0].start, ""))
            else:
                # The last entries: from the end of the kept one before them, its comma included.
                result.append((_pair_end(pairs[first - 1]), _pair_end(pairs[last]), ""))
            continue
        line_start = _line_start(text, first_key.start)
        if not text[line_start : first_key.start].strip():
            # Each entry starts its own line: its lines go, with any comment at their end.
            result.extend(
                (_line_start(text, pairs[i][0].start), _next_line(text, _pair_end(pairs[i])), "") for i in run
            )
            continue
        # The first key shares its line with a `- `: the next kept key moves up onto that line.
        # Whole-line comments between them stay, just above it.
        assert following is not None
        next_key = pairs[following][0]
        between = text[_next_line(text, _pair_end(pairs[last])) : _line_start(text, next_key.start)]
        comments = "".join(
            line for line in between.splitlines(keepends=True) if line.lstrip().startswith("#")
        )
        result.append((line_start, next_key.start, comments + text[line_start : first_key.start]))
    return result


_SAFE_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./@+=-]*")


def _render_scalar(value: str, style: str) -> str:
    if style == "" and _SAFE_PLAIN.fullmatch(value) and _plain_scalar(value) == value:
        return value
    if style in ("", "'") and value.isprintable():
        return "'" + value.replace("'", "''") + "'"
    return json.dumps(value, ensure_ascii=False)


def _expected(node: YamlNode, edits: Mapping[int, YamlEdit]) -> object:
    """The data `node` should hold once `edits` are made."""
    # An edit of an anchored node shows through every alias of it.
    edit = edits.get(id(node.origin if node.origin is not None else node))
    if isinstance(edit, ReplaceScalar):
        return edit.value
    if isinstance(edit, ReplaceWithItem):
        return _expected(node.items[edit.index], edits)
    if node.kind == "scalar":
        return node.scalar
    if node.kind == "seq":
        return [_expected(item, edits) for item in node.items]
    if isinstance(edit, RemoveKeys):
        gone = set(edit.keys)
        node = dataclasses.replace(
            node,
            pairs=tuple(
                (key, value)
                for key, value in node.pairs
                if not (key.kind == "scalar" and key.scalar in gone and not _is_merge_key(key))
            ),
        )
    return {_plain_key(key): _expected(value, edits) for key, value in node.entries()}


def _same(left: object, right: object) -> bool:
    """Equal data, telling True from 1 and 1 from 1.0, with NaN equal to itself."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return left == right


# --- appending entries to a desired-state file


def _plain_data(value: object) -> object:
    if isinstance(value, Mapping):
        return {str(k): _plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_data(v) for v in value]
    return value


def _entry_data(entry: Mapping[str, object], file: str) -> dict[str, object]:
    data = _plain_data(entry)
    assert isinstance(data, dict)
    name = data.get("secret_name")
    if not _is_name(name):
        raise ReconcilerError(f"cannot add an entry without a valid secret_name to {file}")
    assert isinstance(name, str)
    try:
        values.check(data.get("secret_value"), allow_plaintext=False)
    except values.LiteralValueError:
        raise values.LiteralValueError(
            f"secret {_quoted(name)}: secret_value must be a reference such as ${{NAME}}, "
            f"{{from_env: NAME}} or {{from_file: PATH}}; a literal value is never written into {file}"
        ) from None
    except values.ValueRefError as exc:
        raise values.ValueRefError(f"secret {_quoted(name)}: secret_value {exc.message}") from None
    return data


def _appended_text(document: YamlDocument, entries: list[dict[str, object]]) -> str:
    text = document.text
    if not entries:
        return text
    newline = "\r\n" if "\r\n" in text else "\n"
    root = document.root
    if root is None:
        prefix = text if not text or text.endswith("\n") else text + newline
        new = prefix + f"version: {FORMAT_VERSION}{newline}secrets:{newline}"
        new += _render_items(entries, 2, 2, newline, separate=False)
        expected: dict[object, object] = {"version": FORMAT_VERSION, "secrets": entries}
        return _checked(document, new, expected)
    if root.kind != "map":
        raise DesiredFileError(
            [
                Problem(
                    document.file,
                    root.line,
                    root.col,
                    "(file)",
                    "is not a desired-state file; no secrets added",
                )
            ]
        )
    secrets = root.get("secrets")
    if secrets is not None and not (
        secrets.kind == "seq" or (secrets.kind == "scalar" and secrets.scalar is None)
    ):
        raise DesiredFileError(
            [Problem(document.file, secrets.line, secrets.col, "secrets", "must be a list; no secrets added")]
        )
    existing = secrets.items if secrets is not None else ()
    _refuse_duplicates(document, existing, entries)
    data = root.to_python()
    assert isinstance(data, dict)
    expected = {**data, "secrets": [*(item.to_python() for item in existing), *entries]}
    spliced = _splice_entries(document, root, secrets, entries, newline)
    if spliced is not None:
        try:
            return _checked(document, spliced, expected)
        except DesiredFileError:
            pass
    return _checked(document, _roundtrip_append(document, entries), expected)


def _refuse_duplicates(
    document: YamlDocument, existing: Sequence[YamlNode], entries: list[dict[str, object]]
) -> None:
    listed: dict[object, YamlNode] = {}
    for item in existing:
        node = item.get("secret_name") if item.kind == "map" else None
        if node is not None:
            listed.setdefault(node.scalar, node)
    added: set[object] = set()
    for entry in entries:
        name = entry["secret_name"]
        where = listed.get(name)
        if where is not None:
            message = f"{_quoted(str(name))} is already listed; choose another name for the new entry"
            raise DesiredFileError([Problem(document.file, where.line, where.col, "secret_name", message)])
        if name in added:
            raise ReconcilerError(f"two new entries for {document.file} are named {_quoted(str(name))}")
        added.add(name)


def _checked(document: YamlDocument, new: str, expected: dict[object, object]) -> str:
    try:
        root = parse_yaml(new, document.file).root
    except DesiredFileError:
        root = None
    if root is None or not _same(root.to_python(), _plain_data(expected)):
        raise DesiredFileError(
            [
                Problem(
                    document.file,
                    1,
                    1,
                    "secrets",
                    "cannot add entries to this file's layout; add them by hand",
                )
            ]
        )
    return new


def _splice_entries(
    document: YamlDocument,
    root: YamlNode,
    secrets: YamlNode | None,
    entries: list[dict[str, object]],
    newline: str,
) -> str | None:
    """The text with entries inserted after the last secret; None for layouts left to the round trip."""
    text = document.text
    if root.style == "flow" or root.alias:
        return None
    if secrets is None or secrets.alias:
        if any(_is_merge_key(key) for key, _ in root.pairs):
            return None
        indent = root.col - 1
        prefix = text if text.endswith("\n") else text + newline
        block = " " * indent + "secrets:" + newline
        return prefix + block + _render_items(entries, indent + 2, 2, newline, separate=False)
    key = next((k for k, v in root.pairs if v is secrets), None)
    if key is None:
        return None
    if secrets.kind == "scalar" or (secrets.style == "flow" and not secrets.items):
        # `secrets:`, `secrets: null` or `secrets: []`: the value goes, the list follows the line.
        after = _next_line(text, secrets.end)
        head = text[: secrets.start] + text[secrets.end : after]
        if not head.endswith("\n"):
            head += newline
        items = _render_items(entries, key.col - 1 + 2, 2, newline, separate=False)
        return head + items + text[after:]
    if secrets.style == "flow":
        return None
    dash = secrets.col - 1
    first = secrets.items[0]
    gap = first.col - secrets.col if first.line == secrets.line and first.col > secrets.col else 2
    separate = False
    if len(secrets.items) > 1:
        second_line = _line_start(text, secrets.items[1].start)
        previous_line = text[_line_start(text, max(second_line - 1, 0)) : second_line]
        separate = not previous_line.strip()
    position = _next_line(text, secrets.end)
    # Comment lines indented under the last entry belong to it: the new entries go after them.
    scan = position
    while scan < len(text):
        line_end = _next_line(text, scan + 1)
        line = text[scan:line_end]
        stripped = line.strip()
        if stripped.startswith("#") and len(line) - len(line.lstrip(" ")) > dash:
            position = scan = line_end
        elif not stripped:
            scan = line_end
        else:
            break
    head = text[:position]
    if not head.endswith("\n"):
        head += newline
    return head + _render_items(entries, dash, gap, newline, separate=separate) + text[position:]


def _dumper() -> YAML:
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096
    # An explicit null reads as "must be empty" in this format; it is written out, not left blank.
    yaml.representer.add_representer(
        type(None), lambda rep, _data: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def _render_items(
    entries: list[dict[str, object]], dash: int, gap: int, newline: str, *, separate: bool
) -> str:
    yaml = _dumper()
    out: list[str] = []
    for entry in entries:
        buffer = io.StringIO()
        yaml.dump(_commented(entry), buffer)
        lines = buffer.getvalue().splitlines()
        if separate:
            out.append(newline)
        out.append(" " * dash + "-" + " " * (gap - 1) + lines[0] + newline)
        out.extend(" " * (dash + gap) + line + newline for line in lines[1:])
    return "".join(out)


def _commented(value: object, depth: int = 0) -> object:
    # Entries are block mappings; what nests inside them is written in flow style, as in
    # `secret_value: {from_env: NAME}` and `previous_names: [old-name]`.
    if isinstance(value, dict):
        mapping = CommentedMap((k, _commented(v, depth + 1)) for k, v in value.items())
        if depth:
            mapping.fa.set_flow_style()
        return mapping
    if isinstance(value, list):
        sequence = CommentedSeq(_commented(v, depth + 1) for v in value)
        if depth:
            sequence.fa.set_flow_style()
        return sequence
    if isinstance(value, str) and "*" in value:
        # A tool_name wildcard reads at a glance as one when it is quoted.
        return DoubleQuotedScalarString(value)
    return value


def _roundtrip_append(document: YamlDocument, entries: list[dict[str, object]]) -> str:
    yaml = _dumper()
    yaml.preserve_quotes = True
    try:
        data = yaml.load(document.text)
    except (YAMLError, ValueError) as exc:
        raise DesiredFileError(
            [Problem(document.file, 1, 1, "(yaml)", "cannot be read as YAML text")]
        ) from exc
    if not isinstance(data, CommentedMap):
        raise DesiredFileError([Problem(document.file, 1, 1, "(file)", "is not a desired-state file")])
    secrets = data.get("secrets")
    if not isinstance(secrets, CommentedSeq):
        secrets = CommentedSeq()
        data["secrets"] = secrets
    for entry in entries:
        secrets.append(_commented(entry))
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
