"""Workflow globs stay inside the repository and walk a bounded number of files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.workflows import files
from reconciler.workflows.files import Walk, repository_root
from tests.support.cli import clean_env

WORKFLOW = "name: w\nagents:\n  - name: a\n    tools: [agno__github__list_issues]\n"


def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    (root / "config").mkdir()
    (root / "workflows" / "team").mkdir(parents=True)
    (root / "workflows" / "a.yaml").write_text(WORKFLOW)
    (root / "workflows" / "team" / "b.yaml").write_text(WORKFLOW)
    (root / "workflows" / ".hidden.yaml").write_text(WORKFLOW)
    return root


def names(matched: files.Matched, root: Path) -> list[str]:
    return [p.resolve().relative_to(root.resolve()).as_posix() for p in matched.files]


def test_the_root_is_the_git_work_tree_or_the_file_folder(tmp_path: Path) -> None:
    root = repo(tmp_path)
    assert repository_root(root / "config") == root.resolve()
    lone = tmp_path / "lone"
    lone.mkdir()
    assert repository_root(lone) == lone.resolve()


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("../workflows/*.yaml", ["workflows/a.yaml"]),
        ("../workflows/**/*.yaml", ["workflows/a.yaml", "workflows/team/b.yaml"]),
        ("../workflows/*/*.yaml", ["workflows/team/b.yaml"]),
        ("../workflows/.hidden.yaml", ["workflows/.hidden.yaml"]),
        ("../workflows/*.yml", []),
    ],
)
def test_globs_match_as_glob_does(tmp_path: Path, pattern: str, expected: list[str]) -> None:
    root = repo(tmp_path)
    matched = Walk(root / "config", root).match(pattern)
    assert not matched.refused
    assert names(matched, root) == expected


@pytest.mark.parametrize("pattern", ["/**", "/etc/*", "../../**", "../../../*.yaml", "**/../../x"])
def test_globs_that_leave_the_repository_are_refused(tmp_path: Path, pattern: str) -> None:
    root = repo(tmp_path)
    matched = Walk(root / "config", root).match(pattern)
    assert matched.refused and not matched.files


def test_a_symbolic_link_out_of_the_repository_is_not_read(tmp_path: Path) -> None:
    root = repo(tmp_path)
    outside = tmp_path / "outside.yaml"
    outside.write_text(WORKFLOW)
    (root / "workflows" / "link.yaml").symlink_to(outside)
    matched = Walk(root / "config", root).match("../workflows/*.yaml")
    assert names(matched, root) == ["workflows/a.yaml"]
    assert len(matched.skipped) == 1 and "outside the repository" in matched.skipped[0]


def test_the_walk_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo(tmp_path)
    monkeypatch.setattr(files, "MAX_VISITED", 20)
    for i in range(30):
        (root / "workflows" / f"w{i}.yaml").write_text(WORKFLOW)
    matched = Walk(root / "config", root).match("../**/*.yaml")
    assert "more than 20 files" in matched.refused and not matched.files


def test_the_bytes_read_are_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = repo(tmp_path)
    monkeypatch.setattr(files, "MAX_BYTES", 2 * len(WORKFLOW) - 1)
    matched = Walk(root / "config", root).match("../workflows/**/*.yaml")
    assert "MB of workflow files" in matched.refused


@pytest.mark.parametrize("pattern", ["/**", "../../**"])
def test_validate_ends_at_once_on_a_glob_of_the_whole_disk(tmp_path: Path, pattern: str) -> None:
    root = repo(tmp_path)
    (root / "config" / "secrets.yaml").write_text(f'version: 1\nworkflows: ["{pattern}"]\nsecrets: []\n')
    command = [sys.executable, "-m", "reconciler", "validate", "--offline", "secrets.yaml"]
    result = subprocess.run(
        command, cwd=root / "config", env=clean_env(), capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert f"workflows glob {pattern} " in result.stderr
