"""workflows.check: tools found, coverage (exact, wildcard, argument, default), unused, inline credentials."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler import desired, workflows, yaml_tree
from reconciler.desired.append import append_secrets
from reconciler.models import DesiredState
from reconciler.workflows import Finding, Kind, Severity

CANARY = "ghp_CANARYcheck00000000000001"
CANARY_FN = "fc-CANARYfnself0000000002"

DIGEST = """
name: digest
objective: Summarise new issues.
agents:
  - name: reader
    model: meta-llama/Llama-3.3-70B-Instruct
    tools:
      - agno__github__list_issues
      - calculator_add
"""


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def project(tmp_path: Path, secrets: str, **flows: str) -> DesiredState:
    """A desired-state file listing `flows/*.yaml`, and those workflow files; the state loaded offline."""
    (tmp_path / "flows").mkdir(exist_ok=True)
    for name, text in flows.items():
        (tmp_path / "flows" / f"{name}.yaml").write_text(dedent(text), encoding="utf-8")
    path = tmp_path / "secrets.yaml"
    path.write_text("version: 1\nworkflows: [flows/*.yaml]\n" + dedent(secrets), encoding="utf-8")
    return desired.load(path, resolve=False)


def messages(findings: tuple[Finding, ...]) -> list[str]:
    return [f.message for f in findings]


# --- coverage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tool_name", ["agno__github__list_issues", "agno__github__*", "agno__*", "*"], ids=lambda t: t
)
def test_a_default_secret_for_the_tool_or_a_wildcard_covers_it(tmp_path: Path, tool_name: str) -> None:
    state = project(
        tmp_path,
        f"""
        secrets:
          - secret_name: gh
            secret_value: ${{GH}}
            tool_name: "{tool_name}"
            tool_arg: access_token
            is_default_for_tool: true
        """,
        digest=DIGEST,
    )
    report = workflows.check(state)
    assert report.uncovered == ()
    assert report.errors == ()
    assert report.tool_uses == 2


@pytest.mark.parametrize(
    ("binding", "hint"),
    [
        (
            "tool_name: agno__github__get_issue\n    tool_arg: access_token\n    is_default_for_tool: true",
            "no secret binds this tool",
        ),
        (
            "tool_name: agno__linear__*\n    tool_arg: access_token\n    is_default_for_tool: true",
            "no secret binds this tool",
        ),
        (
            "tool_name: agno__github__*\n    tool_arg: token\n    is_default_for_tool: true",
            "secret 'gh' (SECRETS:4) binds it with tool_arg token, which this tool does not take",
        ),
        (
            "tool_name: agno__github__*\n    tool_arg: access_token\n    is_default_for_tool: false",
            "secret 'gh' (SECRETS:4) binds it with tool_arg access_token but has is_default_for_tool: false; "
            "set is_default_for_tool: true, or pass access_token in the workflow",
        ),
        (
            "tool_name: agno__github__*\n    tool_arg: access_token",
            "secret 'gh' (SECRETS:4) binds it with tool_arg access_token but does not set "
            "is_default_for_tool; set is_default_for_tool: true, or pass access_token in the workflow",
        ),
        ("tool_name: agno__github__*", "secret 'gh' (SECRETS:4) binds it but does not state tool_arg"),
        ("tool_name: agno__github__list_issue", "no secret binds this tool"),
    ],
    ids=["other-tool", "other-family", "wrong-arg", "default-false", "default-absent", "no-arg", "no-prefix"],
)
def test_an_uncovered_tool_is_an_error_at_its_line_with_the_reason(
    tmp_path: Path, binding: str, hint: str
) -> None:
    state = project(
        tmp_path,
        "secrets:\n  - secret_name: gh\n    secret_value: ${GH}\n    " + binding + "\n",
        digest=DIGEST,
    )
    report = workflows.check(state)
    (finding,) = report.uncovered
    assert (finding.file, finding.line, finding.col) == (str(tmp_path / "flows" / "digest.yaml"), 7, 9)
    assert finding.severity is Severity.ERROR and finding in report.errors
    assert finding.message == (
        "tool agno__github__list_issues (agent 'reader') needs a credential in access_token "
        f"and no secret covers it: {hint.replace('SECRETS', state.path)}"
    )
    assert (finding.tool, finding.arg) == ("agno__github__list_issues", "access_token")


def test_the_suggested_entry_covers_the_tool_once_added(tmp_path: Path) -> None:
    state = project(
        tmp_path,
        """
        secrets:
          - secret_name: github-access-token
            secret_value: ${GITHUB_ACCESS_TOKEN}
            tool_name: "agno__github__*"
            tool_arg: access_token
        """,
        digest=DIGEST,
    )
    (finding,) = workflows.check(state).uncovered
    assert finding.suggestion == (
        '{secret_name: github-access-token-2, secret_value: "${GITHUB_ACCESS_TOKEN_2}", '
        'tool_name: "agno__github__*", tool_arg: access_token, is_default_for_tool: true}'
    )
    entry = yaml_tree.parse_yaml(finding.suggestion).root
    assert entry is not None
    data = entry.to_python()
    assert isinstance(data, dict)
    append_secrets(Path(state.path), [data])
    assert workflows.check(desired.load(Path(state.path), resolve=False)).uncovered == ()


def test_a_tool_outside_io_net_families_is_suggested_by_its_exact_name(tmp_path: Path) -> None:
    state = project(tmp_path, "", crawl="agents:\n  - name: c\n    tools: [Crawler-scrape_url]\n")
    (finding,) = workflows.check(state).uncovered
    assert "tool_name: Crawler-scrape_url, tool_arg: api_key" in finding.suggestion
    assert 'secret_value: "${CRAWLER_API_KEY}"' in finding.suggestion


def test_passing_the_argument_by_reference_waives_the_default(tmp_path: Path) -> None:
    flow = """
        agents:
          - name: a
            tools:
              - [agno__slack__send_message, {token: "${SLACK_BOT_TOKEN}", channel: "#eng"}]
        """
    not_default = """
        secrets:
          - secret_name: slack
            secret_value: ${SLACK_BOT_TOKEN}
            tool_name: "agno__slack__*"
            tool_arg: token
        """
    assert workflows.check(project(tmp_path, not_default, slack=flow)).errors == ()
    (finding,) = workflows.check(project(tmp_path, "secrets: []\n", slack=flow)).uncovered
    assert finding.message.endswith(
        "it passes token by reference, but no secret binds this tool with tool_arg token"
    )


def test_one_covered_argument_of_several_is_enough(tmp_path: Path) -> None:
    flow = "agents:\n  - name: a\n    tools: [agno__jira__get_issue]\n"
    covered = """
        secrets:
          - {secret_name: jira, secret_value: "${J}", tool_name: "agno__jira__*", tool_arg: password,
             is_default_for_tool: true}
        """
    assert workflows.check(project(tmp_path, covered, jira=flow)).uncovered == ()
    (finding,) = workflows.check(project(tmp_path, "secrets: []\n", jira=flow)).uncovered
    assert "needs a credential in token or password" in finding.message


def test_tools_without_a_credential_and_unknown_tools_need_no_secret(tmp_path: Path) -> None:
    flow = "agents:\n  - name: a\n    tools: [calculator_add, agno__wikipedia__search, my_own_tool]\n"
    report = workflows.check(project(tmp_path, "", misc=flow))
    assert report.uncovered == () and report.tool_uses == 3


def test_agents_inside_tasks_and_every_tool_form_are_read(tmp_path: Path) -> None:
    flow = """
        name: forms
        tasks:
          - task_id: t
            agents:
              - name: in-task
                tools:
                  - agno__linear__get_issue_details
                  - [agno__github__get_issue, {base_url: "https://api.github.com"}]
                  - name: agno__slack__send_message
                    fn_self: '{"token": null}'
                  - - agno__tavily__web_search
                    - {max_results: 3}
        """
    report = workflows.check(project(tmp_path, "", forms=flow))
    assert [(f.tool, f.line, f.col) for f in report.uncovered] == [
        ("agno__linear__get_issue_details", 7, 13),
        ("agno__github__get_issue", 8, 13),
        ("agno__slack__send_message", 9, 13),
        ("agno__tavily__web_search", 11, 13),
    ]
    assert all("(agent 'in-task')" in f.message for f in report.uncovered)


def test_a_tool_reused_through_an_alias_is_reported_once(tmp_path: Path) -> None:
    flow = """
        agents:
          - &reader {name: reader, tools: [agno__github__list_issues]}
        tasks:
          - {task_id: one, agents: [*reader]}
          - {task_id: two, agents: [*reader]}
        """
    report = workflows.check(project(tmp_path, "", aliased=flow))
    assert len(report.uncovered) == 1 and report.tool_uses == 1


def test_tool_credentials_in_the_desired_state_extend_and_override_the_catalogue(tmp_path: Path) -> None:
    flow = "agents:\n  - name: a\n    tools: [my_crm_lookup, agno__github__list_issues]\n"
    state = project(
        tmp_path,
        """
        tool_credentials:
          - {pattern: "my_crm_*", args: [crm_key]}
          - {pattern: "agno__github__*", args: []}
        """,
        crm=flow,
    )
    (finding,) = workflows.check(state).uncovered
    assert finding.tool == "my_crm_lookup" and "needs a credential in crm_key" in finding.message


def test_the_builtin_catalogue_is_the_contract_one() -> None:
    tools = workflows.catalogue()
    assert tools.args_for("agno__github__list_issues") == ("access_token",)
    assert tools.args_for("agno__x__post") == (
        "bearer_token",
        "consumer_key",
        "consumer_secret",
        "access_token",
        "access_token_secret",
    )
    assert tools.args_for("Wolfram-query") == ("api_key",)
    assert tools.args_for("calculator_add") is None


# --- unused secrets -------------------------------------------------------------------------------

UNUSED = """
secrets:
  - secret_name: gh
    secret_value: ${GH}
    tool_name: "agno__github__*"
    tool_arg: access_token
    is_default_for_tool: true
  - secret_name: slack
    secret_value: ${SLACK}
    tool_name: "agno__slack__*"
    tool_arg: token
  - secret_name: gh-wrong-arg
    secret_value: ${GH2}
    tool_name: agno__github__list_issues
    tool_arg: token
  - secret_name: unbound
    secret_value: ${U}
    tool_name: null
  - secret_name: own-tool
    secret_value: ${O}
    tool_name: calculator_add
    tool_arg: anything
