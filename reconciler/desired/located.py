"""Plain data read from a desired-state file with its positions, the problems found in it, and paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reconciler.errors import Problem
from reconciler.text import shown
from reconciler.yaml_tree import PathKey


class Map(dict[str, Any]):
    """A mapping read from the file, with where it starts and where each key and value sits (0-based)."""

    __slots__ = ("at", "col", "line")

    def __init__(self, line: int, col: int) -> None:
        super().__init__()
        self.line = line
        self.col = col
        # key -> (key line, key col, value line, value col)
        self.at: dict[str, tuple[int, int, int, int]] = {}


class Seq(list[Any]):
    """A sequence read from the file, with where it starts and where each item sits (0-based)."""

    __slots__ = ("at", "col", "line")

    def __init__(self, line: int, col: int) -> None:
        super().__init__()
        self.line = line
        self.col = col
        self.at: list[tuple[int, int]] = []


class Unlocated(Exception):
    """A problem was found on the pass that keeps no positions: read the file again with them."""


class Issues:
    """Problems found so far, kept with 0-based positions and sorted into file order at the end.

    `located=False`: the pass over a file expected to be valid keeps no positions (most of the memory
    of reading it), and the first problem raises Unlocated, so that the file is read again with them.
    """

    def __init__(self, file: str, *, located: bool = True) -> None:
        self.file = file
        self.located = located
        self.items: list[tuple[int, int, int, str, str]] = []
        self.seen: set[tuple[int, int, str, str]] = set()
        # Paths whose node is already reported as unusable: later rules stay quiet about them.
        self.silenced: set[tuple[PathKey, ...]] = set()

    def need_positions(self) -> None:
        if not self.located:
            raise Unlocated

    def add(self, line: int, col: int, key: str, message: str) -> None:
        self.need_positions()
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


def path_text(keys: Sequence[PathKey]) -> str:
    text = ""
    for key in keys:
        if isinstance(key, int):
            text += f"[{key}]"
        else:
            text += f".{shown(key)}" if text else shown(key)
    return text or "(file)"


def node_at(root: object, path: Sequence[PathKey]) -> object:
    node = root
    for key in path:
        in_map = isinstance(node, dict) and isinstance(key, str) and key in node
        in_list = isinstance(node, list) and isinstance(key, int) and 0 <= key < len(node)
        if not (in_map or in_list):
            return None
        node = node[key]  # type: ignore[index]
    return node


def position_at(root: Map, path: Sequence[PathKey]) -> tuple[int, int]:
    """The position of the node at `path` (a value, an item, or the root)."""
    if not path:
        return root.line, root.col
    parent = node_at(root, path[:-1])
    last = path[-1]
    if isinstance(parent, Map) and isinstance(last, str) and last in parent.at:
        where = parent.at[last]
        return where[2], where[3]
    if isinstance(parent, Seq) and isinstance(last, int) and 0 <= last < len(parent.at):
        return parent.at[last]
    return start_of(parent)


def key_position(node: object, key: str) -> tuple[int, int]:
    if isinstance(node, Map) and key in node.at:
        where = node.at[key]
        return where[0], where[1]
    return start_of(node)


def value_position(entry: Map, key: str) -> tuple[int, int]:
    where = entry.at.get(key)
    return (where[2], where[3]) if where else (entry.line, entry.col)


def start_of(node: object) -> tuple[int, int]:
    if isinstance(node, Map | Seq):
        return node.line, node.col
    return 0, 0


def kind_of(value: object) -> str:
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


def short(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."
