"""Draw docs/pr-comment.png: a real pull-request comment, as a reviewer sees it on GitHub.

The comment is what `reconciler plan --format markdown --out plan.json` prints for a small story told
against the embedded emulator (a rename, a field and a value changed, a value changed by hand, a new
secret, a delete by prune, workflow warnings). It is rendered with markdown-it-py under GitHub's rules
(CommonMark, raw HTML, tables) into a page styled like a GitHub comment, and photographed by headless
Chromium.

    make venv && .venv/bin/python tools/pr_comment_picture.py [OUT.png]

Needs Chromium (Debian: `apt-get install chromium fonts-noto-color-emoji`). Not part of `make test`.
"""

from __future__ import annotations

import asyncio
import html
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import httpx
from markdown_it import MarkdownIt

ROOT = Path(__file__).resolve().parent.parent
WIDTH = 880
VALUES = {
    "GITHUB_TOKEN": "ghp_pictureValue000000000001",
    "LINEAR_TOKEN": "lin_api_pictureValue000000002",
    "SLACK_TOKEN": "xoxb-picture-value-00000003",
    "JIRA_TOKEN": "jira-picture-value-0000004",
    "TAVILY_TOKEN": "tvly-picture-value-000005",
}
# The story's pull request rotates the GitHub token.
ROTATED = {**VALUES, "GITHUB_TOKEN": "ghp_pictureValueRotated00000009"}
BEFORE = """
version: 1
secrets:
  - secret_name: github-token
    secret_value: ${GITHUB_TOKEN}
    tool_name: "agno__github__*"
    tool_arg: token
    is_default_for_tool: true
  - secret_name: linear-api-key
    secret_value: ${LINEAR_TOKEN}
    tool_name: "agno__linear__*"
    tool_arg: api_token
    is_default_for_tool: true
  - secret_name: slack-bot-token
    secret_value: ${SLACK_TOKEN}
    tool_name: "agno__slack__*"
    tool_arg: token
  - secret_name: legacy-jira
    secret_value: ${JIRA_TOKEN}
"""
AFTER = """
version: 1
prune:
  match: ["legacy-*"]
workflows: [workflows/*.yaml]
secrets:
  - secret_name: github-token
    secret_value: ${GITHUB_TOKEN}
    tool_name: "agno__github__*"
    tool_arg: access_token
    is_default_for_tool: true
  - secret_name: linear-key
    previous_names: [linear-api-key]
    secret_value: ${LINEAR_TOKEN}
    tool_name: "agno__linear__*"
    tool_arg: api_token
    is_default_for_tool: true
  - secret_name: slack-bot-token
    secret_value: ${SLACK_TOKEN}
    tool_name: "agno__slack__*"
    tool_arg: token
  - secret_name: tavily-key
    secret_value: ${TAVILY_TOKEN}
    tool_name: "agno__tavily__*"
    tool_arg: api_key
"""
WORKFLOW = """
name: triage
objective: Triage the issues opened today.
client_mode: false
agents:
  - &triager
    name: triager
    instructions: Read new issues and file the urgent ones in Linear.
    model: meta-llama/Llama-3.3-70B-Instruct
    tools: [agno__github__list_issues, agno__linear__create_issue]
tasks:
  - task_id: triage
    name: Triage
    objective: Read today's issues and file the urgent ones.
    agents: [*triager]
"""

CSS = """
body { margin: 0; padding: 24px; background: #ffffff; width: %(width)dpx;
       font: 14px/1.5 -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; color: #1f2328; }
.comment { border: 1px solid #d1d9e0; border-radius: 6px; }
.head { background: #f6f8fa; border-bottom: 1px solid #d1d9e0; padding: 8px 16px; color: #59636e;
        border-radius: 6px 6px 0 0; }
.head b { color: #1f2328; }
.body { padding: 16px; }
.body > :first-child { margin-top: 0; }
h4 { font-size: 16px; margin: 0 0 12px; }
code { font: 12px/1.45 ui-monospace, "DejaVu Sans Mono", monospace; background: rgba(129,139,152,.12);
       padding: .2em .4em; border-radius: 6px; }
pre { background: #f6f8fa; border-radius: 6px; padding: 12px 16px; overflow: hidden; margin: 8px 0 12px; }
pre code { background: none; padding: 0; }
details { margin: 6px 0; }
summary { cursor: pointer; }
.add { color: #116329; background: #dafbe1; display: block; }
.del { color: #82071e; background: #ffebe9; display: block; }
.chg { color: #953800; background: #fff1e5; display: block; }
.cmt { color: #59636e; display: block; }
sub { color: #59636e; }
"""


