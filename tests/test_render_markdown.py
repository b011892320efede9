"""The pull-request comment as a reviewer reads it: rendered by a CommonMark/GFM renderer, then checked
for its structure (header, one folded block per change that says what changes, footer), not only text."""

from __future__ import annotations

from types import MappingProxyType

from reconciler.models import (
    Action,
    ApplyReport,
    Change,
    DriftItem,
    FieldChange,
    Outcome,
    PatchValue,
    Plan,
    SecretValue,
    Status,
    Verdict,
    WorkflowNote,
)
from reconciler.render import Origin, render_apply, render_drift, render_plan
from tests.support.gfm import Node, tree

ORIGIN = Origin(host="api.intelligence.io.solutions", file="infra/prod/secrets.yaml")
SAVED = Origin(
    host="api.intelligence.io.solutions",
    file="infra/prod/secrets.yaml",
    plan_id="5b1e4c8e-0f7a-4d2b-9a51-3c6d2e1f0a9b",
    plan_path="infra/prod/plan.json",
)
CANARY = "canary-value-9c41-do-not-print"


def patch(**items: PatchValue) -> MappingProxyType[str, PatchValue]:
    return MappingProxyType(dict(items))


def review_plan() -> Plan:
    """One of each: a value and a field changed, a rename, a create, a delete, a restored drift."""
    value = SecretValue(CANARY)
    return Plan(
        changes=(
            Change(
                Action.DELETE,
                "legacy-jira",
                "id-del",
                fields=(FieldChange("secret_name", "legacy-jira", None),),
                reasons=("prune: matches legacy-*",),
            ),
            Change(
                Action.RENAME,
                "linear-key",
                "id-ren",
                fields=(FieldChange("secret_name", "linear-api-key", "linear-key"),),
                patch=patch(secret_name="linear-key"),
                reasons=("renamed from 'linear-api-key' (previous_names); the secret_id is kept",),
                previous_name="linear-api-key",
            ),
            Change(
                Action.UPDATE,
                "github-token",
                "id-upd",
                fields=(
                    FieldChange("tool_arg", "token", "access_token"),
                    FieldChange("secret_value", None, None, sensitive=True),
                ),
                patch=patch(tool_arg="access_token", secret_value=value),
                reasons=(
                    "tool_arg: the account differs from the file",
                    "the desired value changed since the last apply",
                ),
            ),
            Change(
                Action.UPDATE,
                "slack-bot-token",
                "id-drift",
                fields=(FieldChange("secret_value", None, None, sensitive=True),),
                patch=patch(secret_value=value),
                reasons=("the remote value was changed outside reconciler (its display no longer matches)",),
            ),
            Change(
                Action.CREATE,
                "tavily-key",
                fields=(
                    FieldChange("secret_name", None, "tavily-key"),
                    FieldChange("tool_name", None, "agno__tavily__*"),
                    FieldChange("secret_value", None, None, sensitive=True),
                ),
                patch=patch(secret_name="tavily-key", tool_name="agno__tavily__*", secret_value=value),
            ),
        ),
        drift=(
            DriftItem(
                "slack-bot-token",
                "id-drift",
                Verdict.REMOTE_VALUE_CHANGED,
                "the remote value was changed outside reconciler (its display no longer matches)",
            ),
        ),
    )


def summaries(root: Node) -> dict[str, Node]:
    """Each change block's <details>, by the secret name in its summary's first <code>."""
    found: dict[str, Node] = {}
    for details in root.find_all("details"):
        summary = details.child_elements()[0]
        assert summary.tag == "summary"
        codes = summary.find_all("code")
        if codes:
            found[codes[0].text] = details
    return found


def diff_lines(details: Node) -> list[str]:
    (code,) = [c for c in details.find_all("code") if c.attrs.get("class") == "language-diff"]
    return code.text.rstrip("\n").split("\n")


