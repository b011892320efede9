"""The desired-state file's plain data with positions, taken from yaml_tree's nodes, read strictly
(or, on the pass that expects no problem, from yaml_plain's reading of the events).

Stricter than YAML itself, so that no two readers can see different data: a duplicate key, a key
that is not text, an unsupported tag and a merge of anything but mappings are problems here.
"""

from __future__ import annotations

from reconciler.desired.located import Issues, Map, Seq, path_text
from reconciler.yaml_plain import plain_mapping
from reconciler.yaml_tree import (
    PathKey,
    YamlNode,
    compose,
    is_merge_key,
    key_name,
    paused_gc,
    text_keys,
    unsupported_tag,
)

# A path step below a key that is not text: problems under it are reported at the mapping's path.
_Path = list[PathKey | None]


def read_data(raw: bytes, issues: Issues) -> tuple[object, bool]:
    """The file's plain data (Map, Seq, scalars) and whether it could be read to the end.

    Problems go to `issues`; a node reported as unusable is silenced for the rules that follow.
    """
    if not issues.located:
        # The pass expected to find no problem reads straight from the events; a file it cannot read
        # that way (an anchor, a tag, a duplicate key...) is read through the nodes as before.
        fast = plain_mapping(raw, Map, Seq)
        if fast is not None:
            return fast, True
    plain = _Plain(issues)
    with paused_gc():
        # Each collection becomes plain data as soon as it is read: the nodes of one entry at a time.
        composed = compose(raw, plain.value)
        for finding in composed.findings:
            if finding.path is None:
                issues.add(finding.line, finding.col, "(yaml)", finding.message)
            else:
                issues.silenced.add(finding.path)
                issues.add(finding.line, finding.col, path_text(finding.path), finding.message)
        root = None if composed.root is None else plain.value(composed.root, [])
        complete = composed.complete
        # The nodes go while the collector is held off, so that it never walks them.
        del composed
    return root, complete


class _Plain:
    """Turns nodes into Map/Seq/scalars; an alias shares the data of its anchor, as in the nodes."""

    def __init__(self, issues: Issues) -> None:
        self.issues = issues
        self.located = issues.located
        self.shared: dict[int, object] = {}
        # One string object for each distinct text kept: keys repeat in every entry, tool names often.
        self.texts: dict[str, str] = {}

    def report(self, node: YamlNode, path: _Path, message: str, *, unusable: bool) -> None:
        keys = text_keys(path)
        if unusable:
            # The node cannot be used as written: rules that would look at it again stay quiet.
            self.issues.silenced.add(keys)
        self.issues.add(node.line - 1, node.col - 1, path_text(keys), message)

    def value(self, node: YamlNode, path: _Path) -> object:
        if node.data is not None:
            # Folded by compose as it was read (an alias of it too): its data, shared.
            return node.data
        if node.kind == "scalar":
            if node.tag is not None:
                self.check_tag(node, path)
            return node.scalar
        if node.alias and node.origin is not None:
            shared = self.shared.get(id(node.origin))
            # An anchor is read before its aliases; only one on a key that is not text is not.
            return shared if shared is not None else self.value(node.origin, path)
        if node.tag is not None:
            self.check_tag(node, path)
        data = self.mapping(node, path) if node.kind == "map" else self.sequence(node, path)
        self.shared[id(node)] = data
        return data

    def check_tag(self, node: YamlNode, path: _Path) -> None:
        problem = unsupported_tag(node)
        if problem is not None:
            self.report(node, path, problem, unusable=True)

    def sequence(self, node: YamlNode, path: _Path) -> Seq:
        data = Seq(node.line - 1, node.col - 1)
        at = data.at
        texts = self.texts
        for index, item in enumerate(node.items):
            if item.kind == "scalar" and item.tag is None:
                scalar = item.scalar
                data.append(texts.setdefault(scalar, scalar) if isinstance(scalar, str) else scalar)
            else:
                data.append(self.value(item, [*path, index]))
            if self.located:
                at.append((item.line - 1, item.col - 1))
        return data

    def mapping(self, node: YamlNode, path: _Path) -> Map:
        data = Map(node.line - 1, node.col - 1)
        at = data.at
        merges: list[Map] = []
        texts = self.texts
        for key, value in node.pairs:
            # A value cut short by a problem that stopped reading is looked into, never added.
            name = key_name(key)
            if name is None:
                self.unnamed(key, value, path)
            elif is_merge_key(key):
                merges.extend(self.merged(value, path))
            elif value.kind == "scalar" and value.tag is None and not value.cut:
                scalar = value.scalar
                if isinstance(scalar, str):
                    scalar = texts.setdefault(scalar, scalar)
                self.put(data, texts.setdefault(name, name), key, value, scalar, path)
            else:
                item = self.value(value, [*path, name])
                if not value.cut:
                    self.put(data, texts.setdefault(name, name), key, value, item, path)
        # Keys written in the mapping win over merged ones; earlier merged mappings win over later.
        for source in merges:
            for name, item in source.items():
                if name not in data:
                    data[name] = item
                    if self.located:
                        at[name] = source.at[name]
        return data

    def put(self, data: Map, name: str, key: YamlNode, value: YamlNode, item: object, path: _Path) -> None:
        if name in data:
            self.issues.need_positions()
            message = (
                f"duplicate key (first at line {data.at[name][0] + 1}); "
                "YAML would silently keep only one, remove the other"
            )
            self.report(key, [*path, name], message, unusable=False)
            return
        data[name] = item
        if self.located:
            data.at[name] = (key.line - 1, key.col - 1, value.line - 1, value.col - 1)

    def unnamed(self, key: YamlNode, value: YamlNode, path: _Path) -> None:
        """A key that is not text: reported (unless cut short), and its value left out."""
        if key.kind != "scalar" and not key.alias:
            self.value(key, [*path, None])
        if not key.cut:
            self.report(key, path, "mapping keys must be plain text", unusable=False)
        self.value(value, [*path, None])

    def merged(self, value: YamlNode, path: _Path) -> list[Map]:
        """The mappings a merge key's value brings in (none, reported, when it is not mappings)."""
        data = self.value(value, [*path, "<<"])
        sources = data if isinstance(data, Seq) else [data]
        if value.cut:
            return []
        if all(isinstance(source, Map) for source in sources):
            return sources  # type: ignore[return-value]
        message = "a merge ('<<') takes a mapping or a list of mappings"
        self.report(value, [*path, "<<"], message, unusable=False)
        return []