def reconciler(*args: str, cwd: Path, values: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **values, "NO_COLOR": "1", "RECONCILER_API_URL": "local"}
    env.pop("GITHUB_STEP_SUMMARY", None)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def edit_by_hand(workdir: Path, name: str, value: str) -> None:
    """What someone does in the web page: change a value outside reconciler (same local account)."""
    from reconciler.emulator.app import create_app
    from reconciler.emulator.config import EmulatorConfig

    app = create_app(EmulatorConfig(db_path=str(workdir / ".reconciler" / "local.db")))

    async def go() -> None:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": "Bearer local"}
        async with httpx.AsyncClient(transport=transport, base_url="http://local", headers=headers) as http:
            listed = (await http.get("/api/v1/secrets/", params={"page_size": 100})).json()
            items = listed if isinstance(listed, list) else listed["data"]
            (secret,) = [s for s in items if s["secret_name"] == name]
            patched = await http.patch(f"/api/v1/secrets/{secret['secret_id']}", json={"secret_value": value})
            patched.raise_for_status()

    asyncio.run(go())


def the_comment(workdir: Path) -> str:
    infra = workdir / "infra" / "prod"
    (infra / "workflows").mkdir(parents=True)
    (infra / "workflows" / "triage.yaml").write_text(textwrap.dedent(WORKFLOW).lstrip())
    (infra / "secrets.yaml").write_text(textwrap.dedent(BEFORE).lstrip())
    first = reconciler("apply", "infra/prod/secrets.yaml", "--auto-approve", "-q", cwd=workdir, values=VALUES)
    if first.returncode != 0:
        raise SystemExit(f"the first apply failed:\n{first.stderr}")
    edit_by_hand(infra, "slack-bot-token", "xoxb-changed-in-the-web-page-9")
    (infra / "secrets.yaml").write_text(textwrap.dedent(AFTER).lstrip())
    planned = reconciler(
        "plan",
        "infra/prod/secrets.yaml",
        "--format",
        "markdown",
        "--out",
        "infra/prod/plan.json",
        cwd=workdir,
        values=ROTATED,
    )
    if planned.returncode != 0:
        raise SystemExit(f"the plan failed:\n{planned.stderr}")
    return planned.stdout


def as_github_html(markdown: str) -> str:
    body = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"]).render(markdown)
    # GitHub's own touches: emoji shortcodes, and diff lines coloured by their first character.
    body = body.replace(":warning:", "⚠️").replace(":x:", "❌")

    def colour(match: re.Match[str]) -> str:
        lines = match.group(2).rstrip("\n").split("\n")
        kinds = {"+": "add", "-": "del", "!": "chg"}
        spans = []
        for line in lines:
            kind = kinds.get(line[:1], "cmt" if line.lstrip().startswith("#") else "")
            spans.append(f'<span class="{kind}">{line or " "}</span>')
        return f"{match.group(1)}{''.join(spans)}</code>"

    body = re.sub(r'(<code class="language-diff">)(.*?)</code>', colour, body, flags=re.DOTALL)
    # As a reviewer would: one change opened, to show how its fields and reasons read.
    body = body.replace(
        "<details><summary><b>update</b> <code>github-token",
        "<details open><summary><b>update</b> <code>github-token",
    )
    header = '<div class="head"><b>reconciler-bot</b> commented</div>'
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><style>{CSS % {'width': WIDTH}}</style></head>"
        f"<body><div class='comment'>{header}<div class='body'>{body}</div></div>"
        "<script>document.title = 'height=' + document.documentElement.scrollHeight;</script></body></html>"
    )


def photograph(page: Path, out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if chromium is None:
        raise SystemExit("Chromium is needed: apt-get install chromium fonts-noto-color-emoji")
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    dom = subprocess.run([*flags, "--dump-dom", page.as_uri()], capture_output=True, text=True, check=True)
    found = re.search(r"<title>height=(\d+)</title>", dom.stdout)
    height = int(found.group(1)) if found else 1200
    subprocess.run(
        [*flags, f"--window-size={WIDTH + 48},{height}", f"--screenshot={out}", page.as_uri()],
        capture_output=True,
        check=True,
    )


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "pr-comment.png"
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        markdown = the_comment(workdir)
        assert not any(v in markdown for v in [*VALUES.values(), *ROTATED.values()]), "a value reached it"
        page = workdir / "comment.html"
        page.write_text(as_github_html(markdown), encoding="utf-8")
        photograph(page, out.resolve())
    print(f"wrote {out} ({html.escape(str(out.stat().st_size))} bytes)")


if __name__ == "__main__":
    main()
