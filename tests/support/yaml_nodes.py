"""Helpers for tests of YAML nodes: dedented text, a node's source text, a node by its keys."""

from __future__ import annotations

import textwrap

from reconciler.yaml_tree import YamlDocument, YamlNode


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def source(document: YamlDocument, node: YamlNode) -> str:
    return document.text[node.start : node.end]


def node_at(node: YamlNode | None, *keys: str | int) -> YamlNode:
    for key in keys:
        assert node is not None
        node = node.items[key] if isinstance(key, int) else node.get(key)
    assert node is not None
    return node
