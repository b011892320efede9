"""workflows.check on the cases iointel's real files bring: model keys, credential files, URLs, defaults."""

from __future__ import annotations

from pathlib import Path

from reconciler import workflows
from reconciler.workflows import Kind, Severity
from tests.test_workflows import project

MODEL_KEY = "io-v2-CANARYcoverage00000000001"


def test_the_agents_model_key_is_an_error_that_never_shows_it(tmp_path: Path) -> None:
    flow = f"agents:\n  - name: bot\n    api_key: {MODEL_KEY}\n    tools: [calculator_add]\n"
    report = workflows.check(project(tmp_path, "", bot=flow))
    (finding,) = report.inline
    assert (finding.line, finding.col, finding.severity, finding.arg) == (3, 5, Severity.ERROR, "api_key")
    assert "model API key of agent 'bot'" in finding.message
    assert "IO_API_KEY" in finding.message
    assert MODEL_KEY not in "".join(workflows.format_findings(report)) + repr(report)


def test_a_credential_passed_from_outside_the_file_needs_no_secret(tmp_path: Path) -> None:
    flow = """
        agents:
          - name: a
            tools:
              - [agno__sql__list_tables, {db_url: "sqlite:///local.db"}]
              - - google_calendar_list_events
                - {credentials_path: creds/client.json, token_path: creds/token.json}
        """
    report = workflows.check(project(tmp_path, "", outside=flow))
    assert report.errors == ()
    assert report.tool_uses == 2


def test_a_tool_whose_credential_is_a_file_gets_no_secret_proposed(tmp_path: Path) -> None:
    flow = "agents:\n  - name: a\n    tools: [google_calendar_list_events, email_user]\n"
    calendar, mail = workflows.check(project(tmp_path, "", files=flow)).uncovered
    assert calendar.suggestion == ""
    assert "the credential is a file: pass its path in the workflow" in calendar.message
    assert "a larger file cannot be an io.net secret" in calendar.message
    # email_user is a single tool, suggested by its exact name, its variable named as the SDK names it.
    assert mail.suggestion == (
        '{secret_name: email-user-sender-passkey, secret_value: "${EMAIL_SENDER_PASSKEY}", '
        "tool_name: email_user, tool_arg: sender_passkey, is_default_for_tool: true}"
    )


def test_a_pasted_file_over_1024_characters_cannot_become_a_secret(tmp_path: Path) -> None:
    content = '{"type": "service_account", "private_key": "' + "K" * 1100 + '"}'
    flow = f"agents:\n  - tools:\n      - [agno__google_sheets__read_sheet, {{creds: '{content}'}}]\n"
    (finding,) = workflows.check(project(tmp_path, "", big=flow)).inline
    assert (
        "over 1,024 characters, more than an io.net secret holds, so it cannot become one" in finding.message
    )
    assert "workflows extract" not in finding.message
    assert "K" * 20 not in finding.message


def test_two_defaults_for_one_tool_and_argument_are_a_warning(tmp_path: Path) -> None:
    flow = "agents:\n  - name: a\n    tools: [agno__github__get_issue, agno__github__list_issues]\n"
    secrets = """
        secrets:
          - {secret_name: family, secret_value: "${A}", tool_name: "agno__github__*",
             tool_arg: access_token, is_default_for_tool: true}
          - {secret_name: exact, secret_value: "${B}", tool_name: agno__github__get_issue,
             tool_arg: access_token, is_default_for_tool: true}
          - {secret_name: other-arg, secret_value: "${C}", tool_name: agno__github__get_issue,
             tool_arg: base_url, is_default_for_tool: true}
        """
    state = project(tmp_path, secrets, gh=flow)
    report = workflows.check(state)
    (conflict,) = report.conflicts
    assert (conflict.kind, conflict.severity) == (Kind.CONFLICT, Severity.WARNING)
    exact = next(s for s in state.secrets if s.secret_name == "exact")
    assert exact.location is not None and (conflict.file, conflict.line) == (
        exact.location.file,
        exact.location.line,
    )
    assert conflict.message.startswith(
        f"secrets 'family' ({state.path}:4), 'exact' ({state.path}:6) are each the default for "
        "access_token of tool agno__github__get_issue"
    )
    assert report.errors == ()
    assert conflict in report.warnings
