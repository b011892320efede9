"""desired.load: valid files into models, YAML-level problems located, robustness."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import desired
from reconciler.desired.schema import SCHEMA_FILE
from reconciler.errors import DesiredFileError
from reconciler.models import Location, Prune
from tests.support.desired_files import (
    EXAMPLE,
    EXAMPLE_ENV,
    FIXTURES,
    REPO,
    load_never_crashes,
    located,
    only,
    problems,
    write,
)

CANARY = "canary-Vk3q9-secret"


# --- loading valid files -------------------------------------------------------------------------


def test_example_validates_offline() -> None:
    state = desired.load(EXAMPLE, resolve=False, environ={})
    assert [s.secret_name for s in state.secrets] == [
        "github-token",
        "slack-bot-token",
        "linear-key",
        "jira-credentials",
        "spare-tavily-key",
    ]
    assert all(s.value is None for s in state.secrets)
    assert state.prune == Prune(enabled=True, match=("ci-*", "legacy-*"))
    assert state.workflows == ("workflows/*.yaml",)
    assert state.allow_plaintext is False


def test_example_resolves_with_its_references_in_place(tmp_path: Path) -> None:
    copy = tmp_path / "secrets.yaml"
    shutil.copy(EXAMPLE, copy)
    (tmp_path / ".secrets").mkdir()
    (tmp_path / ".secrets" / "linear").write_text("lin_api_example0005\n")
    state = desired.load(copy, environ=EXAMPLE_ENV)
    by_name = {s.secret_name: s for s in state.secrets}
    revealed = {name: s.value.reveal() for name, s in by_name.items() if s.value is not None}
    assert revealed == {
        "github-token": "ghp_example0001",
        "slack-bot-token": "xoxb-example-0002",
        "linear-key": "lin_api_example0005",
        "jira-credentials": "jira-bot:jira-token-0003",
        "spare-tavily-key": "tvly-example-0004",
    }
    assert {name: s.value_ref for name, s in by_name.items()} == {
        "github-token": "${GITHUB_ACCESS_TOKEN}",
        "slack-bot-token": "from_env: SLACK_BOT_TOKEN",
        "linear-key": "from_file: .secrets/linear",
        "jira-credentials": "${JIRA_USER}…${JIRA_API_TOKEN}",
        "spare-tavily-key": "from_env: TAVILY_API_KEY",
    }
    linear = by_name["linear-key"]
    assert linear.previous_names == ("linear-api-key",)
    assert linear.protect is True
    assert dict(by_name["spare-tavily-key"].fields) == {"tool_name": None, "tool_arg": None}


def test_example_starts_with_the_schema_line_and_the_schema_link_resolves() -> None:
    first = EXAMPLE.read_text().splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/desired-state.schema.json"
    link = REPO / "schemas" / "desired-state.schema.json"
    assert link.is_symlink()
    assert str(link.readlink()) == "../reconciler/data/desired-state.schema.json"
    assert (EXAMPLE.parent / "../schemas/desired-state.schema.json").resolve() == SCHEMA_FILE.resolve()


def test_fields_hold_only_what_the_entry_states(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: all-stated
            secret_value: ${A}
            tool_name: "agno__github__*"
            tool_arg: access_token
            is_default_for_tool: false
          - secret_name: nulls
            secret_value: ${A}
            tool_name: null
            tool_arg: ~
            is_default_for_tool:
          - secret_name: none-stated
            secret_value: ${A}
        """,
    )
    state = desired.load(path, environ={"A": "abcd"})
    assert [dict(s.fields) for s in state.secrets] == [
        {"tool_name": "agno__github__*", "tool_arg": "access_token", "is_default_for_tool": False},
        {"tool_name": None, "tool_arg": None, "is_default_for_tool": None},
        {},
    ]
    with pytest.raises(TypeError):
        state.secrets[0].fields["tool_name"] = "x"  # type: ignore[index]


def test_secrets_with_the_same_binding_share_one_read_only_mapping(tmp_path: Path) -> None:
    entry = """
          - secret_name: {name}
            secret_value: ${{A}}
            tool_name: "{tool}"
            tool_arg: access_token
    """
    body = "version: 1\nsecrets:\n" + "".join(
        entry.format(name=name, tool=tool) for name, tool in (("a", "t1"), ("b", "t1"), ("c", "t2"))
    )
    first, second, other = desired.load(write(tmp_path, body), environ={"A": "abcd"}).secrets
    assert first.fields is second.fields
    assert dict(other.fields) == {"tool_name": "t2", "tool_arg": "access_token"}
    with pytest.raises(TypeError):
        first.fields["tool_name"] = "x"  # type: ignore[index]


