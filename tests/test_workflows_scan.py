"""Reading workflow files: every form iointel writes or accepts, and a warning for what is not understood."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler import desired, workflows
from reconciler.workflows import Kind, Severity, WorkflowScan
from reconciler.workflows.scan import How

GH = "ghp_CANARYscan0000000000001"
MODEL_KEY = "io-v2-CANARYscanModelKey000002"


def scan(tmp_path: Path, text: str, name: str = "w.yaml") -> WorkflowScan:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return workflows.scan(path, workflows.catalogue())


def inline(result: WorkflowScan) -> list[tuple[int, int, str, str, str]]:
    return [(c.line, c.col, c.tool, c.arg, c.form) for c in result.inline]


# --- fn_self as to_yaml writes it ----------------------------------------------------------------


def test_fn_self_as_a_three_item_list_is_read(tmp_path: Path) -> None:
    result = scan(
        tmp_path,
        f"""
        agents:
        - name: reader
          tools:
          - name: agno__github__get_issue
            fn_self:
            - iointel.src.agent_methods.tools.agno.github:Github
            - '{{"access_token":"{GH}","base_url":null}}'
            - 140201
        """,
    )
    assert inline(result) == [(7, 9, "agno__github__get_issue", "access_token", "fn_self")]
    (use,) = result.uses
    assert use.passes("access_token") is How.LITERAL and use.passes("base_url") is None
    assert result.inline[0].value.reveal() == GH


def test_a_folded_fn_self_string_is_located_at_its_key(tmp_path: Path) -> None:
    # to_yaml folds a long JSON string at a space, as here inside the passkey's value.
    state = (
        '{"receiver_email":"team@example.com","sender_name":"Release Bot","sender_email":"bot@example.com",'
    )
    result = scan(
        tmp_path,
        f"""
        agents:
        - name: mailer
          tools:
          - name: email_user
            fn_self:
            - iointel.src.agent_methods.tools.agno.email:Email
            - '{state}"sender_passkey":"FAKE
              pass key"}}'
            - 1
        """,
    )
    ((line, col, tool, arg, _form),) = inline(result)
    assert (line, tool, arg) == (7, "email_user", "sender_passkey")
    text = (tmp_path / "w.yaml").read_text().splitlines()[line - 1]
    assert text[col - 1 :].startswith('"sender_passkey"')
    assert result.inline[0].value.reveal() == "FAKE pass key"


def test_fields_that_only_look_like_credentials_are_not_flagged(tmp_path: Path) -> None:
    result = scan(
        tmp_path,
        """
        agents:
        - name: a
          tools:
          - name: agno__tavily__web_search_using_tavily
            fn_self:
            - m:Tavily
            - '{"max_tokens":6000,"keyword":"x","sort_key":"date","primary_key":"id","passage":"p"}'
            - 1
          - [my_tool, {max_tokens: 10, keyword: abc, sort_key: k, primary_key: id, tokenizer: t}]
        """,
    )
    assert result.inline == ()
    assert [u.passed for u in result.uses] == [(), ()]


# --- the agent's own model key -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "flagged"),
    [(MODEL_KEY, True), ("'**********'", False), ('"${IO_API_KEY}"', False), ("null", False)],
)
def test_the_agents_model_key_is_an_inline_credential(tmp_path: Path, value: str, flagged: bool) -> None:
    result = scan(tmp_path, f"agents:\n- name: bot\n  api_key: {value}\n  tools: [agno__github__get_issue]\n")
    assert inline(result) == ([(3, 3, "", "api_key", "agent")] if flagged else [])
    assert [u.tool for u in result.uses] == ["agno__github__get_issue"]


# --- swarms, and forms that are not understood ---------------------------------------------------


def test_a_swarms_members_are_read_in_both_forms(tmp_path: Path) -> None:
    result = scan(
        tmp_path,
        """
        agents:
          members:
            - name: one
              tools: [agno__github__get_issue]
            - name: two
              tools: [email_user]
        tasks:
          - task_id: t
            agents:
              - - members
                - - name: three
                    tools: [get_current_weather]
        """,
    )
    assert [(u.agent, u.tool) for u in result.uses] == [
        ("one", "agno__github__get_issue"),
        ("two", "email_user"),
        ("three", "get_current_weather"),
    ]
    assert result.notes == ()


@pytest.mark.parametrize(
    ("text", "line", "says"),
    [
        (
            "name: x\ntext: hello\nworkflow:\n  - type: sentiment\n  - type: summarize_text\n",
            3,
            "is in the `workflow:` form of iointel's README",
        ),
        ("name: x\nobjective: nothing here\n", 1, "has no `agents` or `tasks`"),
        ("agents: 5\n", 1, "`agents` is neither a list of agents nor a swarm"),
        ("agents:\n  - just-a-name\n", 2, "an agent here is not a mapping"),
        (
            "agents:\n  - name: a\n    tools: agno__github__get_issue\n",
            3,
            "`tools` of agent 'a' is not a list",
        ),
        (
            "agents:\n  - name: a\n    tools:\n      - 42\n      - {description: no name}\n",
            4,
            "a tool of agent 'a'",
        ),
    ],
)
def test_a_file_or_part_not_understood_is_a_warning_naming_it(
    tmp_path: Path, text: str, line: int, says: str
) -> None:
    result = scan(tmp_path, text, name="odd.yaml")
    assert result.notes, "silence"
    first = result.notes[0]
    assert (Path(first.file).name, first.line, first.kind, first.severity) == (
        "odd.yaml",
        line,
        Kind.PROBLEM,
        Severity.WARNING,
    )
    assert says in first.message


def test_a_workflow_form_with_agents_in_its_steps_is_read_without_a_warning(tmp_path: Path) -> None:
    result = scan(tmp_path, "workflow:\n  - type: custom\n    agents: [{name: a, tools: [email_user]}]\n")
    assert [u.tool for u in result.uses] == ["email_user"] and result.notes == ()


def test_warnings_leave_the_check_without_errors(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "readme.yaml").write_text("workflow:\n  - type: sentiment\n")
    (tmp_path / "secrets.yaml").write_text("version: 1\nworkflows: [flows/*.yaml]\n")
    report = workflows.check(desired.load(tmp_path / "secrets.yaml", resolve=False))
    assert report.errors == () and len(report.warnings) == 1 and report.tool_uses == 0


# --- values: URLs, credential files --------------------------------------------------------------


def test_a_database_url_is_a_credential_only_when_it_carries_a_password(tmp_path: Path) -> None:
    result = scan(
        tmp_path,
        """
        agents:
          - name: a
            tools:
              - [agno__sql__run_sql_query, {db_url: "postgresql://app:s3cretCANARY@db/app"}]
              - [agno__sql__list_tables, {db_url: "sqlite:///local.db"}]
              - [my_tool, {base_url: "https://bot:t0kenCANARY@hooks.example.com/x"}]
        """,
    )
    assert [(c.tool, c.arg) for c in result.inline] == [
        ("agno__sql__run_sql_query", "db_url"),
        ("my_tool", "base_url"),
    ]
    assert result.uses[1].passes("db_url") is How.OUTSIDE


def test_a_credential_files_path_passes_it_from_outside_its_content_is_inline(tmp_path: Path) -> None:
    result = scan(
        tmp_path,
        """
        agents:
          - name: a
            tools:
              - [agno__google_sheets__read_sheet, {token_path: secrets/token.json}]
              - [agno__google_sheets__create_sheet, {creds: '{"type": "authorized_user", "token": "x"}'}]
        """,
    )
    assert result.uses[0].passes("token_path") is How.OUTSIDE
    assert [(c.tool, c.arg) for c in result.inline] == [("agno__google_sheets__create_sheet", "creds")]
