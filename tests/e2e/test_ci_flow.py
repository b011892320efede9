"""The pull-request flow as CI runs it: the saved plan is the approval, and the logs say what happens."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from reconciler.commands.apply import command as apply_command
from reconciler.options import PLANNING_FLAGS
from tests.e2e.test_plan_apply import BASE, CANARIES, emu, reconciler, secrets_of, write
from tests.e2e.test_saved_plan import writes_since
from tests.support import cli
from tests.support.emulator import RunningEmulator, start_emulator
from tests.support.terminal import run_in_terminal

pytestmark = pytest.mark.e2e
__all__ = ["emu"]  # the fixture, shared with test_plan_apply
THREE = BASE + "  - secret_name: slack-token\n    secret_value: ${SLACK_TOKEN}\n"


def saved_plan(emu: RunningEmulator, cwd: Path, text: str = BASE) -> Path:
    write(cwd / "secrets.yaml", text)
    result = reconciler("plan", "secrets.yaml", "--out", "plan.json", url=emu.url, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd / "plan.json"


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--prune"], "--prune"),
        (["--no-prune"], "--no-prune"),
        (["--force-values"], "--force-values"),
        (["--heal"], "--heal"),
        (["--allow-empty"], "--allow-empty"),
        (["--max-deletes", "0"], "--max-deletes"),
        (["--max-deletes", "50"], "--max-deletes"),
        (["--adopt"], "--adopt"),
        (["--ignore-state"], "--ignore-state"),
        (["--assume-complete-listing"], "--assume-complete-listing"),
        (["--heal", "--no-prune", "--auto-approve"], "--no-prune, --heal"),
    ],
)
def test_planning_flags_are_refused_with_a_saved_plan(
    emu: RunningEmulator, tmp_path: Path, flags: list[str], named: str
) -> None:
    saved_plan(emu, tmp_path)
    before = len(emu.requests())
    result = reconciler("apply", "plan.json", *flags, url=emu.url, cwd=tmp_path)
    assert result.returncode == 1
    assert f"plan.json is a saved plan, applied exactly as it was reviewed: {named} cannot change it" in (
        result.stderr
    )
    assert "nothing was changed" in result.stderr
    # Refused before anything: no request at all, and no state file.
    assert emu.requests()[before:] == []
    assert not (tmp_path / ".reconciler" / "state.json").exists()


def test_every_planning_option_of_apply_is_in_the_refusal_table() -> None:
    """A new planning flag added to apply without a line in PLANNING_FLAGS would slip through."""
    kept = {"auto_approve", "concurrency", "break_lock", "fmt", "file"}
    connection = {"api_url", "auth_header", "state_path", "timeout"}
    names = {p.name for p in apply_command.params if p.expose_value} - kept - connection
    assert names == set(PLANNING_FLAGS)


def test_the_saved_plan_is_the_approval_without_a_terminal(emu: RunningEmulator, tmp_path: Path) -> None:
    plan = saved_plan(emu, tmp_path)
    applied = reconciler("apply", "plan.json", url=emu.url, cwd=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "2 succeeded, 0 failed" in applied.stdout
    assert sorted(s["secret_name"] for s in secrets_of(emu)) == ["github-token", "linear-key"]

    # --auto-approve is accepted with a plan and changes nothing about it.
    write(tmp_path / "secrets.yaml", THREE)
    assert reconciler("plan", "secrets.yaml", "--out", "next.json", url=emu.url, cwd=tmp_path).returncode == 0
    again = reconciler("apply", "next.json", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "1 succeeded, 0 failed" in again.stdout
    assert plan.exists()


def test_applying_a_file_without_a_terminal_still_asks(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    result = reconciler("apply", "secrets.yaml", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1
    assert "needs confirmation and there is no terminal" in result.stderr
    assert "pass --auto-approve, or apply a plan saved by `reconciler plan --out`" in result.stderr
    assert secrets_of(emu) == []


def test_a_plan_applied_from_another_directory_reads_its_file_beside_it(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    saved_plan(emu, repo)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = reconciler("apply", "../repo/plan.json", url=emu.url, cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert len(secrets_of(emu)) == 2
    # The state lives beside the desired file, not in the directory apply ran from.
    assert (repo / ".reconciler" / "state.json").exists()
    assert not (elsewhere / ".reconciler").exists()


def test_a_plan_whose_file_is_gone_is_named_in_the_error(emu: RunningEmulator, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    saved_plan(emu, repo)
    (repo / "secrets.yaml").rename(repo / "moved.yaml")
    before = len(emu.requests())
    result = reconciler("apply", "repo/plan.json", url=emu.url, cwd=tmp_path)
    assert result.returncode == 1
    first = result.stderr.splitlines()[0]
    assert first.startswith(
        "repo/plan.json: the desired-state file this plan was made from, repo/secrets.yaml"
    )
    assert "(relative to the plan), cannot be used; nothing was sent" in first
    assert writes_since(emu, before) == []


def test_quiet_leaves_stderr_to_errors_and_stdout_its_payload(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    planned = reconciler("plan", "secrets.yaml", "--out", "plan.json", "-q", url=emu.url, cwd=tmp_path)
    assert planned.returncode == 0
    assert planned.stderr == ""
    assert "Plan: 2 to create" in planned.stdout
    applied = reconciler("apply", "plan.json", "-q", url=emu.url, cwd=tmp_path)
    assert applied.returncode == 0
    assert applied.stderr == ""  # no progress lines either
    assert "2 succeeded" in applied.stdout
    again = reconciler("apply", "plan.json", "-q", url=emu.url, cwd=tmp_path)
    assert again.returncode == 1 and "already applied" in again.stderr


def test_verbose_shows_where_it_talks_and_keeps_its_state(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    result = reconciler("plan", "secrets.yaml", "-v", url=emu.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"API: {emu.url} (key sent as bearer)" in result.stderr.splitlines()
    assert "state: .reconciler/state.json" in result.stderr.splitlines()
    assert "e2e-key" not in result.stderr
    both = reconciler("plan", "secrets.yaml", "-v", "-q", url=emu.url, cwd=tmp_path)
    assert both.returncode == 1 and "-v and -q cannot be used together" in both.stderr


def test_verbose_shows_each_retry_and_its_reason(tmp_path: Path) -> None:
    """One request a second: the writes that follow the listing are answered 429, and -v says so."""
    with start_emulator("--rate-limit", "1", db_path=tmp_path / "limited.db") as limited:
        write(tmp_path / "secrets.yaml", THREE)
        result = reconciler("apply", "secrets.yaml", "--auto-approve", "-v", url=limited.url, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        retries = [line for line in result.stderr.splitlines() if "reconciler.client: retry " in line]
        assert retries, result.stderr
        assert re.search(r"retry 1 of 4 in \d+\.\d\ds \(as Retry-After asks\): .*HTTP 429", retries[0])
        quiet = reconciler("plan", "secrets.yaml", url=limited.url, cwd=tmp_path)
        assert "retry" not in quiet.stderr


def test_each_write_is_reported_on_stderr_as_it_completes(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", THREE)
    result = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert [line[:6] for line in progress] == ["[1/3] ", "[2/3] ", "[3/3] "]
    assert sorted(line[6:] for line in progress) == [
        "✓ created github-token",
        "✓ created linear-key",
        "✓ created slack-token",
    ]
    # The report on stdout keeps plan order, whatever order the writes completed in.
    report = [line for line in result.stdout.splitlines() if line.startswith("✓")]
    assert report == ["✓ created github-token", "✓ created linear-key", "✓ created slack-token"]


def test_a_terminal_gets_a_bar_instead_of_lines(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", THREE)
    env = cli.clean_env({**CANARIES, "IOINTELLIGENCE_API_KEY": "e2e-key", "RECONCILER_API_URL": emu.url})
    code, screen = run_in_terminal(
        [*cli.argv("apply", "secrets.yaml", "--auto-approve")], env=env, cwd=tmp_path, timeout=120
    )
    assert code == 0, screen
    assert "Applying" in screen and "3/3" in screen
    assert "[1/3]" not in screen
    assert all(secret not in screen for secret in CANARIES.values())


def test_the_markdown_comment_names_the_account_host_the_file_and_the_plan(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    result = reconciler(
        "plan", "secrets.yaml", "--format", "markdown", "--out", "plan.json", url=emu.url, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    host = emu.url.removeprefix("http://").replace(".", "&#46;").replace(":", "&#58;")
    header = result.stdout.splitlines()[0]
    assert header == f"#### reconciler plan for <code>secrets&#46;yaml</code> on <code>{host}</code>"
    plan_id = json.loads((tmp_path / "plan.json").read_text())["plan_id"]
    assert f"<sub>Saved plan <code>{plan_id}</code>" in result.stdout.splitlines()[-1]
    assert "e2e-key" not in result.stdout


def test_every_command_takes_the_same_output_switches(tmp_path: Path) -> None:
    commands = [
        ["validate"],
        ["plan"],
        ["apply"],
        ["drift"],
        ["import"],
        ["forget"],
        ["workflows", "check"],
        ["workflows", "extract"],
        ["emulator"],
    ]
    for command in commands:
        result = cli.run(*command, "--help", cwd=tmp_path)
        assert result.returncode == 0, command
        for switch in ("-v, --verbose", "-q, --quiet", "--no-color"):
            assert switch in result.stdout, (command, switch)
    forget = cli.run("forget", "--help", cwd=tmp_path).stdout
    assert "--api-url" not in forget and "--timeout" not in forget and "symmetry" not in forget
    assert "--log-requests / --no-log-requests" in cli.run("emulator", "--help", cwd=tmp_path).stdout


def test_help_says_what_the_code_does(tmp_path: Path) -> None:
    apply_help = " ".join(cli.run("apply", "--help", cwd=tmp_path).stdout.split())
    assert "never more than half of the secrets this file manages" in apply_help
    assert "1 to 64" in apply_help
    assert "A saved PLAN never asks" in apply_help
    import_help = " ".join(cli.run("import", "--help", cwd=tmp_path).stdout.split())
    assert "(default: secrets.yaml" in import_help
