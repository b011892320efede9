"""`reconciler import` end to end: comments kept (golden file), no value written, then adopt with no write."""

from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler import desired
from tests.e2e.test_plan_apply import CANARIES, DISPLAYS, emu, reconciler
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.e2e
__all__ = ["emu"]  # the fixture, shared with test_plan_apply
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "import"


def create(emu: RunningEmulator, **body: object) -> None:
    response = httpx.post(
        f"{emu.url}/api/v1/secrets/", json=body, headers={"Authorization": "Bearer e2e-key"}
    )
    response.raise_for_status()


def test_import_appends_keeping_comments_and_adopts_without_writing(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    create(
        emu,
        secret_name="github-token",
        secret_value=CANARIES["GITHUB_TOKEN"],
        tool_name="agno__github__*",
        tool_arg="access_token",
        is_default_for_tool=True,
    )
    create(
        emu,
        secret_name="linear-key",
        secret_value=CANARIES["LINEAR_TOKEN"],
        tool_name="agno__linear__*",
        tool_arg="api_token",
        is_default_for_tool=True,
    )
    create(emu, secret_name="slack.bot", secret_value=CANARIES["SLACK_TOKEN"])
    create(emu, secret_name="other-team", secret_value=CANARIES["SLACK_TOKEN"])
    shutil.copy(FIXTURES / "before.yaml", tmp_path / "secrets.yaml")

    result = reconciler(
        "import",
        "secrets.yaml",
        "--names",
        "linear-*",
        "--names",
        "slack*",
        "--names",
        "github*",
        url=emu.url,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "github-token: already in the file" in result.stderr
    assert "LINEAR_KEY" in result.stdout and "SLACK_BOT" in result.stdout and "--adopt" in result.stdout
    text = (tmp_path / "secrets.yaml").read_text()
    assert text == (FIXTURES / "after.yaml").read_text()
    assert all(secret not in text for secret in [*CANARIES.values(), *DISPLAYS])
    assert reconciler("validate", "secrets.yaml", "--offline", url=emu.url, cwd=tmp_path).returncode == 0

    env = {"LINEAR_KEY": CANARIES["LINEAR_TOKEN"], "SLACK_BOT": CANARIES["SLACK_TOKEN"]}
    before = len(emu.requests())
    # Adopting writes nothing, so it asks nothing: no --auto-approve, and no terminal.
    adopted = reconciler("apply", "secrets.yaml", "--adopt", url=emu.url, cwd=tmp_path, env=env)
    assert adopted.returncode == 0, adopted.stdout + adopted.stderr
    adopted_line = "Adopted 3 secrets: their baselines are recorded in the state; nothing was written."
    assert adopted_line in adopted.stdout
    assert "succeeded" not in adopted.stdout
    assert [r for r in emu.requests()[before:] if r["method"] != "GET"] == []
    plan = reconciler("plan", "secrets.yaml", "--detailed-exitcode", url=emu.url, cwd=tmp_path, env=env)
    assert plan.returncode == 0, plan.stdout


def test_import_into_a_new_file(emu: RunningEmulator, tmp_path: Path) -> None:
    create(emu, secret_name="github-token", secret_value=CANARIES["GITHUB_TOKEN"])
    result = reconciler("import", "new.yaml", url=emu.url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert reconciler("validate", "new.yaml", "--offline", url=emu.url, cwd=tmp_path).returncode == 0
    assert "${GITHUB_TOKEN}" in (tmp_path / "new.yaml").read_text()


ODD_NAMES = ["a\x85b", "\ud800x", "", "n" * 1025]


class OddNames(BaseHTTPRequestHandler):
    """A server whose account holds names no desired file can take, between two ordinary ones."""

    def do_GET(self) -> None:
        names = ["ok-one", *ODD_NAMES, "ok-two"]
        data = [
            {
                "secret_id": f"00000000-0000-4000-8000-00000000000{i}",
                "secret_name": name,
                "display": "abcd****",
            }
            for i, name in enumerate(names)
        ]
        body = json.dumps({"data": data}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return None


def test_import_skips_names_it_cannot_write_and_imports_the_rest(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), OddNames)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        result = reconciler("import", "secrets.yaml", url=url, cwd=tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    assert result.returncode == 0, result.stderr
    skipped = [line for line in result.stderr.splitlines() if line.startswith("skipped ")]
    assert len(skipped) == len(ODD_NAMES)
    for words in ("U+0085", "not valid UTF-8", "empty", "1025 characters"):
        assert any(words in line for line in skipped), words
    assert "Imported 2 secrets" in result.stdout
    loaded = desired.load(tmp_path / "secrets.yaml", resolve=False)
    assert [s.secret_name for s in loaded.secrets] == ["ok-one", "ok-two"]