"""


def test_secrets_no_workflow_uses_are_warnings_at_their_entry(tmp_path: Path) -> None:
    state = project(tmp_path, UNUSED, digest=DIGEST)
    report = workflows.check(state)
    assert [(f.line, f.severity, f.message) for f in report.unused] == [
        (9, Severity.WARNING, "secret 'slack' is bound to agno__slack__*, which no workflow uses"),
        (
            13,
            Severity.WARNING,
            "secret 'gh-wrong-arg' fills tool_arg token, which no workflow tool matching "
            "agno__github__list_issues takes (they take access_token)",
        ),
    ]
    assert report.errors == ()
    assert report.unused[0].file == state.path


def test_unused_as_errors_makes_them_errors(tmp_path: Path) -> None:
    report = workflows.check(project(tmp_path, UNUSED, digest=DIGEST), unused_as_errors=True)
    assert [f.severity for f in report.unused] == [Severity.ERROR, Severity.ERROR]
    assert len(report.errors) == 2 and report.warnings == ()


# --- files and globs ------------------------------------------------------------------------------


def test_a_glob_matching_nothing_is_a_warning_at_the_glob(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("version: 1\nworkflows:\n  - flows/*.yaml\n  - missing/*.yml\n")
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "a.yaml").write_text(dedent(DIGEST))
    report = workflows.check(desired.load(path, resolve=False))
    (problem,) = report.problems
    assert (problem.file, problem.line, problem.col, problem.severity) == (str(path), 4, 5, Severity.WARNING)
    assert problem.message.startswith("workflows glob missing/*.yml matches no file")


def test_a_broken_workflow_is_an_error_and_the_others_are_still_checked(tmp_path: Path) -> None:
    state = project(tmp_path, "", broken="agents: [\n", digest=DIGEST, notes="- just\n- a list\n")
    report = workflows.check(state)
    errors = [(Path(f.file).name, f.kind) for f in report.errors]
    assert ("broken.yaml", Kind.PROBLEM) in errors
    assert ("digest.yaml", Kind.UNCOVERED) in errors
    (note,) = [f for f in report.warnings if f.file.endswith("notes.yaml")]
    assert "is not an io.net workflow" in note.message
    assert len(report.files) == 3


def test_no_workflows_key_means_nothing_to_check(tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_text("version: 1\n")
    report = workflows.check(desired.load(path, resolve=False))
    assert report == workflows.WorkflowReport()


# --- inline credentials ---------------------------------------------------------------------------

INLINE = f"""
name: inline
agents:
  - name: pasted
    tools:
      - [agno__github__get_issue, {{owner: acme, access_token: {CANARY}}}]
      - - my_tool
        - api_key: 12345678
          max_tokens: 100
      - name: Crawler-scrape_url
        fn_self: '{{"timeout": 60, "api_key": "{CANARY_FN}"}}'
      - [agno__github__list_issues, {{access_token: "${{GITHUB_TOKEN}}"}}]
      - [agno__github__get_repository, {{access_token: null}}]
      - name: agno__slack__send_message
        fn_self:
          token: xoxb-CANARYmap000000003
