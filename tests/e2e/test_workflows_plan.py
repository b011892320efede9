"""Workflow coverage inside validate (an error) and plan (its own section, never the exit code)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_plan_apply import emu, reconciler, write
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.e2e
__all__ = ["emu"]  # the fixture, shared with test_plan_apply

WORKFLOW = """
name: digest
objective: Summarise issues.
agents:
  - name: reader
    instructions: Read issues.
    model: some-model
    tools:
      - agno__github__list_issues
"""
SECRETS = """
version: 1
workflows: [flows/*.yaml]
secrets:
  - secret_name: github-token
    secret_value: ${GITHUB_TOKEN}
    tool_name: "agno__github__*"
    tool_arg: access_token
    is_default_for_tool: DEFAULT
"""


def setup(tmp: Path, default: str) -> None:
    (tmp / "flows").mkdir()
    write(tmp / "flows" / "digest.yaml", WORKFLOW)
    write(tmp / "secrets.yaml", SECRETS.replace("DEFAULT", default))


def test_validate_fails_on_an_uncovered_tool_naming_the_workflow_line(tmp_path: Path) -> None:
    setup(tmp_path, "false")
    result = reconciler("validate", "secrets.yaml", url="http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 1
    assert "digest.yaml:8:" in result.stderr and "agno__github__list_issues" in result.stderr


def test_validate_passes_when_covered(tmp_path: Path) -> None:
    setup(tmp_path, "true")
    result = reconciler("validate", "secrets.yaml", "--offline", url="http://127.0.0.1:9", cwd=tmp_path)
    assert result.returncode == 0, result.stderr


def test_plan_shows_uncovered_tools_in_their_own_section(emu: RunningEmulator, tmp_path: Path) -> None:
    setup(tmp_path, "false")
    text = reconciler("plan", "secrets.yaml", url=emu.url, cwd=tmp_path)
    assert text.returncode == 0
    assert "Workflows" in text.stdout and "agno__github__list_issues" in text.stdout
    data = json.loads(
        reconciler("plan", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path).stdout
    )
    assert [w["severity"] for w in data["workflows"]] == ["error"]
