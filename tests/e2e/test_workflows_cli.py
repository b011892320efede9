"""`reconciler workflows check|extract` end to end in a subprocess: exit codes, lines, no value shown."""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from reconciler import desired
from tests.support import cli

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CANARIES = ["ghp_CANARYcli000000000000001", "fc-CANARYcli000000000002"]
EXAMPLE_VALUES = ["EXAMPLE-not-a-real-passkey", "fc-EXAMPLE-not-a-real-key"]


def reconciler(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return cli.run(*args, cwd=cwd, secrets=[*CANARIES, *EXAMPLE_VALUES], timeout=60)


@pytest.fixture
def examples(tmp_path: Path) -> Path:
    target = tmp_path / "examples"
    shutil.copytree(EXAMPLES, target, ignore=shutil.ignore_patterns(".reconciler", ".secrets"))
    return target


def test_check_on_the_examples_passes_with_unused_warnings(examples: Path) -> None:
    result = reconciler("workflows", "check", "secrets.yaml", cwd=examples)
    assert result.returncode == 0, result.stdout + result.stderr
    entries = {
        s.secret_name: s.location for s in desired.load(examples / "secrets.yaml", resolve=False).secrets
    }
    slack, jira = entries["slack-bot-token"], entries["jira-credentials"]
    assert slack is not None and jira is not None
    assert result.stdout.splitlines() == [
        f"secrets.yaml:{slack.line}:{slack.col}: warning: secret 'slack-bot-token' is bound to "
        "agno__slack__*, which no workflow uses",
        f"secrets.yaml:{jira.line}:{jira.col}: warning: secret 'jira-credentials' is bound to "
        "agno__jira__*, which no workflow uses",
    ]
    assert result.stderr == "secrets.yaml: 2 workflow files, 7 tool uses: 0 errors, 2 warnings\n"
    strict = reconciler("workflows", "check", "secrets.yaml", "--unused-as-errors", cwd=examples)
    assert strict.returncode == 1
    assert all(": error: secret " in line for line in strict.stdout.splitlines())


def test_check_reports_uncovered_and_inline_as_errors(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "w.yaml").write_text(
        textwrap.dedent(
            f"""\
            agents:
              - name: a
                tools:
                  - agno__linear__get_issue_details
                  - [agno__github__get_issue, {{access_token: {CANARIES[0]}}}]
                  - name: Crawler-scrape_url
                    fn_self: '{{"api_key": "{CANARIES[1]}"}}'
            """
        )
    )
    (tmp_path / "secrets.yaml").write_text("version: 1\nworkflows: [flows/*.yaml]\n")
    result = reconciler("workflows", "check", "secrets.yaml", cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert [line.split(": ", 2)[:2] for line in lines] == [
        ["flows/w.yaml:4:9", "error"],
        ["flows/w.yaml:5:36", "error"],
        ["flows/w.yaml:7:20", "error"],
    ]
    assert "tool agno__linear__get_issue_details (agent 'a') needs a credential in api_token" in lines[0]
    assert "suggested entry: {secret_name: linear-api-token" in lines[0]
    assert "credential access_token of tool agno__github__get_issue" in lines[1]
    assert "serialized state (fn_self)" in lines[2]
    assert result.stderr.endswith(": 3 errors, 0 warnings\n")


def test_extract_dry_run_shows_a_masked_diff_and_writes_nothing(examples: Path) -> None:
    before = {p: p.read_bytes() for p in examples.rglob("*.yaml")}
    result = reconciler(
        "workflows",
        "extract",
        "workflows/inline/release-notes.yaml",
        "--into",
        "secrets.yaml",
        "--dry-run",
        cwd=examples,
    )
    assert result.returncode == 0, result.stderr
    assert {p: p.read_bytes() for p in examples.rglob("*.yaml")} == before
    assert result.stdout.startswith("--- a/workflows/inline/release-notes.yaml\n")
    assert "-      - [email_user, {sender_email: releases@example.com, sender_passkey: (sensitive)}]" in (
        result.stdout
    )
    assert "+      - [email_user, {sender_email: releases@example.com}]" in result.stdout
    assert """-          - '{"api_key":"(sensitive)","timeout":60}'""" in result.stdout
    assert "+  - secret_name: email-user-sender-passkey" in result.stdout
    assert "EMAIL_SENDER_PASSKEY" in result.stderr and "CRAWLER_API_KEY" in result.stderr
    assert result.stderr.endswith("Dry run: nothing was written.\n")


def test_extract_moves_the_credentials_and_says_once_what_to_set(examples: Path) -> None:
    flow = examples / "workflows" / "inline" / "release-notes.yaml"
    result = reconciler("workflows", "extract", flow, "--into", "secrets.yaml", cwd=examples)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("set them wherever reconciler runs") == 1
    assert result.stdout.count("EMAIL_SENDER_PASSKEY") == 2  # the moved line, and the variable to set
    assert "secrets.yaml: added 2 secrets" in result.stdout
    written = flow.read_text() + (examples / "secrets.yaml").read_text()
    for value in EXAMPLE_VALUES:
        assert value not in written
    assert "# Extraction demo:" in flow.read_text()
    # A second run finds nothing to move, and the workflow checks clean once its glob is listed.
    again = reconciler("workflows", "extract", flow, "--into", "secrets.yaml", cwd=examples)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    desired = examples / "secrets.yaml"
    desired.write_text(desired.read_text().replace("  - workflows/*.yaml\n", "  - workflows/**/*.yaml\n"))
    check = reconciler("workflows", "check", "secrets.yaml", cwd=examples)
    assert check.returncode == 0, check.stdout
    assert check.stderr == "secrets.yaml: 3 workflow files, 11 tool uses: 0 errors, 2 warnings\n"


def test_extract_exits_1_when_the_value_is_still_written_elsewhere(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(
        f"# {CANARIES[0]}\nagents:\n  - tools: [[agno__github__get_issue, {{access_token: {CANARIES[0]}}}]]\n"
    )
    result = reconciler("workflows", "extract", "w.yaml", "--into", "secrets.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert (
        "w.yaml:1:3: error: the value of access_token moved out of w.yaml:3 is also written here"
        in result.stderr
    )


def test_errors_are_one_located_line_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text("version: 1\nworkflows: flows/*.yaml\n")
    result = reconciler("workflows", "check", "secrets.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("secrets.yaml:2:12: workflows: must be a list")
    usage = reconciler("workflows", "extract", "w.yaml", cwd=tmp_path)
    assert usage.returncode == 1 and "--into" in usage.stderr
    listing = reconciler("workflows", "--help", cwd=tmp_path)
    assert listing.returncode == 0 and "check" in listing.stdout and "extract" in listing.stdout


def test_extract_on_a_file_iointel_wrote_with_its_model_key(tmp_path: Path) -> None:
    sdk = Path(__file__).resolve().parents[1] / "fixtures" / "workflows" / "sdk"
    shutil.copy(sdk / "store-creds.yaml", tmp_path / "labeller.yaml")
    (tmp_path / "readme.yaml").write_text("workflow:\n  - type: sentiment\n")
    result = reconciler(
        "workflows", "extract", "labeller.yaml", "readme.yaml", "--into", "s.yaml", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.startswith(
        "readme.yaml:1:1: warning: is in the `workflow:` form of iointel's README"
    )
    assert "labeller.yaml:12:3: removed the model API key (api_key) of agent 'triage-bot'" in result.stdout
    assert "set IO_API_KEY (or OPENAI_API_KEY) wherever the workflows run" in result.stdout
    assert "GITHUB_ACCESS_TOKEN  for github-list-issues-access-token, github-label-issue-access-token" in (
        result.stdout
    )
    assert "io-v2-" not in (tmp_path / "labeller.yaml").read_text()
    assert "FAKE" not in result.stdout + result.stderr  # every credential of the fixtures is FAKE...
    nothing = reconciler("workflows", "extract", "readme.yaml", "--into", "s.yaml", cwd=tmp_path)
    assert nothing.returncode == 0 and nothing.stderr.endswith(
        "No inline credentials in 1 workflow file; nothing to do.\n"
    )