def test_digest_is_sha256_of_the_bytes(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nsecrets: []\n")
    assert desired.load(path).digest == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("body", ["version: 1\n", "version: 1\nsecrets:\n", "version: 1\nsecrets: []\n"])
def test_missing_or_empty_secrets(body: str, tmp_path: Path) -> None:
    state = desired.load(write(tmp_path, body))
    assert state.secrets == () and state.secrets_empty is True


def test_non_empty_secrets_is_not_empty(tmp_path: Path) -> None:
    state = desired.load(
        write(tmp_path, "version: 1\nsecrets: [{secret_name: a, secret_value: '${A}'}]\n"),
        environ={"A": "abcd"},
    )
    assert state.secrets_empty is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prune: true", Prune(enabled=True)),
        ("prune: false", Prune(enabled=False)),
        ("", Prune(enabled=False)),
        ("prune: {match: ['ci-*', 'tmp-?']}", Prune(enabled=True, match=("ci-*", "tmp-?"))),
    ],
)
def test_prune_forms(text: str, expected: Prune, tmp_path: Path) -> None:
    assert desired.load(write(tmp_path, f"version: 1\n{text}\n")).prune == expected


def test_secret_id_pin_is_kept_in_lower_case(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - {secret_name: a, secret_value: "${A}", secret_id: 0B3E1C4A-2F7D-4C1E-9A8B-5D6F7E8A9B0C}
        """,
    )
    assert (
        desired.load(path, environ={"A": "abcd"}).secrets[0].secret_id
        == "0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c"
    )


def test_entry_location_and_locate_agree(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: first
            secret_value: ${A}
          -   secret_name: second
              secret_value: ${A}
          - {secret_name: third, secret_value: "${A}"}
        """,
    )
    state = desired.load(path, environ={"A": "abcd"})
    assert [s.location for s in state.secrets] == [
        Location(str(path), 3, 5),
        Location(str(path), 5, 7),
        Location(str(path), 7, 5),
    ]
    for index, secret in enumerate(state.secrets):
        assert desired.locate(path, ("secrets", index)) == secret.location
    assert desired.locate(path, ("secrets", 1, "secret_name")) == Location(str(path), 5, 20)
    assert desired.locate(path, ("secrets", 2, "secret_value")) == Location(str(path), 7, 40)
    assert desired.locate(path, ("version",)) == Location(str(path), 1, 10)
    assert desired.locate(path, ("secrets", 3)) is None
    assert desired.locate(path, ("secrets", 0, "nope")) is None
    assert desired.locate(path, ("version", 0)) is None
    assert desired.locate(tmp_path / "missing.yaml", ("version",)) is None
    assert desired.locate(write(tmp_path, "a: [", "broken.yaml"), ("a",)) is None


def test_locate_reads_what_load_reads_and_skips_merged_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        base: &b {tool_name: t}
        again: &b !!int
        entry:
          <<: *b
          own: 1
        """,
    )
    # An anchor used twice and an invalid !!int: located all the same, as load reads them.
    assert desired.locate(path, ("again",)) == Location(str(path), 2, 8)
    assert desired.locate(path, ("entry", "own")) == Location(str(path), 5, 8)
    assert desired.locate(path, ("entry", "<<")) is None
    assert desired.locate(path, ("entry", "tool_name")) is None
    assert desired.locate(write(tmp_path, "", "empty.yaml"), ()) == Location(
        str(tmp_path / "empty.yaml"), 1, 1
    )


def test_environ_defaults_to_the_process_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_TEST_TOKEN", "from-process-env")
    path = write(
        tmp_path, "version: 1\nsecrets: [{secret_name: a, secret_value: '${RECONCILER_TEST_TOKEN}'}]\n"
    )
    secret = desired.load(path).secrets[0]
    assert secret.value is not None and secret.value.reveal() == "from-process-env"


def test_from_file_is_relative_to_the_yaml_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    (repo / ".secrets").mkdir(parents=True)
    (repo / ".secrets" / "token").write_text("file-value-1\n")
    path = write(repo, "version: 1\nsecrets: [{secret_name: a, secret_value: {from_file: .secrets/token}}]\n")
    monkeypatch.chdir(tmp_path)
    secret = desired.load(Path("repo/secrets.yaml"), environ={}).secrets[0]
    assert secret.value is not None and secret.value.reveal() == "file-value-1"
    assert path.exists()


def test_offline_skips_resolution_but_not_the_literal_rule(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - {secret_name: a, secret_value: "${NOT_SET}"}
          - {secret_name: b, secret_value: {from_file: missing}}
          - {secret_name: c, secret_value: "${SHORT}"}
        """,
    )
    state = desired.load(path, resolve=False, environ={"SHORT": "x"})
    assert [s.value for s in state.secrets] == [None, None, None]
    assert [s.value_ref for s in state.secrets] == ["${NOT_SET}", "from_file: missing", "${SHORT}"]
    literal = write(tmp_path, "version: 1\nsecrets: [{secret_name: a, secret_value: plain-text}]\n", "l.yaml")
    assert "literal value" in only(problems(literal, resolve=False)).message


