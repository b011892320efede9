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


# --- one builder, two readers ----------------------------------------------------------------------


def test_compose_goes_on_past_an_alias_that_points_nowhere_where_parse_yaml_stops() -> None:
    text = "a:\n  b: *nowhere\n  c: [1, *loop]\n"
    with pytest.raises(DesiredFileError, match="2:6: \\(yaml\\): alias \\*nowhere has no anchor"):
        yaml_tree.parse_yaml(text, "w.yaml")
    composed = yaml_tree.compose(text.encode())
    assert composed.complete
    assert [(f.line, f.col, f.path) for f in composed.findings] == [(1, 5, ("a", "b")), (2, 9, ("a", "c", 1))]
    assert node_at(composed.root, "a", "b").scalar is None
    assert node_at(composed.root, "a").to_python() == {"b": None, "c": [1, None]}


def test_compose_keeps_what_was_read_before_a_syntax_error_and_marks_it_cut() -> None:
    composed = yaml_tree.compose(b"a: 1\nb: [2, 3")
    assert not composed.complete
    (finding,) = composed.findings
    assert finding.path is None and finding.message.startswith("invalid YAML")
    assert composed.root is not None and composed.root.cut
    assert not node_at(composed.root, "a").cut
    assert node_at(composed.root, "b").cut and node_at(composed.root, "b").to_python() == [2, 3]


@pytest.mark.parametrize(
    ("text", "path", "fragment"),
    [
        ("a:\n" + "  - " * 70 + "x\n", ("a", 0, 0, 0), "nested more than 64 levels deep"),
        ("a: 1\n---\nb: 2\n", (), "more than one YAML document"),
        ("a: &x [*x]\n", ("a", 0), "refers to a node that contains it"),
    ],
)
def test_limits_are_findings_with_the_keys_that_lead_to_them(
    text: str, path: tuple[str | int, ...], fragment: str
) -> None:
    finding = yaml_tree.compose(text.encode()).findings[0]
    assert finding.path is not None and finding.path[: len(path)] == path
    assert fragment in finding.message


def test_a_control_character_is_located_in_text_and_in_bytes() -> None:
    text = "é: 1\nb: \x07\n"
    with pytest.raises(DesiredFileError, match=r"w.yaml:2:4: \(yaml\): cannot be read as YAML"):
        yaml_tree.parse_yaml(text, "w.yaml")
    (finding,) = yaml_tree.compose(text.encode()).findings
    assert (finding.line, finding.col) == (1, 3)


def test_keys_are_named_by_their_text_as_written_and_tags_are_judged() -> None:
    root = yaml_tree.parse_yaml("1: a\n'2': b\n!!str <<: c\nk: !!int x\nm: !!set {}\nn: !!str 5\n").root
    assert root is not None
    keys = [key for key, _ in root.pairs]
    assert [yaml_tree.key_name(key) for key in keys] == ["1", "2", "<<", "k", "m", "n"]
    assert keys[0].scalar == 1 and not any(yaml_tree.is_merge_key(key) for key in keys)
    assert [yaml_tree.unsupported_tag(value) for _, value in root.pairs] == [
        None,
        None,
        None,
        "is not a valid !!int",
        "has the tag !!set, which is not supported; remove it",
        None,
    ]


def test_nodes_are_equal_only_to_themselves_and_every_field_is_filled() -> None:
    one, two = (yaml_tree.parse_yaml("a: b\n").root for _ in range(2))
    assert one is not None and two is not None
    assert one == node_at(one) and one != two and len({one, two}) == 2
    # Scalars are built field by field for speed: a new field must be filled there too.
    scalar = node_at(one, "a")
    assert len(scalar) == len(yaml_tree.YamlNode._fields)
    assert scalar._replace(scalar="c").scalar == "c"


def test_the_garbage_collector_is_held_off_and_given_back_as_it_was() -> None:
    import gc

    assert gc.isenabled()
    with yaml_tree.paused_gc():
        assert not gc.isenabled()
        with yaml_tree.paused_gc():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with yaml_tree.paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_fold_hands_over_each_collection_as_it_is_read_children_first() -> None:
    seen: list[tuple[str, tuple[object, ...], tuple[object, ...]]] = []

    def fold(node: yaml_tree.YamlNode, path: list[yaml_tree.PathKey | None]) -> object:
        children = tuple(item.data for item in node.items) + tuple(v.data for _, v in node.pairs)
        seen.append((node.kind, tuple(path), children))
        return f"{node.kind}@{'/'.join(map(str, path))}"

    composed = yaml_tree.compose(b"a:\n  - {x: 1}\n  - [2]\n? [k]\n: v\n", fold)
    root = composed.root
    assert root is not None and root.data == "map@" and root.pairs == () and root.line == 1
    assert seen == [
        ("map", ("a", 0), (None,)),
        ("seq", ("a", 1), (None,)),
        ("seq", ("a",), ("map@a/0", "seq@a/1")),
        # A key that is not text: the path says so with None.
        ("seq", (None,), (None,)),
        ("map", (), ("seq@a", None)),
    ]


def _shape(node: yaml_tree.YamlNode | None) -> object:
    """A node's kind, position, value and children: what both parsers must agree on."""
    if node is None:
        return None
    children = [_shape(item) for item in node.items] + [(_shape(k), _shape(v)) for k, v in node.pairs]
    return (node.kind, node.line, node.col, node.style, node.tag, node.alias, node.scalar, children)


def test_without_the_c_parser_the_pure_one_builds_the_same_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    from ruamel.yaml.parser import Parser

    text = dedent(
        """
        base: &b {tool_arg: token, n: 0x1F}
        secrets:
          - <<: *b
            name: "quoted"
            note: |
              two
              lines
            on: !!str 12
          - [flow, 1.5, ~, true]
        """
    )
    with_c = yaml_tree.compose(text.encode())
    # As installed without ruamel.yaml.clib.
    monkeypatch.setattr(yaml_tree, "_safe_yaml_parser", lambda: Parser)
    pure = yaml_tree.compose(text.encode())
    assert with_c.complete and pure.complete and not with_c.findings and not pure.findings
    assert _shape(pure.root) == _shape(with_c.root)
    assert pure.root is not None and pure.root.to_python() == {
        "base": {"tool_arg": "token", "n": 31},
        "secrets": [
            {"tool_arg": "token", "n": 31, "name": "quoted", "note": "two\nlines\n", "on": "12"},
            ["flow", 1.5, None, True],
        ],
    }
