"""`check` and `extract` on workflow files written by iointel's own serializer (Workflow.to_yaml)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from reconciler import desired, workflows, yaml_tree
from reconciler.workflows import Kind
from tools.workflow_fixtures import generate

SDK = Path(__file__).resolve().parent / "fixtures" / "workflows" / "sdk"
FILES = sorted(p.name for p in SDK.glob("*.yaml"))
FAKES = [
    generate.AGENT_KEY,
    generate.GITHUB_TOKEN,
    generate.LINEAR_KEY,
    generate.CRAWLER_KEY,
    generate.WEATHER_KEY,
    generate.EMAIL_PASSKEY,
    generate.RETRIEVAL_KEY,
]
# The credential field of each SDK class the fixtures use (Calculator has none).
CREDENTIAL = {
    "Github": "access_token",
    "Linear": "api_token",
    "Crawler": "api_key",
    "OpenWeather": "api_key",
    "Email": "sender_passkey",
    "RetrievalEngine": "api_key",
    "Calculator": None,
}


def agents_of(data: dict[str, Any]) -> list[dict[str, Any]]:
    """Every agent of to_yaml's output, swarm members (["members", [...]] in a task) included."""
    found: list[dict[str, Any]] = []

    def add(items: list[Any]) -> None:
        for item in items:
            if isinstance(item, list) and item[0] == "members":
                add(item[1])
            else:
                found.append(item)

    add(data.get("agents") or [])
    for task in data.get("tasks") or []:
        add(task.get("agents") or [])
    return found


def expected(name: str) -> tuple[set[tuple[str, str]], set[str]]:
    """(tool, credential argument) pairs written in the file, and the credentialed tools it uses."""
    data = load(SDK / name)
    written: set[tuple[str, str]] = set()
    used: set[str] = set()
    for agent in agents_of(data):
        if agent.get("api_key") not in (None, "**********"):
            written.add(("", "api_key"))
        for tool in agent["tools"]:
            arg = CREDENTIAL[tool["fn_self"][0].rsplit(":", 1)[1]]
            if arg is not None:
                used.add(tool["name"])
                if json.loads(tool["fn_self"][1]).get(arg) is not None:
                    written.add((tool["name"], arg))
    return written, used


def load(path: Path) -> dict[str, Any]:
    root = yaml_tree.read_yaml(path).root
    assert root is not None
    data = root.to_python()
    assert isinstance(data, dict)
    return data


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copytree(SDK, tmp_path / "flows")
    (tmp_path / "secrets.yaml").write_text("version: 1\nworkflows: [flows/*.yaml]\n")
    return tmp_path


def test_the_fixtures_are_what_iointel_wrote() -> None:
    assert len(FILES) >= 8
    for name in FILES:
        head = (SDK / name).read_text().splitlines()[0]
        assert head.startswith("# Written by iointel 1.7.2 Workflow.to_yaml("), name


def test_check_reports_every_credential_at_its_line_and_nothing_else(project: Path) -> None:
    report = workflows.check(desired.load(project / "secrets.yaml", resolve=False))
    assert report.uncovered == () and report.problems == () and report.conflicts == ()
    found = {(Path(f.file).name, f.tool, f.arg) for f in report.inline}
    wanted = {(name, tool, arg) for name in FILES for tool, arg in expected(name)[0]}
    assert found == wanted
    assert len(report.inline) == 18  # same tool pairs in several agents are several findings
    for finding in report.inline:
        line = Path(finding.file).read_text().splitlines()[finding.line - 1]
        key = f'"{finding.arg}"' if finding.tool else f"{finding.arg}:"
        assert line[finding.col - 1 :].startswith(key), (finding.file, finding.line)
    shown = "\n".join(workflows.format_findings(report)) + repr(report)
    assert not [fake for fake in FAKES if fake in shown]


def test_extract_moves_every_credential_out_keeping_the_rest_of_each_file(project: Path) -> None:
    flows = sorted((project / "flows").glob("*.yaml"))
    before = {p.name: p.read_text() for p in flows}
    plan = workflows.plan_extraction(flows, project / "secrets.yaml")
    assert not [fake for fake in FAKES if fake in plan.diff + repr(plan)]
    workflows.apply_extraction(plan)
    for path in [*flows, project / "secrets.yaml"]:
        text = path.read_text()
        assert not [fake for fake in FAKES if fake in text], path.name
    for path in flows:
        after = path.read_text()
        # The header comments, and everything but the credentials, stay as they were.
        assert after.splitlines()[:3] == before[path.name].splitlines()[:3]
        assert normalised(load(path)) == normalised(load(SDK / path.name), drop_credentials=True)
    entries = load(project / "secrets.yaml")["secrets"]
    assert all(e["secret_value"].startswith("${") and e["is_default_for_tool"] is True for e in entries)
    assert {e["tool_name"] for e in entries} == {t for n in FILES for t, _a in expected(n)[0] if t}
    # The model key becomes no secret.
    assert [m.file.rsplit("/", 1)[1] for m in plan.model_keys] == ["store-creds.yaml"]
    report = workflows.check(desired.load(project / "secrets.yaml", resolve=False))
    assert report.errors == () and report.warnings == ()


def normalised(data: dict[str, Any], *, drop_credentials: bool = False) -> dict[str, Any]:
    """The file's data with fn_self's JSON parsed, and (before extraction) the credentials taken out."""
    for agent in agents_of(data):
        if drop_credentials and agent.get("api_key") not in (None, "**********"):
            del agent["api_key"]
        for tool in agent["tools"]:
            state = json.loads(tool["fn_self"][1])
            if drop_credentials:
                state.pop(CREDENTIAL[tool["fn_self"][0].rsplit(":", 1)[1]] or "", None)
            tool["fn_self"][1] = state
    return data


def test_coverage_reports_every_credentialed_tool_once_the_credentials_are_out(project: Path) -> None:
    flows = sorted((project / "flows").glob("*.yaml"))
    workflows.apply_extraction(workflows.plan_extraction(flows, project / "elsewhere.yaml"))
    report = workflows.check(desired.load(project / "secrets.yaml", resolve=False))
    assert report.inline == ()
    found = {(Path(f.file).name, f.tool) for f in report.uncovered}
    assert found == {(name, tool) for name in FILES for tool in expected(name)[1]}
    assert all(f.kind is Kind.UNCOVERED and f.suggestion for f in report.uncovered)
    assert "calculator_add" not in {f.tool for f in report.uncovered}