def test_allow_plaintext_accepts_literals(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        version: 1
        allow_plaintext: true
        secrets:
          - secret_name: demo
            secret_value: {CANARY}
        """,
    )
    state = desired.load(path)
    assert state.allow_plaintext is True
    secret = state.secrets[0]
    assert secret.value is not None and secret.value.reveal() == CANARY
    assert secret.value_ref == "(literal)"
    assert CANARY not in repr(state)


def test_anchors_aliases_and_merge_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - &github
            secret_name: github-one
            secret_value: ${A}
            tool_name: "agno__github__*"
            tool_arg: access_token
          - <<: *github
            secret_name: github-two
            tool_arg: other_arg
          - secret_name: shared
            secret_value: *ref
            <<: [{tool_name: t1, tool_arg: a1}, {tool_name: t2, protect: true}]
        x_unused: &ref ${A}
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    # Anchors must come before their aliases; the unknown top-level key is reported too.
    assert located(found) == [(12, 19, "secrets[2].secret_value"), (14, 1, "x_unused")]
    assert "no anchor &ref before it" in found[0].message

    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - &github
            secret_name: github-one
            secret_value: &ref ${A}
            tool_name: "agno__github__*"
            tool_arg: access_token
          - <<: *github
            secret_name: github-two
            tool_arg: other_arg
          - secret_name: shared
            secret_value: *ref
            <<: [{tool_name: t1, tool_arg: a1}, {tool_name: t2, protect: true}]
        """,
    )
    state = desired.load(path, environ={"A": "abcd"})
    one, two, shared = state.secrets
    assert dict(two.fields) == {"tool_name": "agno__github__*", "tool_arg": "other_arg"}
    assert two.value_ref == "${A}"
    assert dict(shared.fields) == {"tool_name": "t1", "tool_arg": "a1"}
    assert shared.protect is True
    assert dict(one.fields) == {"tool_name": "agno__github__*", "tool_arg": "access_token"}


def test_yaml_12_scalars(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: 2024-01-01
            secret_value: ${A}
            tool_name: "007"
            tool_arg: no
            is_default_for_tool: TRUE
            protect: !!bool false
        """,
    )
    secret = desired.load(path, environ={"A": "abcd"}).secrets[0]
    assert secret.secret_name == "2024-01-01"
    assert dict(secret.fields) == {"tool_name": "007", "tool_arg": "no", "is_default_for_tool": True}
    assert secret.protect is False


def test_utf8_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(
        b"\xef\xbb\xbfversion: 1\r\nsecrets:\r\n  - secret_name: a\r\n    secret_value: ${A}\r\n"
    )
    state = desired.load(path, environ={"A": "abcd"})
    assert state.secrets[0].location == Location(str(path), 3, 5)


# --- located problems, one kind at a time --------------------------------------------------------


def test_missing_file_is_one_problem_at_1_1(tmp_path: Path) -> None:
    problem = only(problems(tmp_path / "nope.yaml"))
    assert (problem.line, problem.col, problem.key) == (1, 1, "(file)")
    assert "cannot be read" in problem.message and "check the path" in problem.message


def test_directory_instead_of_file(tmp_path: Path) -> None:
    problem = only(problems(tmp_path))
    assert (problem.line, problem.col) == (1, 1)


@pytest.mark.parametrize(
    ("text", "line", "col", "phrase"),
    [
        ("version: 1\nsecrets:\n  - secret_name: [a\n", 4, 1, "flow sequence"),
        (
            "version: 1\nsecrets:\n  - secret_name: a\n   bad: indent\n",
            4,
            4,
            "did not find expected '-' indicator",
        ),
        ("version: 1\nsecrets: 'unterminated\n", 3, 1, "quoted scalar"),
        ("version: 1\n\tsecrets: []\n", 2, 1, "tab character"),
    ],
)
def test_yaml_syntax_error_is_located(text: str, line: int, col: int, phrase: str, tmp_path: Path) -> None:
    problem = only(problems(write(tmp_path, text)))
    assert (problem.line, problem.col, problem.key) == (line, col, "(yaml)")
    assert phrase in problem.message


def test_invalid_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"version: 1\nsecrets:\n  - secret_name: caf\xe9\n")
    problem = only(problems(path))
    assert (problem.line, problem.col, problem.key) == (3, 21, "(yaml)")
    assert "UTF-8" in problem.message


def test_empty_file_and_wrong_top_level(tmp_path: Path) -> None:
    problem = only(problems(write(tmp_path, "# only a comment\n")))
    assert (problem.line, problem.col) == (1, 1) and "empty" in problem.message
    problem = only(problems(write(tmp_path, "# a list\n- version: 1\n")))
    assert (problem.line, problem.col) == (2, 1) and "must be a mapping" in problem.message


def test_several_documents(tmp_path: Path) -> None:
    problem = only(problems(write(tmp_path, "version: 1\n---\nversion: 1\n")))
    assert (problem.line, problem.col) == (2, 1) and "more than one YAML document" in problem.message


def test_duplicate_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: a
            secret_value: ${A}
            tool_arg: x
            tool_arg: y
        version: 1
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [(6, 5, "secrets[0].tool_arg"), (7, 1, "version")]
    assert all("duplicate key" in p.message for p in found)
    assert "first at line 5" in found[0].message and "first at line 1" in found[1].message


def test_odd_names_and_keys_stay_on_one_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - {secret_name: "a\\nb", secret_value: "${NOT_SET}", "odd\\nkey": 1}
          - {secret_name: "a\\nb", secret_value: "${NOT_SET}"}
        """,
    )
    found = problems(path)
    assert [str(p).count("\n") for p in found] == [0, 0, 0, 0]
    assert located(found) == [
        (3, 41, "secrets[0].secret_value"),
        (3, 55, "secrets[0].'odd\\nkey'"),
        (4, 19, "secrets[1].secret_name"),
        (4, 41, "secrets[1].secret_value"),
    ]
    assert found[0].message.startswith("secret 'a\\nb': environment variable NOT_SET")
    assert found[2].message.startswith("'a\\nb' is listed twice")


