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
