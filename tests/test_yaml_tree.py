"""yaml_tree: the position-keeping YAML reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler import yaml_tree
from reconciler.errors import DesiredFileError
from tests.support.yaml_nodes import dedent, node_at, source

CANARY = "canary-Zq81-do-not-print"


# --- reading --------------------------------------------------------------------------------------


def test_nodes_know_their_line_column_and_exact_text() -> None:
    document = yaml_tree.parse_yaml(
        dedent(
            """
            # comment
            name: "digest"   # trailing
            agents:
              - name: a
                tools:
                  - plain_tool
                  - [pair_tool, {token: 'x y', n: 3}]
                  - - block_tool
                    - key: |
                        two
                        lines

                      other: [1, 2]
            """
        ),
        "w.yaml",
    )
    root = document.root
    name = node_at(root, "name")
    assert (name.line, name.col, name.style, name.scalar) == (2, 7, '"', "digest")
    assert source(document, name) == '"digest"'
    tools = node_at(root, "agents", 0, "tools")
    assert [item.line for item in tools.items] == [6, 7, 8]
    pair = tools.items[1]
    assert (pair.kind, pair.style, pair.col) == ("seq", "flow", 9)
    assert source(document, pair) == "[pair_tool, {token: 'x y', n: 3}]"
    assert node_at(pair, 1, "n").scalar == 3
    block = tools.items[2]
    assert block.style == "block"
    literal = node_at(block, 1, "key")
    assert literal.style == "|" and literal.scalar == "two\nlines\n"
    # The span of a block scalar stops at its last character, not at the blank line after it.
    assert source(document, literal).endswith("lines")
    assert source(document, block).endswith("other: [1, 2]")


def test_offsets_count_characters_across_non_ascii_crlf_and_a_byte_order_mark() -> None:
    text = "\ufeffa: é€😀\r\nb: [x, 'ü']\r\nc: tail\r\n"
    document = yaml_tree.parse_yaml(text, "w.yaml")
    assert source(document, node_at(document.root, "a")) == "é€😀"
    assert source(document, node_at(document.root, "b", 1)) == "'ü'"
    tail = node_at(document.root, "c")
    assert (tail.line, tail.col, source(document, tail)) == (3, 4, "tail")


def test_aliases_carry_their_own_position_and_merge_keys_are_followed() -> None:
    document = yaml_tree.parse_yaml(
        dedent(
            """
            base: &base {model: m, temperature: 0}
            agent:
              <<: *base
              model: own
            again: *base
            """
        ),
        "w.yaml",
    )
    again = node_at(document.root, "again")
    assert again.alias and (again.line, again.col) == (5, 8)
    assert source(document, again) == "*base"
    agent = node_at(document.root, "agent")
    assert agent.get("model") is not None and node_at(agent, "model").scalar == "own"
    assert node_at(agent, "temperature").scalar == 0
    assert agent.to_python() == {"model": "own", "temperature": 0}


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("a: [1, 2\n", 2, "invalid YAML"),
        ("a: *nowhere\n", 1, "has no anchor"),
        ("a: 1\n---\nb: 2\n", 2, "more than one YAML document"),
    ],
)
def test_unreadable_yaml_is_one_located_problem(text: str, line: int, fragment: str) -> None:
    with pytest.raises(DesiredFileError) as caught:
        yaml_tree.parse_yaml(text, "w.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("w.yaml", line)
    assert fragment in problem.message


def test_read_yaml_reports_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(DesiredFileError, match="cannot be read"):
        yaml_tree.read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(DesiredFileError, match="2:4: \\(yaml\\): is not UTF-8"):
        yaml_tree.read_yaml(bad)


def test_node_repr_never_shows_values() -> None:
    document = yaml_tree.parse_yaml(f"token: {CANARY}\n", "w.yaml")
    assert CANARY not in repr(document)
    assert CANARY not in repr(document.root)
    assert CANARY not in repr(node_at(document.root, "token"))
