"""desired.py's position-keeping YAML reader, in-place edits, append_secrets and tool_credentials."""

from __future__ import annotations

import json
import stat
import textwrap
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler import desired
from reconciler.desired import RemoveKeys, ReplaceScalar, ReplaceWithItem, YamlNode
from reconciler.errors import DesiredFileError, ReconcilerError
from reconciler.values import LiteralValueError

CANARY = "canary-Zq81-do-not-print"


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def source(document: desired.YamlDocument, node: YamlNode) -> str:
    return document.text[node.start : node.end]


def node_at(node: YamlNode | None, *keys: str | int) -> YamlNode:
    for key in keys:
        assert node is not None
        node = node.items[key] if isinstance(key, int) else node.get(key)
    assert node is not None
    return node


# --- reading --------------------------------------------------------------------------------------


def test_nodes_know_their_line_column_and_exact_text() -> None:
    document = desired.parse_yaml(
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
    document = desired.parse_yaml(text, "w.yaml")
    assert source(document, node_at(document.root, "a")) == "é€😀"
    assert source(document, node_at(document.root, "b", 1)) == "'ü'"
    tail = node_at(document.root, "c")
    assert (tail.line, tail.col, source(document, tail)) == (3, 4, "tail")


def test_aliases_carry_their_own_position_and_merge_keys_are_followed() -> None:
    document = desired.parse_yaml(
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
        desired.parse_yaml(text, "w.yaml")
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("w.yaml", line)
    assert fragment in problem.message


def test_read_yaml_reports_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(DesiredFileError, match="cannot be read"):
        desired.read_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"a: 1\nb: \xff\n")
    with pytest.raises(DesiredFileError, match="2:4: \\(yaml\\): is not UTF-8"):
        desired.read_yaml(bad)


def test_node_repr_never_shows_values() -> None:
    document = desired.parse_yaml(f"token: {CANARY}\n", "w.yaml")
    assert CANARY not in repr(document)
    assert CANARY not in repr(document.root)
    assert CANARY not in repr(node_at(document.root, "token"))


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


def tool(document: desired.YamlDocument, index: int) -> YamlNode:
    return node_at(document.root, "agents", 0, "tools", index)


def test_edits_touch_only_their_nodes_and_keep_every_comment() -> None:
    document = desired.parse_yaml(WORKFLOW, "w.yaml")
    edits = [
        RemoveKeys(node_at(tool(document, 0), 1), ("token",)),
        RemoveKeys(node_at(tool(document, 1), 1), ("token",)),
        RemoveKeys(node_at(tool(document, 2), 1), ("token",)),
        ReplaceWithItem(tool(document, 3), 0),
        RemoveKeys(node_at(tool(document, 4), 1), ("token",)),
        RemoveKeys(node_at(tool(document, 5), 1), ("token",)),
        ReplaceScalar(node_at(tool(document, 6), "fn_self"), '{"x": 1}'),
    ]
    assert desired.edit_yaml(document, edits) == dedent(
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
    document = desired.parse_yaml(
        dedent(
            """
            - token: T   # pasted
              # keep me
              owner: acme
            """
        ),
        "w.yaml",
    )
    result = desired.edit_yaml(document, [RemoveKeys(node_at(document.root, 0), ("token",))])
    assert result == "  # keep me\n- owner: acme\n"
    assert desired.parse_yaml(result).root is not None


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
    document = desired.parse_yaml(text, "w.yaml")
    result = desired.edit_yaml(
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
    document = desired.parse_yaml(text, "w.yaml")
    with pytest.raises(DesiredFileError) as caught:
        desired.edit_yaml(
            document,
            [
                RemoveKeys(node_at(document.root, 1, 1), ("token",)),
                RemoveKeys(node_at(document.root, 0, 1), ("token",)),
            ],
        )
    assert [(p.line, p.col) for p in caught.value.problems] == [(2, 5)]


def test_removing_every_key_leaves_an_empty_mapping() -> None:
    document = desired.parse_yaml("a:\n  token: T\n  key: K\nb: 1\n", "w.yaml")
    result = desired.edit_yaml(document, [RemoveKeys(node_at(document.root, "a"), ("token", "key"))])
    assert desired.parse_yaml(result).root is not None
    assert node_at(desired.parse_yaml(result).root, "a").to_python() == {}
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
    document = desired.parse_yaml(text, "w.yaml")
    value = {"plain_new": "plain_new", "'it''s'": "it's", '"tab\\there"': "tab\there", '"x"': "x"}[replaced]
    result = desired.edit_yaml(document, [ReplaceScalar(node_at(document.root, "k"), value)])
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
    document = desired.parse_yaml(text, "w.yaml")
    with pytest.raises(DesiredFileError, match=r"w.yaml:3:10: \(edit\): is an alias"):
        desired.edit_yaml(document, [RemoveKeys(node_at(document.root, "tools", 0, 1), ("token",))])
    with pytest.raises(DesiredFileError, match="no key 'token' of its own"):
        desired.edit_yaml(document, [RemoveKeys(node_at(document.root, "tools", 1, 1), ("token",))])


def test_an_anchored_node_is_edited_once_for_every_alias() -> None:
    text = "base: &args {token: T, owner: acme}\nuse: *args\n"
    document = desired.parse_yaml(text, "w.yaml")
    result = desired.edit_yaml(document, [RemoveKeys(node_at(document.root, "base"), ("token",))])
    assert result == "base: &args {owner: acme}\nuse: *args\n"


def test_an_edit_whose_result_would_not_hold_the_expected_data_is_refused() -> None:
    # The new scalar value would be read back as a number if written plain; the edit writes it quoted.
    document = desired.parse_yaml("k: v\n", "w.yaml")
    assert desired.edit_yaml(document, [ReplaceScalar(node_at(document.root, "k"), "123")]) == "k: '123'\n"
    # A multi-line item cannot replace its sequence without re-indenting it: refused, not mangled.
    document = desired.parse_yaml("k:\n  - - a: 1\n      b: 2\n    - x\n", "w.yaml")
    with pytest.raises(DesiredFileError, match="cannot be changed in place"):
        desired.edit_yaml(document, [ReplaceWithItem(node_at(document.root, "k", 0), 0)])


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
    document = desired.parse_yaml(text, "w.yaml")
    chosen = data.draw(st.sets(st.sampled_from([index for index, _ in tools])))
    edits: list[desired.YamlEdit] = []
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
    result = desired.edit_yaml(document, edits)
    reread = desired.parse_yaml(result).root
    assert reread is not None and reread.to_python() == expected
    for number in range(comments):
        assert f"# c{number}" in result
    assert result.startswith("# generated\ntools:\n")


# --- append_secrets -------------------------------------------------------------------------------

ENTRY: dict[str, object] = {
    "secret_name": "github-list-issues-access-token",
    "secret_value": "${GITHUB_ACCESS_TOKEN}",
    "tool_name": "agno__github__list_issues",
    "tool_arg": "access_token",
    "is_default_for_tool": True,
}


def write(path: Path, text: str) -> Path:
    path.write_text(dedent(text), encoding="utf-8")
    return path


def test_append_after_the_last_entry_and_its_comments_keeping_everything_as_written(tmp_path: Path) -> None:
    original = dedent(
        """
        # yaml-language-server: $schema=../schemas/desired-state.schema.json
        version: 1   # format
        prune: {match: ["ci-*"]}

        secrets:
          # GitHub
          - secret_name: 'github-token'
            secret_value: ${GITHUB_TOKEN}
            tool_name: "agno__github__*"

          - secret_name: linear
            secret_value: {from_env: LINEAR}
            # a comment that belongs to this entry
        # a comment about the file's end
        """
    )
    path = tmp_path / "secrets.yaml"
    path.write_text(original, encoding="utf-8")
    new = desired.append_secrets(path, [ENTRY, {"secret_name": "x", "secret_value": {"from_env": "X"}}])
    assert path.read_text(encoding="utf-8") == new
    head, _, _tail = original.partition("# a comment about the file's end\n")
    assert new == head + "\n" + dedent(
        """
          - secret_name: github-list-issues-access-token
            secret_value: ${GITHUB_ACCESS_TOKEN}
            tool_name: agno__github__list_issues
            tool_arg: access_token
            is_default_for_tool: true

          - secret_name: x
            secret_value: {from_env: X}
        # a comment about the file's end
        """
    )
    state = desired.load(path, resolve=False)
    assert [s.secret_name for s in state.secrets][-2:] == ["github-list-issues-access-token", "x"]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("version: 1\n", "version: 1\nsecrets:\n  - secret_name: n\n    secret_value: ${N}\n"),
        ("version: 1\nsecrets:\n", "version: 1\nsecrets:\n  - secret_name: n\n    secret_value: ${N}\n"),
        (
            "version: 1\nsecrets: []   # none yet\nprune: false\n",
            "version: 1\nsecrets:    # none yet\n  - secret_name: n\n    secret_value: ${N}\nprune: false\n",
        ),
        (
            "version: 1\nsecrets:\n- secret_name: a\n  secret_value: ${A}\n",
            "version: 1\nsecrets:\n- secret_name: a\n  secret_value: ${A}\n"
            "- secret_name: n\n  secret_value: ${N}\n",
        ),
        (
            "version: 1\nsecrets:\n  - secret_name: a\n    secret_value: ${A}\n    # note on a\n\n"
            "# about prune\nprune: false\n",
            "version: 1\nsecrets:\n  - secret_name: a\n    secret_value: ${A}\n    # note on a\n"
            "  - secret_name: n\n    secret_value: ${N}\n\n# about prune\nprune: false\n",
        ),
        (
            "# only a comment",
            "# only a comment\nversion: 1\nsecrets:\n  - secret_name: n\n    secret_value: ${N}\n",
        ),
        (
            "version: 1\r\nsecrets:\r\n  - secret_name: a\r\n    secret_value: ${A}\r\n",
            "version: 1\r\nsecrets:\r\n  - secret_name: a\r\n    secret_value: ${A}\r\n"
            "  - secret_name: n\r\n    secret_value: ${N}\r\n",
        ),
    ],
)
def test_append_to_each_layout(tmp_path: Path, written: str, expected: str) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(written.encode())
    assert desired.append_secrets(path, [{"secret_name": "n", "secret_value": "${N}"}]) == expected
    assert path.read_bytes() == expected.encode()


def test_append_to_a_flow_list_falls_back_to_a_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1  # v\nsecrets: [{secret_name: a, secret_value: '${A}'}]\n")
    new = desired.append_secrets(path, [{"secret_name": "n", "secret_value": "${N}"}])
    assert new.startswith("version: 1  # v\n")
    assert [s.secret_name for s in desired.load(path, resolve=False).secrets] == ["a", "n"]


def test_append_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    desired.append_secrets(path, [ENTRY])
    state = desired.load(path, environ={"GITHUB_ACCESS_TOKEN": "abcd1234"})
    assert [s.secret_name for s in state.secrets] == ["github-list-issues-access-token"]
    assert dict(state.secrets[0].fields)["is_default_for_tool"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_append_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1\n")
    path.chmod(0o600)
    desired.append_secrets(path, [ENTRY])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1\n")
    new = desired.append_secrets(path, [ENTRY], dry_run=True)
    assert "github-list-issues-access-token" in new
    assert path.read_text() == "version: 1\n"
    assert desired.append_secrets(tmp_path / "absent.yaml", [ENTRY], dry_run=True).startswith("version: 1\n")
    assert not (tmp_path / "absent.yaml").exists()


def test_a_literal_value_is_never_written(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1\n")
    with pytest.raises(LiteralValueError) as caught:
        desired.append_secrets(path, [{"secret_name": "n", "secret_value": CANARY}])
    assert CANARY not in str(caught.value)
    assert "reference" in str(caught.value)
    assert path.read_text() == "version: 1\n"


def test_a_name_already_listed_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1\nsecrets:\n  - secret_name: n\n    secret_value: ${N}\n")
    with pytest.raises(DesiredFileError, match=r"s.yaml:3:18: secret_name: 'n' is already listed"):
        desired.append_secrets(path, [{"secret_name": "n", "secret_value": "${M}"}])
    with pytest.raises(ReconcilerError, match="two new entries"):
        desired.append_secrets(path, [{"secret_name": "m", "secret_value": "${M}"}] * 2)


def test_append_refuses_a_file_that_is_not_a_desired_state(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "- a\n- b\n")
    with pytest.raises(DesiredFileError, match="not a desired-state file"):
        desired.append_secrets(path, [ENTRY])
    path = write(tmp_path / "t.yaml", "version: 1\nsecrets: {a: 1}\n")
    with pytest.raises(DesiredFileError, match="must be a list"):
        desired.append_secrets(path, [ENTRY])


def test_write_atomic_reports_a_directory_it_cannot_write_in(tmp_path: Path) -> None:
    with pytest.raises(ReconcilerError, match=r"cannot write .*missing/s.yaml \(No such file or directory\)"):
        desired.write_atomic(tmp_path / "missing" / "s.yaml", "x\n")
    assert list(tmp_path.iterdir()) == []


# --- tool_credentials in the desired-state file ---------------------------------------------------


def test_tool_credentials_are_loaded_in_file_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        """
        version: 1
        tool_credentials:
          - {pattern: "my_crm_*", args: [api_key, password]}
          - {pattern: agno__github__list_issues, args: []}
        """,
    )
    state = desired.load(path)
    assert state.tool_credentials == (
        ("my_crm_*", ("api_key", "password")),
        ("agno__github__list_issues", ()),
    )


def test_tool_credentials_problems_are_located(tmp_path: Path) -> None:
    path = write(
        tmp_path / "s.yaml",
        """
        version: 1
        tool_credentials:
          - {pattern: "", args: [api_key]}
          - {pattern: x, arg: [api_key]}
          - {pattern: y, args: api_key}
        """,
    )
    with pytest.raises(DesiredFileError) as caught:
        desired.load(path)
    shown = [(p.line, p.key, p.message) for p in caught.value.problems]
    assert (3, "tool_credentials[0].pattern", "is empty") in shown
    assert (
        4,
        "tool_credentials[1].args",
        "missing; write {pattern: GLOB, args: [ARG, ...]}; [] means the tools need no credential",
    ) in shown
    assert (4, "tool_credentials[1].arg", "unknown key; did you mean 'args'?") in shown
    assert (5, "tool_credentials[2].args", "must be a list, not text") in shown


tool_credential_values = st.one_of(
    st.fixed_dictionaries(
        {
            "pattern": st.sampled_from(["a*", "", "x" * 1025, 1]),
            "args": st.lists(st.sampled_from(["k", "", 2])),
        }
    ),
    st.fixed_dictionaries({"pattern": st.just("a")}),
    st.sampled_from([None, "x", {"pattern": "a", "args": [], "extra": 1}, {"pattern": "a", "args": "k"}]),
)


@settings(max_examples=200, deadline=None)
@given(items=st.one_of(st.lists(tool_credential_values, max_size=3), st.sampled_from([None, "x", {}])))
def test_fast_check_of_tool_credentials_agrees_with_jsonschema(items: object) -> None:
    document = {"version": 1, "tool_credentials": items}
    validator = jsonschema.Draft202012Validator(desired.schema())
    assert desired.conforms(document) == validator.is_valid(document)


def test_schema_file_and_link_stay_valid_json() -> None:
    schema = json.loads(desired.SCHEMA_FILE.read_text())
    assert "tool_credentials" in schema["properties"]
    assert "tool_credentials" in desired.TOP_KEYS
