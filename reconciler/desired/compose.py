"""A desired-state file's bytes built into plain data with positions (ruamel's C parser's events)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from ruamel.yaml import YAML
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

from reconciler.desired.located import Issues, Map, PathKey, Seq, path_text
from reconciler.yaml_tree import (
    MAX_ALIAS_EXPANSION,
    MAX_DEPTH,
    YAML_TAG,
    byte_position,
    plain_scalar,
    safe_yaml_parser,
    short_tag,
    tagged_scalar,
)


class _Frame:
    """A collection being built: a mapping waiting for a key or a value, or a sequence."""

    __slots__ = ("anchor", "container", "is_map", "key", "key_col", "key_line", "merges", "size_at_start")

    def __init__(self, container: Map | Seq, anchor: str | None, size_at_start: int) -> None:
        self.container = container
        self.is_map = isinstance(container, Map)
        self.anchor = anchor
        self.size_at_start = size_at_start
        self.key: object = _NO_KEY
        self.key_line = 0
        self.key_col = 0
        self.merges: list[Map] = []


_NO_KEY = object()
_BAD_KEY = object()
_MERGE_KEY = object()


class _Aborted(Exception):
    """The file cannot be built any further (reported already)."""


class _Builder:
    """Turns parser events into Map/Seq/scalars, reporting duplicate keys, bad tags and aliases."""

    def __init__(self, issues: Issues) -> None:
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
        self.issues.add(line, col, path_text(keys), message)

    def add(self, value: object, line: int, col: int, key_text: str | None) -> None:
        """Attach a finished node to its parent (or make it the document)."""
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        container = frame.container
        if isinstance(container, Seq):
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
        assert isinstance(key, str) and isinstance(container, Map)
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
        sources = value if isinstance(value, Seq) else [value]
        if all(isinstance(source, Map) for source in sources):
            frame.merges.extend(sources)  # type: ignore[arg-type]
        else:
            self.report(
                line, col, "a merge ('<<') takes a mapping or a list of mappings", extra="<<", silence=False
            )

    def finish_map(self, frame: _Frame) -> None:
        container = frame.container
        assert isinstance(container, Map)
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
                self.start(event, Map if cls is MappingStartEvent else Seq)
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
            value = plain_scalar(text) if not event.style else text
        else:
            value, error = tagged_scalar(tag, text)
            if error is not None:
                self.report(line, col, error)
        self.add(value, line, col, None)
        self.record_anchor(event.anchor, value, 1)

    def start(self, event: MappingStartEvent | SequenceStartEvent, kind: type[Map] | type[Seq]) -> None:
        mark = event.start_mark
        tag = event.tag
        if tag is not None and tag != "!" and tag != YAML_TAG + ("map" if kind is Map else "seq"):
            self.report(
                mark.line, mark.column, f"has the tag {short_tag(tag)}, which is not supported; remove it"
            )
        if len(self.stack) >= MAX_DEPTH:
            self.report(mark.line, mark.column, f"is nested more than {MAX_DEPTH} levels deep", silence=False)
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
        if self.size > MAX_ALIAS_EXPANSION:
            self.report(mark.line, mark.column, "aliases expand to too many nodes; write the entries out")
            raise _Aborted
        self.add(value, mark.line, mark.column, value if isinstance(value, str) else None)


def compose(raw: bytes, issues: Issues) -> tuple[object, bool]:
    """Parse the file's bytes into plain data; (root, False) when it cannot be read as YAML."""
    builder = _Builder(issues)
    safe_yaml_parser()
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
        line, col = byte_position(raw, exc.position)
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
