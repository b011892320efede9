"""Edits of YAML text in place and new list items: every byte outside the change (comments, order) is kept."""

from __future__ import annotations

import io
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from reconciler.errors import DesiredFileError, Problem
from reconciler.text import quoted
from reconciler.yaml_scalars import plain_scalar
from reconciler.yaml_tree import YamlDocument, YamlNode, is_merge_key, parse_yaml, plain_key


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
        and not is_merge_key(key)
    ]
    missing = wanted - {pairs[i][0].scalar for i in removed}
    if missing:
        raise _edit_error(
            document,
            node,
            f"has no key {quoted(sorted(missing)[0])} of its own (a merge key?); edit it by hand",
        )
    if len(removed) == len(pairs):
        return [(node.start, node.end, "{}")]
    runs: list[list[int]] = []
    for index in removed:
        if runs and runs[-1][-1] == index - 1:
            runs[-1].append(index)
        else:
            runs.append([index])
    return [span for run in runs for span in _remove_run(text, node, run)]


def _remove_run(text: str, node: YamlNode, run: list[int]) -> list[tuple[int, int, str]]:
    """The replacements that remove the adjacent entries `run` of the mapping `node`."""
    pairs = node.pairs
    first, last = run[0], run[-1]
    following = last + 1 if last + 1 < len(pairs) else None
    first_key = pairs[first][0]
    whole_lines = [
        (_line_start(text, pairs[i][0].start), _next_line(text, _pair_end(pairs[i])), "") for i in run
    ]
    if node.style == "flow":
        if all(_alone_on_lines(text, pairs[i]) for i in run):
            # A multi-line flow mapping with one entry a line: those lines go, as in a block.
            return whole_lines
        if following is not None:
            # `a: 1, b: 2` -> `b: 2`: the entry and its comma up to the next key.
            return [(first_key.start, pairs[following][0].start, "")]
        # The last entries: from the end of the kept one before them, its comma included.
        return [(_pair_end(pairs[first - 1]), _pair_end(pairs[last]), "")]
    first_line = _line_start(text, first_key.start)
    if not text[first_line : first_key.start].strip():
        # Each entry starts its own line: its lines go, with any comment at their end.
        return whole_lines
    # The first key shares its line with a `- `: the next kept key moves up onto that line.
    # Whole-line comments between them stay, just above it.
    assert following is not None
    next_key = pairs[following][0]
    between = text[_next_line(text, _pair_end(pairs[last])) : _line_start(text, next_key.start)]
    comments = "".join(line for line in between.splitlines(keepends=True) if line.lstrip().startswith("#"))
    return [(first_line, next_key.start, comments + text[first_line : first_key.start])]


_SAFE_PLAIN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_./@+=-]*")


def _render_scalar(value: str, style: str) -> str:
    if style == "" and _SAFE_PLAIN.fullmatch(value) and plain_scalar(value) == value:
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
        node = node._replace(
            pairs=tuple(
                (key, value)
                for key, value in node.pairs
                if not (key.kind == "scalar" and key.scalar in gone and not is_merge_key(key))
            ),
        )
    return {plain_key(key): _expected(value, edits) for key, value in node.entries()}


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


# --- new items appended to a list


def append_items(
    document: YamlDocument,
    key: str,
    items: Sequence[Mapping[str, object]],
    expected: Mapping[str, object],
    *,
    head: Sequence[str] = (),
) -> str:
    """The text with `items` appended to the list under the root mapping's `key`, all else kept.

    The root must be a mapping (or the document empty: then `head` lines come first) and `key`
    missing, empty or a list. The items are written after the last one in the list's own layout
    when it allows, else through ruamel's round trip (which keeps comments). The new text must read
    back as `expected`; when it does not, DesiredFileError and nothing is returned.
    """
    text = document.text
    newline = "\r\n" if "\r\n" in text else "\n"
    root = document.root
    if root is None:
        prefix = text if not text or text.endswith("\n") else text + newline
        new = prefix + "".join(line + newline for line in (*head, f"{key}:"))
        return _checked(document, new + _render_items(items, 2, 2, newline, separate=False), key, expected)
    spliced = _splice_items(document, root, key, items, newline)
    if spliced is not None:
        try:
            return _checked(document, spliced, key, expected)
        except DesiredFileError:
            pass
    return _checked(document, _roundtrip_append(document, key, items), key, expected)


