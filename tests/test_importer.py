"""Which remote secrets `import` turns into entries, from literal inputs."""

from __future__ import annotations

from reconciler.importer import select
from reconciler.models import RemoteSecret


def test_entries_reference_variables_and_carry_the_binding() -> None:
    found = select(
        [
            RemoteSecret(
                "1",
                "github-token",
                tool_name="agno__github__*",
                tool_arg="access_token",
                is_default_for_tool=True,
            )
        ],
        managed=set(),
    )
    assert found.entries == (
        {
            "secret_name": "github-token",
            "secret_value": "${GITHUB_TOKEN}",
            "tool_name": "agno__github__*",
            "tool_arg": "access_token",
            "is_default_for_tool": True,
        },
    )
    assert found.variables == (("GITHUB_TOKEN", "github-token"),)


def test_managed_names_are_skipped_and_globs_filter() -> None:
    remote = [RemoteSecret("1", "a-1"), RemoteSecret("2", "a-2"), RemoteSecret("3", "b-1")]
    found = select(remote, managed={"a-1"}, names=("a-*",))
    assert [e["secret_name"] for e in found.entries] == ["a-2"]
    assert found.skipped == ("a-1: already in the file",)


def test_duplicate_remote_names_are_reported_not_guessed() -> None:
    found = select([RemoteSecret("1", "dup"), RemoteSecret("2", "dup")], managed=set())
    assert found.entries == ()
    assert len(found.skipped) == 2 and all("secret_id" in s for s in found.skipped)


def test_colliding_variable_names_are_made_unique() -> None:
    found = select([RemoteSecret("1", "gh-token"), RemoteSecret("2", "gh.token")], managed=set())
    assert [v for v, _ in found.variables] == ["GH_TOKEN", "GH_TOKEN_2"]


def test_names_no_desired_file_can_hold_are_skipped_with_a_reason_and_the_rest_imported() -> None:
    odd = ["a\x85b", "\ud800x", "", "n" * 1025, "tab\there", "line\u2028break"]
    remote = [RemoteSecret(str(i), name) for i, name in enumerate(["ok-one", *odd, "ok-two"])]
    found = select(remote, managed=set())
    assert [e["secret_name"] for e in found.entries] == ["ok-one", "ok-two"]
    assert len(found.skipped) == len(odd)
    reasons = "\n".join(found.skipped)
    for words in ("U+0085", "not valid UTF-8", "empty", "1025 characters", "U+0009", "U+2028"):
        assert words in reasons
    assert all(reason.isprintable() and len(reason) < 200 for reason in found.skipped)
