"""Rules across the entries of a desired-state file, and its value references."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.desired_files import located, only, problems, write

CANARY = "canary-Vk3q9-secret"


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