def plain_data(value: object) -> object:
    """`value` with every mapping a dict with text keys and every sequence a list."""
    if isinstance(value, Mapping):
        return {str(k): plain_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(v) for v in value]
    return value


def _checked(document: YamlDocument, new: str, key: str, expected: Mapping[str, object]) -> str:
    try:
        root = parse_yaml(new, document.file).root
    except DesiredFileError:
        root = None
    if root is None or not _same(root.to_python(), plain_data(expected)):
        message = "cannot add entries to this file's layout; add them by hand"
        raise DesiredFileError([Problem(document.file, 1, 1, key, message)])
    return new


def _splice_items(
    document: YamlDocument, root: YamlNode, key: str, items: Sequence[Mapping[str, object]], newline: str
) -> str | None:
    """The text with items inserted after the list's last one; None for layouts left to the round trip."""
    text = document.text
    if root.style == "flow" or root.alias:
        return None
    found = root.get(key)
    if found is None or found.alias:
        if any(is_merge_key(k) for k, _ in root.pairs):
            return None
        indent = root.col - 1
        prefix = text if text.endswith("\n") else text + newline
        block = " " * indent + f"{key}:" + newline
        return prefix + block + _render_items(items, indent + 2, 2, newline, separate=False)
    key_node = next((k for k, v in root.pairs if v is found), None)
    if key_node is None:
        return None
    if found.kind == "scalar" or (found.style == "flow" and not found.items):
        # `key:`, `key: null` or `key: []`: the value goes, the list follows the line.
        after = _next_line(text, found.end)
        head = text[: found.start] + text[found.end : after]
        if not head.endswith("\n"):
            head += newline
        return head + _render_items(items, key_node.col - 1 + 2, 2, newline, separate=False) + text[after:]
    if found.style == "flow":
        return None
    dash = found.col - 1
    first = found.items[0]
    gap = first.col - found.col if first.line == found.line and first.col > found.col else 2
    separate = False
    if len(found.items) > 1:
        second_line = _line_start(text, found.items[1].start)
        previous_line = text[_line_start(text, max(second_line - 1, 0)) : second_line]
        separate = not previous_line.strip()
    position = _after_last_item(text, found, dash)
    head = text[:position]
    if not head.endswith("\n"):
        head += newline
    return head + _render_items(items, dash, gap, newline, separate=separate) + text[position:]


def _after_last_item(text: str, sequence: YamlNode, dash: int) -> int:
    """Where new items go: after the last one and the comment lines indented under it."""
    position = _next_line(text, sequence.end)
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
    return position


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
    items: Sequence[Mapping[str, object]], dash: int, gap: int, newline: str, *, separate: bool
) -> str:
    yaml = _dumper()
    out: list[str] = []
    for item in items:
        buffer = io.StringIO()
        yaml.dump(_commented(item), buffer)
        lines = buffer.getvalue().splitlines()
        if separate:
            out.append(newline)
        out.append(" " * dash + "-" + " " * (gap - 1) + lines[0] + newline)
        out.extend(" " * (dash + gap) + line + newline for line in lines[1:])
    return "".join(out)


def _commented(value: object, depth: int = 0) -> object:
    # Items are block mappings; what nests inside them is written in flow style, as in
    # `secret_value: {from_env: NAME}` and `previous_names: [old-name]`.
    if isinstance(value, Mapping):
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


def _roundtrip_append(document: YamlDocument, key: str, items: Sequence[Mapping[str, object]]) -> str:
    yaml = _dumper()
    yaml.preserve_quotes = True
    try:
        data = yaml.load(document.text)
    except (YAMLError, ValueError) as exc:
        raise DesiredFileError(
            [Problem(document.file, 1, 1, "(yaml)", "cannot be read as YAML text")]
        ) from exc
    if not isinstance(data, CommentedMap):
        raise DesiredFileError([Problem(document.file, 1, 1, "(file)", "is not a mapping")])
    sequence = data.get(key)
    if not isinstance(sequence, CommentedSeq):
        sequence = CommentedSeq()
        data[key] = sequence
    for item in items:
        sequence.append(_commented(item))
    buffer = io.StringIO()
    yaml.dump(data, buffer)
    return buffer.getvalue()
