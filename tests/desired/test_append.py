"""append_secrets: new entries appended to a desired-state file, everything written kept."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from reconciler import desired
from reconciler.desired import append
from reconciler.errors import DesiredFileError, LiteralValueError, ReconcilerError
from tests.support.yaml_nodes import dedent

CANARY = "canary-Zq81-do-not-print"


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
    new = append.append_secrets(path, [ENTRY, {"secret_name": "x", "secret_value": {"from_env": "X"}}])
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
    assert append.append_secrets(path, [{"secret_name": "n", "secret_value": "${N}"}]) == expected
    assert path.read_bytes() == expected.encode()


def test_append_to_a_flow_list_falls_back_to_a_round_trip(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1  # v\nsecrets: [{secret_name: a, secret_value: '${A}'}]\n")
    new = append.append_secrets(path, [{"secret_name": "n", "secret_value": "${N}"}])
    assert new.startswith("version: 1  # v\n")
    assert [s.secret_name for s in desired.load(path, resolve=False).secrets] == ["a", "n"]


def test_append_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "new.yaml"
    append.append_secrets(path, [ENTRY])
    state = desired.load(path, environ={"GITHUB_ACCESS_TOKEN": "abcd1234"})
    assert [s.secret_name for s in state.secrets] == ["github-list-issues-access-token"]
    assert dict(state.secrets[0].fields)["is_default_for_tool"] is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_append_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1\n")
    path.chmod(0o600)
    append.append_secrets(path, [ENTRY])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1\n")
    new = append.append_secrets(path, [ENTRY], dry_run=True)
    assert "github-list-issues-access-token" in new
    assert path.read_text() == "version: 1\n"
    assert append.append_secrets(tmp_path / "absent.yaml", [ENTRY], dry_run=True).startswith("version: 1\n")
    assert not (tmp_path / "absent.yaml").exists()


def test_a_literal_value_is_never_written(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1\n")
    with pytest.raises(LiteralValueError) as caught:
        append.append_secrets(path, [{"secret_name": "n", "secret_value": CANARY}])
    assert CANARY not in str(caught.value)
    assert "reference" in str(caught.value)
    assert path.read_text() == "version: 1\n"


def test_a_name_already_listed_is_refused_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "version: 1\nsecrets:\n  - secret_name: n\n    secret_value: ${N}\n")
    with pytest.raises(DesiredFileError, match=r"s.yaml:3:18: secret_name: 'n' is already listed"):
        append.append_secrets(path, [{"secret_name": "n", "secret_value": "${M}"}])
    with pytest.raises(ReconcilerError, match="two new entries"):
        append.append_secrets(path, [{"secret_name": "m", "secret_value": "${M}"}] * 2)


def test_append_refuses_a_file_that_is_not_a_desired_state(tmp_path: Path) -> None:
    path = write(tmp_path / "s.yaml", "- a\n- b\n")
    with pytest.raises(DesiredFileError, match="not a desired-state file"):
        append.append_secrets(path, [ENTRY])
    path = write(tmp_path / "t.yaml", "version: 1\nsecrets: {a: 1}\n")
    with pytest.raises(DesiredFileError, match="must be a list"):
        append.append_secrets(path, [ENTRY])
