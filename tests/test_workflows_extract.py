"""workflows extraction: inline credentials out of workflow files, into the desired state as references."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from reconciler import desired, workflows
from reconciler.errors import DesiredFileError
from reconciler.workflows import Kind

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "workflows" / "extract"
# The values pasted into the golden input workflow.
GOLDEN_VALUES = [
    "ghp_CANARYgoldenA0000000001",
    "ghp_CANARYgoldenB0000000002",
    "lin_CANARYgoldenC0000000003",
    "xoxb-CANARYgoldenD0000000004",
    "fc-CANARYgoldenE0000000005",
    "tvly-CANARYgoldenF0000000006",
]


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def golden_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flows").mkdir()
    shutil.copy(GOLDEN / "inline-forms.yaml", tmp_path / "flows" / "inline-forms.yaml")
    shutil.copy(GOLDEN / "secrets.yaml", tmp_path / "secrets.yaml")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_golden_extraction_edits_only_the_credentials(golden_project: Path) -> None:
    plan = workflows.plan_extraction([Path("flows/inline-forms.yaml")], Path("secrets.yaml"))
    # Planning writes nothing.
    assert Path("flows/inline-forms.yaml").read_text() == (GOLDEN / "inline-forms.yaml").read_text()
    assert plan.diff == (GOLDEN / "extract.expected.diff").read_text()
    workflows.apply_extraction(plan)
    assert Path("flows/inline-forms.yaml").read_text() == (GOLDEN / "inline-forms.expected.yaml").read_text()
    assert Path("secrets.yaml").read_text() == (GOLDEN / "secrets.expected.yaml").read_text()


def test_golden_files_keep_every_comment_of_the_input() -> None:
    before = (GOLDEN / "inline-forms.yaml").read_text().splitlines()
    after = (GOLDEN / "inline-forms.expected.yaml").read_text()
    for line in before:
        comment = line.strip()
        if comment.startswith("#"):
            assert comment in after
    assert (GOLDEN / "secrets.expected.yaml").read_text().startswith((GOLDEN / "secrets.yaml").read_text())


def test_no_extracted_value_is_in_any_file_output_or_representation(golden_project: Path) -> None:
    plan = workflows.plan_extraction([Path("flows/inline-forms.yaml")], Path("secrets.yaml"))
    workflows.apply_extraction(plan)
    shown = plan.diff + repr(plan) + "\n".join(str(f) for f in (*plan.moved, *plan.leftovers))
    shown += repr(plan.env) + repr(plan.entries)
    written = Path("flows/inline-forms.yaml").read_text() + Path("secrets.yaml").read_text()
    golden = "".join(
        (GOLDEN / name).read_text() for name in ("inline-forms.expected.yaml", "secrets.expected.yaml")
    )
    for value in GOLDEN_VALUES:
        assert value not in shown
        assert value not in written
        assert value not in golden
    assert plan.leftovers == ()


def test_entries_environment_variables_and_the_result_pass_the_check(golden_project: Path) -> None:
    plan = workflows.plan_extraction([Path("flows/inline-forms.yaml")], Path("secrets.yaml"))
    by_name = {str(e["secret_name"]): e for e in plan.entries}
    assert by_name["github-get-issue-access-token"] == {
        "secret_name": "github-get-issue-access-token",
        # GITHUB_ACCESS_TOKEN is already referenced by the file: the new variable gets a suffix.
        "secret_value": "${GITHUB_ACCESS_TOKEN_2}",
        "tool_name": "agno__github__get_issue",
        "tool_arg": "access_token",
        "is_default_for_tool": True,
    }
    # One value pasted into two tools is one variable; another value is another.
    assert [(e.name, e.secrets) for e in plan.env][:2] == [
        ("GITHUB_ACCESS_TOKEN_2", ("github-get-issue-access-token", "github-get-repository-access-token")),
        ("GITHUB_ACCESS_TOKEN_3", ("github-list-pull-requests-access-token",)),
    ]
    assert [e.name for e in plan.env][2:] == [
        "LINEAR_API_TOKEN",
        "SLACK_TOKEN",
        "CRAWLER_API_KEY",
        "TAVILY_API_KEY",
    ]
    assert [(m.line, m.col, m.kind) for m in plan.moved][:2] == [(13, 36, Kind.MOVED), (14, 60, Kind.MOVED)]
    workflows.apply_extraction(plan)
    report = workflows.check(desired.load(Path("secrets.yaml"), resolve=False))
    assert report.inline == () and report.uncovered == ()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dedent(text), encoding="utf-8")
    return path


def test_a_missing_desired_state_file_is_created(tmp_path: Path) -> None:
    flow = write(
        tmp_path / "w.yaml",
        "agents:\n  - name: a\n    tools: [[agno__github__get_issue, {access_token: abcdefgh1}]]\n",
    )
    into = tmp_path / "new" / "secrets.yaml"
    into.parent.mkdir()
    workflows.apply_extraction(workflows.plan_extraction([flow], into))
    assert into.read_text() == dedent(
        """
        version: 1
        secrets:
          - secret_name: github-get-issue-access-token
            secret_value: ${GITHUB_ACCESS_TOKEN}
            tool_name: agno__github__get_issue
            tool_arg: access_token
            is_default_for_tool: true
        """
    )
    assert flow.read_text() == "agents:\n  - name: a\n    tools: [agno__github__get_issue]\n"


def test_two_values_for_one_tool_argument_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    one = write(
        tmp_path / "one.yaml", "agents:\n  - tools: [[agno__github__get_issue, {access_token: valueONE1}]]\n"
    )
    two = write(
        tmp_path / "two.yaml", "agents:\n  - tools: [[agno__github__get_issue, {access_token: valueTWO2}]]\n"
    )
    into = write(tmp_path / "secrets.yaml", "version: 1\n")
    with pytest.raises(DesiredFileError) as caught:
        workflows.plan_extraction([one, two], into)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.col) == (str(two), 2, 40)
    assert problem.message.startswith(f"differs from the value at {one}:2 for the same tool and argument")
    assert "valueONE1" not in str(caught.value) and "valueTWO2" not in str(caught.value)
    assert into.read_text() == "version: 1\n"


def test_an_existing_default_for_the_same_tool_and_argument_is_refused(tmp_path: Path) -> None:
    flow = write(
        tmp_path / "w.yaml", "agents:\n  - tools: [[agno__slack__send_message, {token: xoxb-value-1}]]\n"
    )
    into = write(
        tmp_path / "secrets.yaml",
        """
        version: 1
        secrets:
          - secret_name: slack
            secret_value: ${SLACK}
            tool_name: agno__slack__send_message
            tool_arg: token
            is_default_for_tool: true
        """,
    )
    with pytest.raises(
        DesiredFileError, match=r"w.yaml:2:42: token: secret 'slack' \(.*secrets.yaml:3\) is already"
    ):
        workflows.plan_extraction([flow], into)


def test_a_value_also_written_elsewhere_is_reported_and_masked(tmp_path: Path) -> None:
    value = "ghp_CANARYleftover000000007"
    flow = write(
        tmp_path / "w.yaml",
        f"""
        # old token: {value}
        agents:
          - tools:
              - [agno__github__get_issue, {{access_token: {value}}}]
        """,
    )
    plan = workflows.plan_extraction([flow], tmp_path / "secrets.yaml")
    (leftover,) = plan.leftovers
    assert (leftover.file, leftover.line, leftover.col, leftover.kind) == (str(flow), 1, 14, Kind.LEFTOVER)
    assert value not in plan.diff and value not in str(leftover)
    assert "# old token: (sensitive)" in plan.diff


def test_a_credential_in_an_anchored_mapping_is_removed_for_every_alias(tmp_path: Path) -> None:
    flow = write(
        tmp_path / "w.yaml",
        """
        agents:
          - name: a
            tools:
              - [agno__github__get_issue, &gh {owner: acme, access_token: ghp_anchored00001}]
              - [agno__github__list_issues, *gh]
        """,
    )
    plan = workflows.plan_extraction([flow], tmp_path / "secrets.yaml")
    workflows.apply_extraction(plan)
    assert flow.read_text() == dedent(
        """
        agents:
          - name: a
            tools:
              - [agno__github__get_issue, &gh {owner: acme}]
              - [agno__github__list_issues, *gh]
        """
    )
    # Both tools were given the value through the anchor: both get a secret, with one variable.
    assert [(e["tool_name"], e["secret_value"]) for e in plan.entries] == [
        ("agno__github__get_issue", "${GITHUB_ACCESS_TOKEN}"),
        ("agno__github__list_issues", "${GITHUB_ACCESS_TOKEN}"),
    ]


def test_nothing_inline_means_nothing_to_do(tmp_path: Path) -> None:
    flow = write(tmp_path / "w.yaml", "agents:\n  - tools: [agno__github__get_issue]\n")
    plan = workflows.plan_extraction([flow, flow], tmp_path / "secrets.yaml")
    assert plan.entries == () and plan.diff == "" and plan.files_read == 1
    workflows.apply_extraction(plan)
    assert not (tmp_path / "secrets.yaml").exists()


def test_unreadable_workflows_are_all_reported(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "agents: [\n")
    with pytest.raises(DesiredFileError) as caught:
        workflows.plan_extraction([bad, tmp_path / "missing.yaml"], tmp_path / "secrets.yaml")
    assert [Path(p.file).name for p in caught.value.problems] == ["bad.yaml", "missing.yaml"]


def test_a_glob_default_already_covering_the_tool_is_a_conflict_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    flow = write(
        tmp_path / "w.yaml",
        "agents:\n  - tools: [[agno__github__get_issue, {access_token: ghp_CANARYglob00000001}]]\n",
    )
    desired_text = dedent(
        """
        version: 1
        secrets:
          - secret_name: github
            secret_value: ${GH}
            tool_name: "agno__github__*"
            tool_arg: access_token
            is_default_for_tool: true
        """
    )
    into = write(tmp_path / "secrets.yaml", desired_text)
    with pytest.raises(DesiredFileError) as caught:
        workflows.plan_extraction([flow], into)
    (problem,) = caught.value.problems
    assert (problem.line, problem.col, problem.key) == (2, 40, "access_token")
    assert problem.message.startswith(
        f"secret 'github' ({into}:3) is already the default for agno__github__get_issue access_token "
        "through agno__github__*; remove this inline value by hand"
    )
    assert "ghp_CANARYglob" not in str(caught.value)
    assert into.read_text() == desired_text and "ghp_CANARYglob00000001" in flow.read_text()


def test_a_value_too_long_for_a_secret_is_refused_and_says_why(tmp_path: Path) -> None:
    content = '{"type": "service_account", "private_key": "' + "K" * 1100 + '"}'
    flow = write(
        tmp_path / "w.yaml",
        f"agents:\n  - tools: [[agno__google_sheets__read_sheet, {{creds: '{content}'}}]]\n",
    )
    with pytest.raises(DesiredFileError) as caught:
        workflows.plan_extraction([flow], tmp_path / "secrets.yaml")
    (problem,) = caught.value.problems
    assert problem.key == "creds"
    assert (
        "over 1,024 characters, more than an io.net secret holds, so it cannot become one" in problem.message
    )
    assert "K" * 20 not in str(caught.value)
    assert not (tmp_path / "secrets.yaml").exists()


def test_the_agents_model_key_is_removed_and_no_secret_stands_for_it(tmp_path: Path) -> None:
    key = "io-v2-CANARYmodelkey0000000001"
    flow = write(
        tmp_path / "w.yaml",
        f"""
        agents:
          - name: bot
            api_key: {key}   # pasted by to_yaml(store_creds=True)
            model: m
            tools:
              - [email_user, {{sender_passkey: CANARYpasskey0002}}]
        """,
    )
    plan = workflows.plan_extraction([flow], tmp_path / "secrets.yaml")
    assert [e["tool_name"] for e in plan.entries] == ["email_user"]
    (model_key,) = plan.model_keys
    assert (model_key.line, model_key.col) == (3, 5)
    assert "no secret is added: the SDK reads it from IO_API_KEY (or OPENAI_API_KEY)" in model_key.message
    assert key not in plan.diff and "-    api_key: (sensitive)   # pasted by" in plan.diff
    workflows.apply_extraction(plan)
    assert flow.read_text() == dedent(
        """
        agents:
          - name: bot
            model: m
            tools:
              - email_user
        """
    )


def test_files_not_understood_are_named_in_the_extraction(tmp_path: Path) -> None:
    flow = write(tmp_path / "readme.yaml", "workflow:\n  - type: sentiment\n")
    plan = workflows.plan_extraction([flow], tmp_path / "secrets.yaml")
    (note,) = plan.notes
    assert note.file == str(flow) and "`workflow:` form" in note.message
