"""The fast reading of plain YAML reads what the nodes read, or leaves the file to them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml.parser import Parser

from reconciler import yaml_tree
from reconciler.desired.compose import read_data
from reconciler.desired.located import Issues, Map, Seq
from reconciler.yaml_plain import plain_mapping
from reconciler.yaml_tree import MAX_DEPTH

ROOT = Path(__file__).resolve().parent.parent


def fast(text: str) -> dict[str, Any] | None:
    return plain_mapping(text.encode(), Map, Seq)


def through_nodes(text: str) -> tuple[object, bool, Issues]:
    issues = Issues("f.yaml")
    data, complete = read_data(text.encode(), issues)
    return data, complete, issues


def same(a: object, b: object) -> bool:
    """Equal data of equal types, every collection starting at the same place."""
    if type(a) is not type(b):
        return False
    if isinstance(a, Map | Seq) and isinstance(b, Map | Seq) and (a.line, a.col) != (b.line, b.col):
        return False
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def agrees(text: str) -> bool:
    """When the fast reading reads a text, the nodes read it with no problem, to the same data."""
    got = fast(text)
    if got is None:
        return True
    data, complete, issues = through_nodes(text)
    return complete and not issues and same(got, data)


def test_a_plain_file_is_read_to_the_data_the_nodes_read() -> None:
    text = (
        "version: 1\n"
        "secrets:\n"
        "  - secret_name: gh\n"
        "    secret_value: ${GH_TOKEN}\n"
        "    tool_arg: 'access_token'\n"
        "    is_default_for_tool: true\n"
        "    max_age: 0x10\n"
        '    note: "quoted: yes"\n'
        "    empty:\n"
        "    block: |\n"
        "      two\n"
        "      lines\n"
        "  - {secret_name: flow, tags: [a, 1, ~, 2.5]}\n"
    )
    got = fast(text)
    assert got is not None and agrees(text)
    entry = got["secrets"][0]
    assert (entry["max_age"], entry["empty"], entry["is_default_for_tool"]) == (16, None, True)
    assert entry["block"] == "two\nlines\n" and got["secrets"][1]["tags"] == ["a", 1, None, 2.5]
    assert (entry.line, entry.col) == (2, 4)


@pytest.mark.parametrize(
    "text",
    [
        "a: &x 1\nb: *x\n",  # anchor and alias
        "a: !!str 1\n",  # a tag
        "a: !custom [1]\n",  # a tag on a collection
        "base: {k: 1}\nmerged:\n  <<: {k: 2}\n",  # a merge key
        "a: 1\na: 2\n",  # a duplicate key
        "? [x]\n: 1\n",  # a key that is a collection
        "a: 1\n---\nb: 2\n",  # a second document
        "a: [1\n",  # not YAML
        "- 1\n- 2\n",  # not a mapping
        "just text\n",
        "",
        "a:" + " [" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1) + "\n",  # nested too deep
    ],
)
def test_what_is_not_plain_is_left_to_the_nodes(text: str) -> None:
    assert fast(text) is None


def test_a_merge_key_written_quoted_is_an_ordinary_key_for_both() -> None:
    text = "'<<': {k: 1}\n"
    got = fast(text)
    assert got is not None and list(got) == ["<<"] and agrees(text)


def test_without_the_c_parser_the_same_files_read_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = "a: [1, 'x', ~]\nb:\n  c: |\n    text\n  d: {e: 0x1F}\n"
    not_plain = ["a: &x 1\nb: *x\n", "a: !!str 1\n", "a: 1\na: 2\n", "<<: {k: 1}\n"]
    with_c = fast(plain)
    # As installed without ruamel.yaml.clib.
    monkeypatch.setattr(yaml_tree, "_safe_yaml_parser", lambda: Parser)
    pure = fast(plain)
    assert with_c is not None and pure is not None and same(pure, with_c) and agrees(plain)
    assert [fast(text) for text in not_plain] == [None] * len(not_plain)


def test_equal_texts_are_one_object() -> None:
    got = fast("a: [tool, tool]\nb: tool\n")
    assert got is not None
    assert got["a"][0] is got["a"][1] is got["b"]


def test_every_yaml_file_of_the_project_reads_alike() -> None:
    files = sorted({*ROOT.glob("tests/fixtures/**/*.y*ml"), *ROOT.glob("examples/**/*.y*ml")})
    assert files
    read = [f for f in files if fast(f.read_text(encoding="utf-8")) is not None]
    assert read, "no file of the project was read the fast way"
    for path in files:
        assert agrees(path.read_text(encoding="utf-8")), path


# Pieces of YAML that are plain, that look like other types, or that only the nodes read.
_KEYS = st.sampled_from(["a", "b", "secret_name", "1", "true", "<<", "'<<'", '"a"', "~", "? [k]\n "])
_SCALARS = st.sampled_from(
    [
        "x",
        "'quoted'",
        '"dq\\n"',
        "12",
        "0x1F",
        "0o17",
        "1e3",
        ".inf",
        "true",
        "False",
        "~",
        "null",
        "",
        "2024-01-01",
        "'2024-01-01'",
        "'12'",
        '"true"',
        "!!str 5",
        "!!int '7'",
        "&x v",
        "*x",
        "[1, a, ~]",
        "{k: v, k2: [x]}",
        "{k: v, k: w}",
        "!!map {k: v}",
        "|\n    block\n",
        ">-\n    folded\n    text\n",
    ]
)


# Of those, the ones a plain file is made of (documents of these alone are mostly read the fast way).
_PLAIN_KEYS = _KEYS.filter(lambda k: k not in ("<<", "? [k]\n "))
_PLAIN_SCALARS = _SCALARS.filter(lambda s: not s.startswith(("!", "&", "*")) and "k: v, k:" not in s)


@st.composite
def documents(draw: st.DrawFn) -> str:
    plain = draw(st.booleans())
    keys, scalars = (_PLAIN_KEYS, _PLAIN_SCALARS) if plain else (_KEYS, _SCALARS)
    lines = []
    for _ in range(draw(st.integers(1, 6))):
        key = draw(keys)
        if draw(st.booleans()):
            lines.append(f"{key}: {draw(scalars)}")
        else:
            lines.append(f"{key}:")
            for _ in range(draw(st.integers(0, 3))):
                if draw(st.booleans()):
                    lines.append(f"  - {draw(scalars)}")
                else:
                    lines.append(f"  - {draw(keys)}: {draw(scalars)}")
                    lines.append(f"    {draw(keys)}: {draw(scalars)}")
    if draw(st.integers(0, 9)) == 0:
        lines.append("---\nz: 1")
    return "\n".join(lines) + "\n"


@settings(max_examples=400, deadline=None)
@given(documents())
def test_whatever_the_fast_reading_reads_the_nodes_read_alike(text: str) -> None:
    assert agrees(text)