def test_header_names_the_file_and_the_account_host_and_nothing_else() -> None:
    root = tree(render_plan(review_plan(), "markdown", origin=ORIGIN))
    first = root.child_elements()[0]
    assert first.tag == "h4"
    assert [c.text for c in first.find_all("code")] == [
        "infra/prod/secrets.yaml",
        "api.intelligence.io.solutions",
    ]
    assert first.text == "reconciler plan for infra/prod/secrets.yaml on api.intelligence.io.solutions"
    # The headline follows the header; without an origin there is no header at all.
    assert root.child_elements()[1].text.startswith(
        "Plan: 1 to create, 2 to update, 1 to rename, 1 to delete."
    )
    assert tree(render_plan(review_plan(), "markdown")).child_elements()[0].tag == "p"


def test_header_for_the_local_emulator() -> None:
    root = tree(render_plan(review_plan(), "markdown", origin=Origin(host="local", file="secrets.yaml")))
    assert root.child_elements()[0].text == "reconciler plan for secrets.yaml on the local emulator"


def test_every_change_is_one_folded_block_whose_summary_says_what_changes() -> None:
    root = tree(render_plan(review_plan(), "markdown", origin=ORIGIN))
    blocks = summaries(root)
    assert list(blocks) == ["legacy-jira", "linear-key", "github-token", "slack-bot-token", "tavily-key"]

    def summary(name: str) -> str:
        return blocks[name].child_elements()[0].text

    assert summary("github-token") == "update github-token: tool_arg changed, value rotated"
    assert summary("linear-key") == "rename linear-key: renamed from linear-api-key"
    assert summary("tavily-key") == "create tavily-key: new secret: value, tool_name"
    assert summary("slack-bot-token") == (
        "update slack-bot-token: value rotated · "
        ":warning: drift: changed outside reconciler, set back to the file"
    )
    # A reviewer needs to open nothing to see a delete: it is marked, bold, and already open.
    delete = blocks["legacy-jira"]
    assert "open" in delete.attrs
    assert summary("legacy-jira") == ":x: delete legacy-jira: deleted for good (permanent on io.net)"
    assert [b.text for b in delete.child_elements()[0].find_all("b")] == ["delete", "deleted for good"]
    assert all("open" not in blocks[name].attrs for name in blocks if name != "legacy-jira")


def test_inside_a_block_reasons_cover_every_field_and_a_value_is_one_line() -> None:
    blocks = summaries(tree(render_plan(review_plan(), "markdown", origin=ORIGIN)))
    assert diff_lines(blocks["github-token"]) == [
        "! update github-token (id-upd)",
        "  # tool_arg: the account differs from the file",
        "  # the desired value changed since the last apply",
        '-   tool_arg: "token"',
        '+   tool_arg: "access_token"',
        "!   secret_value: rotated (sensitive)",
    ]
    assert diff_lines(blocks["tavily-key"])[-1] == "+   secret_value: (sensitive)"
    assert diff_lines(blocks["legacy-jira"])[0] == "- delete legacy-jira (id-del)"


def test_footer_names_the_saved_plan_only_when_there_is_one() -> None:
    root = tree(render_plan(review_plan(), "markdown", origin=SAVED))
    last = root.child_elements()[-1]
    (sub,) = last.find_all("sub")
    assert [c.text for c in sub.find_all("code")] == [SAVED.plan_id, "reconciler apply infra/prod/plan.json"]
    unsaved = tree(render_plan(review_plan(), "markdown", origin=ORIGIN))
    assert unsaved.find_all("sub") == []
    assert SAVED.plan_id not in render_plan(review_plan(), "markdown", origin=ORIGIN)


def test_footer_survives_a_cut_comment() -> None:
    many = Plan(changes=review_plan().changes * 400)
    out = render_plan(many, "markdown", origin=SAVED, limit=20_000)
    assert len(out) <= 20_000
    root = tree(out)
    assert root.child_elements()[0].tag == "h4"
    assert root.child_elements()[-1].find_all("sub"), "the plan id must stay when the comment is cut"
    assert "Left out to fit the comment size limit" in root.child_elements()[-2].text


