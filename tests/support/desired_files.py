"""Helpers for tests of the desired-state file: writing one, and the problems loading it reports."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest

from reconciler import desired
from reconciler.errors import DesiredFileError, Problem

REPO = Path(__file__).resolve().parent.parent.parent
EXAMPLE = REPO / "examples" / "secrets.yaml"
FIXTURES = REPO / "tests" / "fixtures" / "desired"
EXAMPLE_ENV = {
    "GITHUB_ACCESS_TOKEN": "ghp_example0001",
    "SLACK_BOT_TOKEN": "xoxb-example-0002",
    "JIRA_USER": "jira-bot",
    "JIRA_API_TOKEN": "jira-token-0003",
    "TAVILY_API_KEY": "tvly-example-0004",
}


def write(tmp_path: Path, text: str, name: str = "secrets.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def problems(path: Path, *, resolve: bool = True, environ: Mapping[str, str] | None = None) -> list[Problem]:
    with pytest.raises(DesiredFileError) as caught:
        desired.load(path, resolve=resolve, environ={} if environ is None else environ)
    found = list(caught.value.problems)
    assert found, "a DesiredFileError carries at least one problem"
    return found


def located(found: list[Problem]) -> list[tuple[int, int, str]]:
    return [(p.line, p.col, p.key) for p in found]


def only(found: list[Problem]) -> Problem:
    assert len(found) == 1, [str(p) for p in found]
    return found[0]


def load_never_crashes(path: Path, content: bytes) -> None:
    """Load `content`: it loads, or every problem it reports is located and on one line."""
    path.write_bytes(content)
    try:
        desired.load(path, environ={"A": "abcd"})
    except DesiredFileError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.line >= 1 and problem.col >= 1
            assert "\n" not in str(problem) and "\r" not in str(problem)
