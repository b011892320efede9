"""yaml_edit: edits of YAML text in place."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import yaml_edit, yaml_tree
from reconciler.errors import DesiredFileError
from reconciler.yaml_edit import RemoveKeys, ReplaceScalar, ReplaceWithItem
from reconciler.yaml_tree import YamlDocument, YamlNode
from tests.support.yaml_nodes import dedent, node_at

# --- edits ----------------------------------------------------------------------------------------

WORKFLOW = dedent(
    """
    # head comment
    agents:
      - name: a   # the agent
        tools:
          - [t1, {token: T1, owner: "acme"}]       # first
          - [t2, {owner: acme, token: 'T2'}]
          - [t3, {a: 1, token: T3, b: 2}]
          - [t4, {token: T4}]  # only a token
          - - t5
            - token: T5   # pasted
              owner: acme
          - - t6
            - owner: acme
              # about the token
              token: T6
              # after the token
              other: 1
          - name: t7
            fn_self: '{"token": "T7", "x": 1}'
    """
)


def tool(document: YamlDocument, index: int) -> YamlNode:
    return node_at(document.root, "agents", 0, "tools", index)


def test_edits_touch_only_their_nodes_and_keep_every_comment() -> None:
    document = yaml_tree.parse_yaml(WORKFLOW, "w.yaml")
    edits = [
        RemoveKeys(node_at(tool(document, 0), 1), ("token",)),
        RemoveKeys(node_at(tool(document, 1), 1), ("token",)),
        RemoveKeys(node_at(tool(document, 2), 1), ("token",)),
        ReplaceWithItem(tool(document, 3), 0),
        RemoveKeys(node_at(tool(document, 4), 1), ("token",)),
        RemoveKeys(node_at(tool(document, 5), 1), ("token",)),
        ReplaceScalar(node_at(tool(document, 6), "fn_self"), '{"x": 1}'),
    ]
    assert yaml_edit.edit_yaml(document, edits) == dedent(
        """
        # head comment
        agents:
          - name: a   # the agent
            tools:
              - [t1, {owner: "acme"}]       # first
              - [t2, {owner: acme}]
              - [t3, {a: 1, b: 2}]
              - t4  # only a token
              - - t5
                - owner: acme
              - - t6
                - owner: acme
                  # about the token
                  # after the token
                  other: 1
              - name: t7
                fn_self: '{"x": 1}'
        """
    )


def test_removing_the_first_key_after_a_dash_keeps_comments_below_it() -> None:
    document = yaml_tree.parse_yaml(
        dedent(
            """
            - token: T   # pasted
              # keep me
              owner: acme
            """
        ),
        "w.yaml",
    )
    result = yaml_edit.edit_yaml(document, [RemoveKeys(node_at(document.root, 0), ("token",))])
    assert result == "  # keep me\n- owner: acme\n"
    assert yaml_tree.parse_yaml(result).root is not None


def test_multi_line_flow_mappings_and_implicit_pairs_are_edited_without_losing_comments() -> None:
    text = dedent(
        """
        tools:
          - [t1, token: T1]
          - [t2, {
              owner: acme,   # the org
              token: T2,
            }]
          - [t3, {
              token: T3,     # pasted
              # why the repo
              repo: r
            }]
        """
    )
    document = yaml_tree.parse_yaml(text, "w.yaml")
    result = yaml_edit.edit_yaml(
        document,
        [
            ReplaceWithItem(node_at(document.root, "tools", 0), 0),
            RemoveKeys(node_at(document.root, "tools", 1, 1), ("token",)),
            RemoveKeys(node_at(document.root, "tools", 2, 1), ("token",)),
        ],
    )
    assert result == dedent(
        """
        tools:
          - t1
          - [t2, {
              owner: acme,   # the org
            }]
          - [t3, {
              # why the repo
              repo: r
            }]
        """
    )


def test_only_the_edits_that_cannot_be_made_are_named() -> None:
    text = dedent(
        """
        - - t1
          - ? token
            : T1
            owner: acme
        - [t2, {token: T2, owner: acme}]
        """
    )
    document = yaml_tree.parse_yaml(text, "w.yaml")
    with pytest.raises(DesiredFileError) as caught:
        yaml_edit.edit_yaml(
            document,
            [
                RemoveKeys(node_at(document.root, 1, 1), ("token",)),
                RemoveKeys(node_at(document.root, 0, 1), ("token",)),
            ],
        )
    assert [(p.line, p.col) for p in caught.value.problems] == [(2, 5)]


def test_removing_every_key_leaves_an_empty_mapping() -> None:
    document = yaml_tree.parse_yaml("a:\n  token: T\n  key: K\nb: 1\n", "w.yaml")
    result = yaml_edit.edit_yaml(document, [RemoveKeys(node_at(document.root, "a"), ("token", "key"))])
    assert yaml_tree.parse_yaml(result).root is not None
    assert node_at(yaml_tree.parse_yaml(result).root, "a").to_python() == {}
    assert result.endswith("b: 1\n")


@pytest.mark.parametrize(
    ("written", "replaced"),
    [
        ("plain", "plain_new"),
        ("'single'", "'it''s'"),
        ('"double"', '"tab\\there"'),
        ("|\n    block\n  ", '"x"'),
    ],
)
def test_replaced_scalars_keep_their_quoting_when_they_can(written: str, replaced: str) -> None:
    text = f"k: {written}\nnext: 1\n"
    document = yaml_tree.parse_yaml(text, "w.yaml")
    value = {"plain_new": "plain_new", "'it''s'": "it's", '"tab\\there"': "tab\there", '"x"': "x"}[replaced]
    result = yaml_edit.edit_yaml(document, [ReplaceScalar(node_at(document.root, "k"), value)])
    assert result.startswith(f"k: {replaced}\n")
    assert result.endswith("next: 1\n")


def test_an_alias_or_a_key_from_a_merge_is_refused_and_nothing_changes() -> None:
    text = dedent(
        """
        base: &args {token: T, owner: acme}
        tools:
          - [t1, *args]
          - [t2, {<<: *args, extra: 1}]
        """
    )
    document = yaml_tree.parse_yaml(text, "w.yaml")
    with pytest.raises(DesiredFileError, match=r"w.yaml:3:10: \(edit\): is an alias"):
        yaml_edit.edit_yaml(document, [RemoveKeys(node_at(document.root, "tools", 0, 1), ("token",))])
    with pytest.raises(DesiredFileError, match="no key 'token' of its own"):
        yaml_edit.edit_yaml(document, [RemoveKeys(node_at(document.root, "tools", 1, 1), ("token",))])


def test_an_anchored_node_is_edited_once_for_every_alias() -> None:
    text = "base: &args {token: T, owner: acme}\nuse: *args\n"
    document = yaml_tree.parse_yaml(text, "w.yaml")
    result = yaml_edit.edit_yaml(document, [RemoveKeys(node_at(document.root, "base"), ("token",))])
    assert result == "base: &args {owner: acme}\nuse: *args\n"


def test_an_edit_whose_result_would_not_hold_the_expected_data_is_refused() -> None:
    # The new scalar value would be read back as a number if written plain; the edit writes it quoted.
    document = yaml_tree.parse_yaml("k: v\n", "w.yaml")
    assert yaml_edit.edit_yaml(document, [ReplaceScalar(node_at(document.root, "k"), "123")]) == "k: '123'\n"
    # A multi-line item cannot replace its sequence without re-indenting it: refused, not mangled.
    document = yaml_tree.parse_yaml("k:\n  - - a: 1\n      b: 2\n    - x\n", "w.yaml")
    with pytest.raises(DesiredFileError, match="cannot be changed in place"):
        yaml_edit.edit_yaml(document, [ReplaceWithItem(node_at(document.root, "k", 0), 0)])


# A generated workflow: tools in flow or block pairs, each with some arguments and comments; the
# property is that removing any subset of the `token` arguments keeps every comment and every
# other value, and reads back as the same data minus those keys.
@st.composite
def generated_workflows(draw: st.DrawFn) -> tuple[str, list[tuple[int, bool]], int]:
    lines = ["# generated", "tools:"]
    tools: list[tuple[int, bool]] = []
    count = draw(st.integers(1, 5))
    comment_number = 0
    for index in range(count):
        flow = draw(st.booleans())
        keys = draw(st.permutations(["token", "owner", "repo"]))[: draw(st.integers(1, 3))]
        if "token" not in keys:
            keys = ["token", *keys]
        if flow:
            args = ", ".join(f"{k}: v{index}{k}" for k in keys)
            lines.append(f"  - [tool{index}, {{{args}}}]  # c{comment_number}")
            comment_number += 1
        else:
            lines.append(f"  - - tool{index}")
            for position, key in enumerate(keys):
                prefix = "    - " if position == 0 else "      "
                lines.append(f"{prefix}{key}: v{index}{key}")
                if draw(st.booleans()):
                    lines.append(f"      # c{comment_number}")
                    comment_number += 1
        tools.append((index, len(keys) == 1))
    return "\n".join(lines) + "\n", tools, comment_number


@settings(max_examples=200, deadline=None)
@given(generated=generated_workflows(), data=st.data())
def test_removing_generated_tokens_keeps_everything_else(
    generated: tuple[str, list[tuple[int, bool]], int], data: st.DataObject
) -> None:
    text, tools, comments = generated
    document = yaml_tree.parse_yaml(text, "w.yaml")
    chosen = data.draw(st.sets(st.sampled_from([index for index, _ in tools])))
    edits: list[yaml_edit.YamlEdit] = []
    expected = document.root.to_python() if document.root else None
    assert isinstance(expected, dict)
    for index, only_token in tools:
        if index not in chosen:
            continue
        pair = node_at(document.root, "tools", index)
        if only_token:
            edits.append(ReplaceWithItem(pair, 0))
            expected["tools"][index] = f"tool{index}"
        else:
            edits.append(RemoveKeys(node_at(pair, 1), ("token",)))
            del expected["tools"][index][1]["token"]
    result = yaml_edit.edit_yaml(document, edits)
    reread = yaml_tree.parse_yaml(result).root
    assert reread is not None and reread.to_python() == expected
    for number in range(comments):
        assert f"# c{number}" in result
    assert result.startswith("# generated\ntools:\n")