def workflow_plan(*severities: str) -> Plan:
    notes = tuple(
        WorkflowNote(severity, f"flows/a.yaml:{i + 3}:5: {severity}: finding {i}")
        for i, severity in enumerate(severities)
    )
    return Plan(changes=review_plan().changes[2:3], workflows=notes)


def test_workflow_warnings_fold_away() -> None:
    root = tree(render_plan(workflow_plan("warning", "warning"), "markdown", origin=ORIGIN))
    folded = [d for d in root.find_all("details") if d.child_elements()[0].text.startswith("Workflows")]
    assert len(folded) == 1
    assert folded[0].child_elements()[0].text == "Workflows: 2 warnings, no errors"
    assert "open" not in folded[0].attrs
    assert "finding 1" in folded[0].text


def test_workflow_errors_are_shown_unfolded_with_the_warnings() -> None:
    root = tree(render_plan(workflow_plan("error", "warning"), "markdown", origin=ORIGIN))
    assert not [d for d in root.find_all("details") if "Workflows" in d.child_elements()[0].text]
    heading = next(p for p in root.child_elements() if p.text.startswith("Workflows:"))
    assert heading.text == "Workflows: 1 error, 1 warning"
    body = root.child_elements()[root.child_elements().index(heading) + 1]
    assert body.tag == "pre" and "finding 0" in body.text and "finding 1" in body.text


def test_text_plan_lists_workflow_errors_but_counts_warnings() -> None:
    warned = render_plan(workflow_plan("warning", "warning"), "text", origin=ORIGIN)
    assert "finding" not in warned
    assert warned.endswith(
        "Workflows: 2 warnings, no errors (`reconciler workflows check infra/prod/secrets.yaml` lists them)."
    )
    failed = render_plan(workflow_plan("error", "warning"), "text", origin=ORIGIN)
    assert "finding 0" in failed and "finding 1" in failed


def test_no_value_and_no_foreign_markup_reach_the_rendered_comment() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    plan = Plan(
        changes=(
            *review_plan().changes,
            Change(Action.DELETE, hostile, "i<d>", reasons=("prune: true",)),
        )
    )
    out = render_plan(plan, "markdown", origin=Origin(host="h<script>", file="<b>f</b>.yaml"))
    assert CANARY not in out
    tags = {node.tag for node in tree(out).elements()}
    assert tags <= {"root", "h4", "p", "strong", "details", "summary", "b", "code", "pre", "sub"}


def test_apply_and_drift_comments_carry_the_same_header() -> None:
    change = review_plan().changes[2]
    report = ApplyReport(outcomes=(Outcome(change, Status.OK, "", "id-upd"),))
    applied = tree(render_apply(report, "markdown", origin=SAVED))
    assert applied.child_elements()[0].text.startswith("reconciler apply for infra/prod/secrets.yaml on ")
    assert SAVED.plan_id in applied.child_elements()[-1].text
    drifted = tree(render_drift(review_plan(), "markdown", origin=ORIGIN))
    assert drifted.child_elements()[0].text.startswith("reconciler drift for infra/prod/secrets.yaml on ")


def test_adopted_report_counts_the_adopted_secrets() -> None:
    report = ApplyReport(adopted=("github-token", "linear-key"))
    assert render_apply(report, "text") == (
        "Adopted 2 secrets: their baselines are recorded in the state; nothing was written."
    )
    assert "0 succeeded" not in render_apply(report, "markdown")


def test_an_adoption_with_nothing_left_to_adopt_says_so() -> None:
    report = ApplyReport(adopted=())
    assert render_apply(report, "text") == (
        "Nothing to adopt: every secret in the file already has a baseline; nothing was written."
    )
    assert '"adopted": []' in render_apply(report, "json")
    assert '"adopted": null' in render_apply(ApplyReport(), "json")
    assert render_apply(ApplyReport(), "text") == "Apply complete: 0 succeeded, 0 failed, 0 skipped."