"""


def test_inline_credentials_in_both_forms_are_errors_at_their_line_and_column(tmp_path: Path) -> None:
    state = project(
        tmp_path,
        """
        secrets:
          - {secret_name: gh, secret_value: "${G}", tool_name: "agno__github__*", tool_arg: access_token}
        """,
        inline=INLINE,
    )
    report = workflows.check(state)
    found = [(f.line, f.col, f.tool, f.arg) for f in report.inline]
    assert found == [
        (5, 49, "agno__github__get_issue", "access_token"),
        (7, 11, "my_tool", "api_key"),
        (10, 35, "Crawler-scrape_url", "api_key"),
        (15, 11, "agno__slack__send_message", "token"),
    ]
    assert all(f.severity is Severity.ERROR for f in report.inline)
    assert report.inline[2].message == (
        "credential api_key of tool Crawler-scrape_url (agent 'pasted') is written into the workflow in its "
        f"serialized state (fn_self); move it out with `reconciler workflows extract {report.inline[2].file} "
        f"--into {state.path}`"
    )


def test_no_finding_and_no_representation_holds_a_value(tmp_path: Path) -> None:
    state = project(tmp_path, "", inline=INLINE)
    report = workflows.check(state)
    shown = "\n".join(workflows.format_findings(report)) + repr(report)
    shown += repr([f.as_dict() for f in report.findings])
    scans = workflows.scan(tmp_path / "flows" / "inline.yaml", workflows.catalogue())
    shown += repr(scans) + repr(scans.inline)
    for canary in (CANARY, CANARY_FN, "xoxb-CANARYmap000000003", "12345678"):
        assert canary not in shown
    assert len(report.inline) == 4


def test_format_findings_is_one_line_each_in_file_order(tmp_path: Path) -> None:
    state = project(tmp_path, UNUSED, digest=DIGEST, inline=INLINE)
    report = workflows.check(state)
    lines = workflows.format_findings(report)
    assert lines == [str(f) for f in report.findings]
    assert all("\n" not in line for line in lines)
    positions = [(f.file, f.line, f.col) for f in report.findings]
    assert positions == sorted(positions)
    # The inline workflow uses Slack: only the secret with the wrong argument is unused now.
    assert [line for line in lines if ": warning: " in line] == [
        f"{state.path}:13:5: warning: secret 'gh-wrong-arg' fills tool_arg token, which no workflow tool "
        "matching agno__github__list_issues takes (they take access_token)"
    ]


def test_an_uncovered_line_carries_its_suggestion(tmp_path: Path) -> None:
    state = project(tmp_path, "", digest=DIGEST)
    (line,) = workflows.format_findings(workflows.check(state))
    assert line == (
        f"{tmp_path}/flows/digest.yaml:7:9: error: tool agno__github__list_issues (agent 'reader') needs a "
        "credential in access_token and no secret covers it: no secret binds this tool; suggested entry: "
        '{secret_name: github-access-token, secret_value: "${GITHUB_ACCESS_TOKEN}", '
        'tool_name: "agno__github__*", tool_arg: access_token, is_default_for_tool: true}'
    )


def test_odd_names_stay_on_one_line(tmp_path: Path) -> None:
    flow = (
        'agents:\n  - name: "a\\nb"\n'
        '    tools: ["agno__github__x\\ny", ["my_tool", {"api_key\\n": "pasted-value"}]]\n'
    )
    report = workflows.check(project(tmp_path, "", odd=flow))
    lines = workflows.format_findings(report)
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert "tool 'agno__github__x\\ny' (agent 'a\\nb')" in lines[0]
    assert "credential 'api_key\\n' of tool my_tool" in lines[1]
