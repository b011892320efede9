"""The desired-state file: loading into models, every located problem, the schema, and robustness."""

from __future__ import annotations

import hashlib
import json
import shutil
import textwrap
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import desired
from reconciler.errors import DesiredFileError, Problem
from reconciler.models import Location, Prune

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "secrets.yaml"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "desired"
CANARY = "canary-Vk3q9-secret"
EXAMPLE_ENV = {
    "GITHUB_ACCESS_TOKEN": "ghp_example0001",
    "SLACK_BOT_TOKEN": "xoxb-example-0002",
    "JIRA_USER": "jira-bot",
    "JIRA_API_TOKEN": "jira-token-0003",
    "TAVILY_API_KEY": "tvly-example-0004",
}


def write(tmp_path: Path, text: str, name: str = "secrets.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, *, resolve: bool = True, environ: Mapping[str, str] | None = None) -> list[Problem]:
    with pytest.raises(DesiredFileError) as caught:
        desired.load(path, resolve=resolve, environ={} if environ is None else environ)
    found = list(caught.value.problems)
    assert found, "a DesiredFileError carries at least one problem"
    return found


def located(found: list[Problem]) -> list[tuple[int, int, str]]:
    return [(p.line, p.col, p.key) for p in found]


def only(found: list[Problem]) -> Problem:
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


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
    assert (
        EXAMPLE.parent / "../schemas/desired-state.schema.json"
    ).resolve() == desired.SCHEMA_FILE.resolve()


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


@pytest.mark.parametrize(
    ("text", "line", "col", "phrase"),
    [
        ("version: 2\nsecrets: [{bogus: 1}]\n", 1, 10, "version 2 is not supported"),
        ("version: '1'\n", 1, 10, "must be the number 1, not text"),
        ("version: true\n", 1, 10, "must be the number 1, not a boolean"),
        ("secrets: []\n", 1, 1, "missing; start the file with 'version: 1'"),
    ],
)
def test_wrong_version(text: str, line: int, col: int, phrase: str, tmp_path: Path) -> None:
    problem = only(problems(write(tmp_path, text)))
    assert (problem.line, problem.col, problem.key) == (line, col, "version")
    assert phrase in problem.message


def test_unknown_keys_with_suggestions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        prunee: true
        secrets:
          - secret_name: a
            secret_value: ${A}
            tool_nmae: "agno__github__*"
            colour: blue
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [(2, 1, "prunee"), (6, 5, "secrets[0].tool_nmae"), (7, 5, "secrets[0].colour")]
    assert found[0].message == "unknown key; did you mean 'prune'?"
    assert found[1].message == "unknown key; did you mean 'tool_name'?"
    assert found[2].message.startswith("unknown key; expected one of: secret_name, secret_value, tool_name")


def test_wrong_types(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        allow_plaintext: "sure"
        workflows: flows/*.yaml
        prune: sometimes
        secrets:
          - secret_name: 12
            secret_value: ${A}
            tool_name: [agno__github__a, agno__github__b]
            tool_arg: 7
            is_default_for_tool: yes
            previous_names: old-name
            protect: 1
          - just-a-string
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [
        (2, 18, "allow_plaintext"),
        (3, 12, "workflows"),
        (4, 8, "prune"),
        (6, 18, "secrets[0].secret_name"),
        (8, 16, "secrets[0].tool_name"),
        (9, 15, "secrets[0].tool_arg"),
        (10, 26, "secrets[0].is_default_for_tool"),
        (11, 21, "secrets[0].previous_names"),
        (12, 14, "secrets[0].protect"),
        (13, 5, "secrets[1]"),
    ]
    messages = [p.message for p in found]
    assert messages[0] == "must be true or false, not text"
    assert messages[1] == "must be a list, not text"
    assert messages[2] == "must be true, false or {match: [GLOB, ...]}, not text"
    assert messages[3] == "must be text, not a number; quote it if it is meant as text"
    assert "one tool name" in messages[4] and "not a list" in messages[4]
    assert messages[5] == "must be text or null, not a number; quote it if it is meant as text"
    assert messages[6] == "must be true, false or null, not text (YAML 1.2 reads yes/no/on/off as text)"
    assert messages[7] == "must be a list, not text"
    assert messages[8] == "must be true or false, not a number"
    assert messages[9] == "must be a mapping, not text"


def test_prune_mapping_problems(tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nprune: {match: [], mach: x}\n")
    found = problems(path)
    assert located(found) == [(2, 16, "prune.match"), (2, 20, "prune.mach")]
    assert found[0].message == "must list at least 1 item"
    assert found[1].message == "unknown key; did you mean 'match'?"
    found = problems(write(tmp_path, "version: 1\nprune: {}\n"))
    assert located(found) == [(2, 8, "prune.match")]
    assert "missing" in found[0].message


def test_missing_required_entry_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - tool_name: x
          - secret_name: only-name
        """,
    )
    found = problems(path)
    assert located(found) == [
        (3, 5, "secrets[0].secret_name"),
        (3, 5, "secrets[0].secret_value"),
        (4, 5, "secrets[1].secret_value"),
    ]
    assert found[0].message == "missing; every secret needs a name"
    assert found[2].message == "missing; every secret needs a value reference such as ${NAME}"


def test_name_limits(tmp_path: Path) -> None:
    long_name = "n" * 1025
    path = write(
        tmp_path,
        f"""
        version: 1
        secrets:
          - secret_name: ""
            secret_value: ${{A}}
            tool_arg: ""
          - secret_name: {long_name}
            secret_value: ${{A}}
            previous_names: [ok, ok]
            secret_id: not-a-uuid
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [
        (3, 18, "secrets[0].secret_name"),
        (5, 15, "secrets[0].tool_arg"),
        (6, 18, "secrets[1].secret_name"),
        (8, 21, "secrets[1].previous_names"),
        (9, 16, "secrets[1].secret_id"),
    ]
    assert [p.message for p in found] == [
        "is empty",
        "is empty",
        "is 1025 characters long; the API accepts at most 1024",
        "lists 'ok' more than once",
        "must be a UUID such as 0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c",
    ]


def test_duplicate_secret_names(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: github-token
            secret_value: ${A}
          - secret_name: other
            secret_value: ${A}
          - secret_name: github-token
            secret_value: ${A}
        """,
    )
    problem = only(problems(path, environ={"A": "abcd"}))
    assert (problem.line, problem.col, problem.key) == (7, 18, "secrets[2].secret_name")
    assert problem.message == (
        "'github-token' is listed twice (first in the entry at line 3); secret names must be unique"
    )


def test_previous_names_collisions(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: linear-key
            secret_value: ${A}
            previous_names: [linear-old, github-token]
          - secret_name: github-token
            secret_value: ${A}
            previous_names: [github-token]
          - secret_name: third
            secret_value: ${A}
            previous_names:
              - linear-old
        """,
    )
    found = problems(path, environ={"A": "abcd"})
    assert located(found) == [
        (5, 34, "secrets[0].previous_names[1]"),
        (8, 22, "secrets[1].previous_names[0]"),
        (12, 9, "secrets[2].previous_names[0]"),
    ]
    assert found[0].message == (
        "'github-token' is the secret_name of the entry at line 6; a name cannot be both current and previous"
    )
    assert found[1].message == "'github-token' is this entry's own secret_name; remove it"
    assert found[2].message == (
        "'linear-old' is also a previous name of the entry at line 3; a rename needs a single target"
    )


def test_duplicate_secret_id(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - {secret_name: a, secret_value: "${A}", secret_id: 0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c}
          - {secret_name: b, secret_value: "${A}", secret_id: 0B3E1C4A-2F7D-4C1E-9A8B-5D6F7E8A9B0C}
        """,
    )
    problem = only(problems(path, environ={"A": "abcd"}))
    assert (problem.line, problem.col, problem.key) == (4, 55, "secrets[1].secret_id")
    assert "also pinned by the entry at line 3" in problem.message


def test_two_defaults_for_the_same_tool_and_arg(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: github-a
            secret_value: ${A}
            tool_name: "agno__github__*"
            tool_arg: access_token
            is_default_for_tool: true
          - secret_name: github-other-arg
            secret_value: ${A}
            tool_name: "agno__github__*"
            tool_arg: other
            is_default_for_tool: true
          - secret_name: github-not-default
            secret_value: ${A}
            tool_name: "agno__github__*"
            tool_arg: access_token
            is_default_for_tool: false
          - secret_name: github-b
            secret_value: ${A}
            tool_name: "agno__github__*"
            tool_arg: access_token
            is_default_for_tool: true
        """,
    )
    problem = only(problems(path, environ={"A": "abcd"}))
    assert (problem.line, problem.col, problem.key) == (22, 26, "secrets[3].is_default_for_tool")
    assert problem.message == (
        "the entry at line 3 is already the default for tool_name 'agno__github__*' and tool_arg "
        "'access_token'; only one secret can be"
    )


def test_missing_environment_variable_and_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        version: 1
        secrets:
          - secret_name: github-token
            secret_value: ${GITHUB_ACCESS_TOKEN}
          - secret_name: slack
            secret_value: {from_env: SLACK_BOT_TOKEN}
          - secret_name: linear-key
            secret_value:
              from_file: .secrets/linear
        """,
    )
    found = problems(path, environ={"PATH": "/bin"})
    assert located(found) == [
        (4, 19, "secrets[0].secret_value"),
        (6, 19, "secrets[1].secret_value"),
        (9, 7, "secrets[2].secret_value"),
    ]
    assert found[0].message == (
        "secret 'github-token': environment variable GITHUB_ACCESS_TOKEN is not set; export it first"
    )
    assert (
        found[1].message == "secret 'slack': environment variable SLACK_BOT_TOKEN is not set; export it first"
    )
    assert found[2].message.startswith("secret 'linear-key': file .secrets/linear not found (looked for ")


@pytest.mark.parametrize(("value", "length"), [("abc", 3), ("x" * 1025, 1025)])
def test_value_outside_api_limits(value: str, length: int, tmp_path: Path) -> None:
    path = write(tmp_path, "version: 1\nsecrets:\n  - secret_name: short\n    secret_value: ${TOKEN}\n")
    problem = only(problems(path, environ={"TOKEN": value}))
    assert (problem.line, problem.col, problem.key) == (4, 19, "secrets[0].secret_value")
    assert f"resolves to a value {length} characters long (from TOKEN)" in problem.message
    assert value not in str(problem)


def test_literal_without_allow_plaintext(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        version: 1
        allow_plaintext: false
        secrets:
          - secret_name: github-token
            secret_value: "{CANARY}"
        """,
    )
    problem = only(problems(path))
    assert (problem.line, problem.col, problem.key) == (5, 19, "secrets[0].secret_value")
    assert problem.message.startswith("secret 'github-token': a literal value must not be committed")
    assert "${GITHUB_TOKEN}" in problem.message and "allow_plaintext: true" in problem.message
    assert CANARY not in problem.message


def test_malformed_value_references_are_located(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        version: 1
        secrets:
          - {{secret_name: a, secret_value: {{from_env: {CANARY}}}}}
          - {{secret_name: b, secret_value: {{from_env: A, from_file: b}}}}
          - {{secret_name: c, secret_value: [{CANARY}]}}
          - {{secret_name: d, secret_value: "{CANARY}${{"}}
          - {{secret_name: e, secret_value: {{{CANARY}: x}}}}
          - {{secret_name: f, secret_value: 12345678}}
          - {{secret_name: g, secret_value: !!binary aGVsbG8=}}
        """,
    )
    found = problems(path)
    assert located(found) == [(n, 36, f"secrets[{n - 3}].secret_value") for n in range(3, 10)]
    for problem in found:
        assert CANARY not in str(problem)
    assert "from_env must be an environment variable name" in found[0].message
    assert "exactly one of from_env or from_file" in found[1].message
    assert "not a list" in found[2].message
    assert "does not start a reference" in found[3].message
    assert "unknown key" in found[4].message
    assert "not a number" in found[5].message
    assert "!!binary" in found[6].message


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


# --- the schema --------------------------------------------------------------------------------


def test_schema_is_draft_2020_12_and_every_property_is_described() -> None:
    schema = json.loads(desired.SCHEMA_FILE.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"

    def walk(node: object, where: str) -> None:
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert sub.get("description"), f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for index, sub in enumerate(node):
                walk(sub, f"{where}[{index}]")

    walk(schema, "$")
    assert set(schema["properties"]) == set(desired.TOP_KEYS)
    assert set(schema["$defs"]["secret"]["properties"]) == set(desired.ENTRY_KEYS)


def test_example_satisfies_the_schema() -> None:
    from ruamel.yaml import YAML

    data = YAML(typ="safe").load(EXAMPLE.read_bytes())
    jsonschema.Draft202012Validator(desired.schema()).validate(data)


# Documents for comparing the fast conformance check with jsonschema: valid ones, then up to two
# mutations each (a key dropped, or set to an odd or borderline value), so both verdicts are common.
UUID = "0b3e1c4a-2f7d-4c1e-9a8b-5d6f7e8a9b0c"
names = st.one_of(st.text(min_size=1, max_size=4), st.just("x" * 1024))
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1, 2),
    st.sampled_from([1.0, 0.5, "", "x" * 1025, "1", "A\n", f"{UUID}\n", f"x{UUID}", "yes", UUID.upper()]),
    st.sampled_from(["30d", "0d", "30d\n", "1w", "99999h", "100000h", "7 d", "30"]),
    st.lists(st.sampled_from(["a", "a", "", 1, None]), max_size=3),
    st.sampled_from(
        [
            {},
            {"match": []},
            {"match": ["a"]},
            {"from_env": "1A"},
            {"from_env": "A_1"},
            {"from_file": ""},
            {"from_file": "p", "from_env": "A"},
            {"x": 1},
            {"from_env": "A\n"},
        ]
    ),
    st.text(max_size=3),
)
valid_values = st.one_of(
    st.text(max_size=5),
    st.fixed_dictionaries({"from_env": st.sampled_from(["A_1", "_B", "c"])}),
    st.fixed_dictionaries({"from_file": st.text(min_size=1, max_size=4)}),
)
valid_entries = st.fixed_dictionaries(
    {"secret_name": names, "secret_value": valid_values},
    optional={
        "tool_name": st.one_of(st.none(), names),
        "tool_arg": st.one_of(st.none(), names),
        "is_default_for_tool": st.one_of(st.none(), st.booleans()),
        "previous_names": st.lists(names, unique=True, max_size=2),
        "protect": st.booleans(),
        "secret_id": st.sampled_from([UUID, UUID.upper()]),
        "max_age": st.sampled_from(["12h", "90d", "4w"]),
    },
)
valid_documents = st.fixed_dictionaries(
    {"version": st.just(1)},
    optional={
        "allow_plaintext": st.booleans(),
        "prune": st.one_of(
            st.booleans(), st.fixed_dictionaries({"match": st.lists(names, min_size=1, max_size=2)})
        ),
        "workflows": st.lists(st.text(min_size=1, max_size=3), max_size=2),
        "max_age": st.sampled_from(["1h", "30d"]),
        "secrets": st.one_of(st.none(), st.lists(valid_entries, max_size=3)),
    },
)


@st.composite
def near_valid_documents(draw: st.DrawFn) -> object:
    document: dict[str, object] = draw(valid_documents)
    for _ in range(draw(st.integers(0, 2))):
        target: dict[str, object] = document
        keys: tuple[str, ...] = (*desired.TOP_KEYS, "secretz")
        entries = document.get("secrets")
        if isinstance(entries, list) and entries and draw(st.booleans()):
            entry = draw(st.sampled_from(entries))
            if isinstance(entry, dict):
                target, keys = entry, (*desired.ENTRY_KEYS, "tool_nmae")
        key = draw(st.sampled_from(keys))
        if key in target and draw(st.integers(0, 3)) == 0:
            del target[key]
        else:
            target[key] = draw(odd)
    return document


documents = st.one_of(odd, near_valid_documents())


@settings(max_examples=400, deadline=None)
@given(document=documents)
def test_fast_conformance_check_agrees_with_jsonschema(document: object) -> None:
    assert desired.conforms(document) == jsonschema.Draft202012Validator(desired.schema()).is_valid(document)


# --- robustness --------------------------------------------------------------------------------


def _load_never_crashes(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    try:
        desired.load(path, environ={"A": "abcd"})
    except DesiredFileError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line >= 1 and problem.col >= 1
            assert "\n" not in str(problem) and "\r" not in str(problem)


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
    _load_never_crashes(tmp_path / "random.yaml", b"".join(pieces))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=200))
def test_random_bytes_never_crash(data: bytes, tmp_path: Path) -> None:
    _load_never_crashes(tmp_path / "bytes.yaml", data)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(EXAMPLE.read_bytes())))
def test_truncated_example_never_crashes(cut: int, tmp_path: Path) -> None:
    _load_never_crashes(tmp_path / "truncated.yaml", EXAMPLE.read_bytes()[:cut])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=documents)
def test_any_document_shape_loads_or_reports(document: object, tmp_path: Path) -> None:
    _load_never_crashes(tmp_path / "shape.yaml", json.dumps(document).encode())