def test_unsupported_tags_and_bad_aliases(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: !custom a
            secret_value: ${A}
            tool_name: *nowhere
            protect: !!int nope
          - &loop [*loop]
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [
        (3, 18, "secrets[0].secret_name"),
        (5, 16, "secrets[0].tool_name"),
        (6, 14, "secrets[0].protect"),
        (7, 5, "secrets[1]"),
        (7, 12, "secrets[1][0]"),
    ]
    assert "tag !custom" in found[0].message
    assert "no anchor &nowhere" in found[1].message
    assert "not a valid !!int" in found[2].message
    assert found[3].message == "must be a mapping, not a list"
    assert "refers to a node that contains it" in found[4].message


def test_merge_of_a_scalar_is_reported(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nsecrets:\n  - {secret_name: a, secret_value: '${A}', <<: 3}\n")
    problem = only(problems(path, environ={"A": "abcd"}))
    assert (problem.line, problem.col, problem.key) == (3, 48, "secrets[0].<<")


def test_deep_nesting_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nworkflows: " + "[" * 100_000 + "]" * 100_000 + "\n")
    problem = only(problems(path))
    assert "nested more than" in problem.message


def test_alias_bombs_are_refused(tmp_path: Path) -> None:
    lines = ["version: 1", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    found = problems(write(tmp_path, "\n".join(lines) + "\n"))
    assert any("too many nodes" in p.message for p in found)


def test_all_problems_are_reported_in_file_order_with_a_count(tmp_path: Path) -> None:
    path = FIXTURES / "many-problems.yaml"
    with pytest.raises(DesiredFileError) as caught:
        desired.load(path, environ={"SHORT": "abc"})
    lines = str(caught.value).splitlines()
    expected = (FIXTURES / "many-problems.expected").read_text().splitlines()
    assert lines == [line.replace("FILE", str(path)).replace("DIR", str(path.parent)) for line in expected]
    assert lines[-1] == f"{len(lines) - 1} problems found"
    positions = [(p.line, p.col) for p in caught.value.problems]
    assert positions == sorted(positions)


# --- robustness --------------------------------------------------------------------------------


# Pieces of YAML as bytes, including an invalid UTF-8 byte and a document marker.
yaml_pieces = st.sampled_from(
    [
        *(bytes([c]) for c in b"abc-: \n\t[]{},'\"&*!|>#%@`?~$\\"),
        *(p.encode() for p in ('"\\n"', '"a\\rb"', "{from_file: ", "previous_names: ")),
        *(p.encode() for p in ("version: 1\n", "secrets:\n", "  - ", "secret_name: ", "secret_value: ")),
        *(p.encode() for p in ("${A}", "<<: ", "é", "---\n", "&x ", "*x")),
        b"\xff",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(yaml_pieces, max_size=40))
def test_random_yaml_never_crashes(pieces: list[bytes], tmp_path: Path) -> None:
    load_never_crashes(tmp_path / "random.yaml", b"".join(pieces))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes, tmp_path: Path) -> None:
    load_never_crashes(tmp_path / "bytes.yaml", data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(EXAMPLE.read_bytes())))
def test_truncated_example_never_crashes(cut: int, tmp_path: Path) -> None:
    load_never_crashes(tmp_path / "truncated.yaml", EXAMPLE.read_bytes()[:cut])
