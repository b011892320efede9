"""Canaries: every command, on success and failure paths, with -vv debugging on, and not one secret
value, `display`, API key or state key in stdout, stderr, logs, plan files, the state, the job summary,
or the text of any exception, including HTTP errors whose body echoes the request."""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from reconciler import engine
from reconciler import settings as settings_module
from reconciler.emulator.app import ECHO_STATUSES
from reconciler.emulator.masking import mask
from reconciler.errors import ReconcilerError
from reconciler.plan import PlanOptions
from tests.e2e.test_faults import STATE_KEY, base_env, cli, write
from tests.support.emulator import RunningEmulator, start_emulator
from tools.workflow_fixtures import generate

pytestmark = pytest.mark.e2e

API_KEY = "api-key-CANARY-9f8e7d6c5b4a"
OTHER_KEY = "api-key-CANARY-another-account-0010"
VALUES = {
    "GH": "ghp_CANARY\"quote's\\back-0001",
    "UNI": "ünïcødé-CANARY-ключ-0002",
    "NL": "line1-CANARY\nline2-0003",
    "DOLLAR": "$dollar-${NOT}-CANARY-0004",
    "LONG": "L" * 1000 + "-CANARY-0005",
    # Short enough that its display shows it whole: the warning names the secret, never the characters.
    "SHORT": "K9#vQz",
}
ROTATED = {"GH": "ghp_CANARYrotated-value-0006"}
OUTSIDE = "outside-CANARY-by-hand-0007"
TOO_LONG = "-CANARY-too-long-0008".rjust(1025, "T")
ALL_VALUES = [*VALUES.values(), *ROTATED.values(), OUTSIDE, TOO_LONG]


def forms(secret: str) -> set[str]:
    """A secret as it could be printed: as is, JSON-escaped, its display, and its masked ends."""
    found = {secret, json.dumps(secret)[1:-1], json.dumps(secret, ensure_ascii=False)[1:-1]}
    if len(secret) > 4:
        found.add(mask(secret))
    return found


FORBIDDEN = sorted({form for value in ALL_VALUES for form in forms(value)} | {API_KEY, OTHER_KEY, STATE_KEY})
DESIRED = """
version: 1
prune: {match: ["stray-*"]}
max_age: 1d
secrets:
  - secret_name: github-token
    secret_value: ${GH}
    tool_name: "agno__github__*"
    tool_arg: access_token
    is_default_for_tool: true
  - secret_name: unicode
    secret_value: {from_env: UNI}
  - secret_name: newline
    secret_value: ${NL}
  - secret_name: dollar
    secret_value: ${DOLLAR}
    protect: true
  - secret_name: long
    secret_value: ${LONG}
  - secret_name: short
    secret_value: ${SHORT}
"""


def assert_clean(text: str, where: str) -> None:
    for secret in FORBIDDEN:
        assert secret not in text, f"{where} holds a secret (or its display)"


def files_clean(root: Path) -> list[Path]:
    checked = []
    for path in root.rglob("*"):
        if path.is_file() and not path.name.endswith((".db", ".db-wal", ".db-shm")):
            assert_clean(path.read_bytes().decode("utf-8", errors="replace"), str(path))
            checked.append(path)
    return checked


@pytest.fixture(scope="module")
def logging_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    db = tmp_path_factory.mktemp("canary-emu") / "emulator.db"
    # Every write is stamped two days ago: with `max_age: 1d` every value is stale.
    with start_emulator("--inspect", "--log-requests", "--clock-offset", "-172800", db_path=db) as running:
        yield running


def run(*args: str, root: Path, url: str, env: dict[str, str] | None = None, code: int | None = 0) -> Any:
    full = {**VALUES, "GITHUB_STEP_SUMMARY": str(root / "summary.md"), **(env or {})}
    result = cli(*args, cwd=root, url=url, key=full.pop("KEY", API_KEY), env=full, secrets=tuple(FORBIDDEN))
    if code is not None:
        assert result.returncode == code, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def test_every_command_keeps_every_secret_out_of_every_output(
    logging_emulator: RunningEmulator, tmp_path: Path
) -> None:
    url = logging_emulator.url
    write(tmp_path / "secrets.yaml", DESIRED)

    warned = run("validate", "secrets.yaml", root=tmp_path, url=url)
    assert "'short': io.net's display shows 6 of the value's 6 characters" in warned.stderr
    run("validate", "secrets.yaml", "--offline", root=tmp_path, url=url)
    missing = run("validate", "secrets.yaml", root=tmp_path, url=url, env={"GH": ""}, code=1)
    assert "github-token" in missing.stderr or "GH" in missing.stderr
    too_long = run("validate", "secrets.yaml", root=tmp_path, url=url, env={"LONG": TOO_LONG}, code=1)
    assert "1025 characters" in too_long.stderr

    for fmt in ("text", "markdown", "json"):
        shown = run("plan", "secrets.yaml", "-vv", "--format", fmt, root=tmp_path, url=url)
        assert "(sensitive)" in shown.stdout and "6 of the value's 6 characters" in shown.stdout
    run("plan", "secrets.yaml", "-vv", "--out", "plan.json", root=tmp_path, url=url)
    run("apply", "plan.json", "--auto-approve", "-vv", root=tmp_path, url=url)
    run("plan", "secrets.yaml", "-vv", "--detailed-exitcode", root=tmp_path, url=url)

    # A rotation is planned and applied as "(sensitive)", old and new values alike unseen.
    rotated = run("plan", "secrets.yaml", "-vv", "--format", "json", root=tmp_path, url=url, env=ROTATED)
    assert '"(sensitive)"' in rotated.stdout
    run(
        "apply",
        "secrets.yaml",
        "--auto-approve",
        "-vv",
        "--format",
        "json",
        root=tmp_path,
        url=url,
        env=ROTATED,
    )

    # A value changed by hand: drift says so without showing either value or display.
    listed = httpx.get(
        f"{url}/api/v1/secrets/", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    ).json()["data"]
    target = next(s for s in listed if s["secret_name"] == "unicode")
    httpx.patch(
        f"{url}/api/v1/secrets/{target['secret_id']}",
        json={"secret_value": OUTSIDE},
        headers={"Authorization": f"Bearer {API_KEY}"},
        timeout=10,
    ).raise_for_status()
    for fmt in ("text", "markdown", "json"):
        found = run(
            "drift", "secrets.yaml", "-vv", "--format", fmt, root=tmp_path, url=url, env=ROTATED, code=2
        )
        assert "remote_value_changed" in found.stdout and "stale" in found.stdout
    # Without a state (a lost cache): every difference from the file, the value's included.
    for fmt in ("text", "markdown", "json"):
        lost = run(
            "drift", "secrets.yaml", "-vv", "--ignore-state", "--format", fmt, root=tmp_path, url=url, code=2
        )
        assert "differs_no_baseline" in lost.stdout and "--ignore-state" in lost.stdout
    gone = ("drift", "secrets.yaml", "--require-state", "--state", "gone.json")
    run(*gone, root=tmp_path, url=url, code=1)
    run("apply", "secrets.yaml", "--auto-approve", "-vv", root=tmp_path, url=url, env=ROTATED)
    # A state is refused by another account, whatever the command.
    for command in ("plan", "drift"):
        run(command, "secrets.yaml", "-vv", root=tmp_path, url=url, env={"KEY": OTHER_KEY}, code=1)

    run("import", "imported.yaml", "-vv", root=tmp_path, url=url)
    run("import", "--dry-run", "-vv", root=tmp_path, url=url)
    run("workflows", "check", "secrets.yaml", root=tmp_path, url=url, code=None)
    run("forget", "secrets.yaml", "newline", "-vv", root=tmp_path, url=url)
    run("forget", "secrets.yaml", "no-such-secret", "-vv", root=tmp_path, url=url, code=1)

    # Failure paths: a refused key, a corrupt state, a held lock, an empty file with prune.
    run("plan", "secrets.yaml", "-vv", root=tmp_path, url=url, env={"KEY": ""}, code=1)
    state = tmp_path / ".reconciler" / "state.json"
    saved = state.read_text()
    state.write_text(saved[: len(saved) // 2])
    run("plan", "secrets.yaml", "-vv", root=tmp_path, url=url, code=1)
    run("apply", "secrets.yaml", "--auto-approve", "-vv", root=tmp_path, url=url, code=1)
    state.write_text(saved)
    write(tmp_path / "empty.yaml", "version: 1\nprune: true\nsecrets: []\n")
    run("plan", "empty.yaml", "-vv", root=tmp_path, url=url, code=1)

    checked = files_clean(tmp_path)
    assert {p.name for p in checked} >= {"state.json", "plan.json", "summary.md", "imported.yaml"}
    assert_clean(logging_emulator.stderr(), "the emulator's request log")


class Echo(BaseHTTPRequestHandler):
    """A server whose every write error repeats the request back, in a different way each time."""

    shapes = itertools.cycle(["list", "string", "plain", "html", "conflict", "server"])

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._send(200, json.dumps({"data": []}).encode())

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length", "0"))).decode()
        body = json.loads(raw)
        shape = next(type(self).shapes)
        if shape == "list":
            detail = [{"loc": ["body", "secret_value"], "msg": f"Value error, {raw}", "input": body}]
            self._send(422, json.dumps({"detail": detail}).encode())
        elif shape == "string":
            self._send(400, json.dumps({"detail": f"refused {body['secret_value']!r} in {raw}"}).encode())
        elif shape == "plain":
            self._send(400, f"bad request: {raw}".encode(), "text/plain")
        elif shape == "html":
            self._send(422, f"<html><pre>{body['secret_value']}</pre></html>".encode(), "text/html")
        elif shape == "conflict":
            self._send(409, json.dumps({"detail": f"name taken; you sent {body}"}).encode())
        else:
            self._send(500, json.dumps({"detail": f"crashed on {raw} (auth: {self.headers})"}).encode())

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_http_errors_echoing_the_request_leak_nothing_from_the_command_line(
    echo_url: str, tmp_path: Path
) -> None:
    write(tmp_path / "secrets.yaml", DESIRED)
    for fmt in ("text", "markdown", "json"):
        result = run(
            "apply",
            "secrets.yaml",
            "--auto-approve",
            "-vv",
            "--format",
            fmt,
            root=tmp_path,
            url=echo_url,
            code=1,
        )
        assert "failed" in result.stdout
    files_clean(tmp_path)


def test_exceptions_and_debug_logs_hold_no_secret(
    echo_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In process, every logger at DEBUG: the log records and every exception, with its causes."""
    write(tmp_path / "secrets.yaml", DESIRED)
    environ = {**base_env(API_KEY, echo_url), **VALUES}
    texts: list[str] = []

    async def go() -> None:
        resolved = settings_module.resolve(desired_path=tmp_path / "secrets.yaml", environ=environ)
        result = await engine.make_plan(resolved, tmp_path / "secrets.yaml", PlanOptions())
        report = await engine.run_apply(resolved, result)
        texts.extend(outcome.message for outcome in report.outcomes)
        wrong = settings_module.resolve(
            desired_path=tmp_path / "secrets.yaml", environ={**environ, "LONG": TOO_LONG}
        )
        for attempt in (engine.make_plan(wrong, tmp_path / "secrets.yaml", PlanOptions()),):
            try:
                await attempt
            except ReconcilerError as exc:
                chain: BaseException | None = exc
                while chain is not None:
                    texts.extend([str(chain), repr(chain), repr(chain.args)])
                    chain = chain.__cause__ or chain.__context__

    previous = {name: logging.getLogger(name).level for name in ("httpx", "httpcore", "reconciler")}
    try:
        with caplog.at_level(logging.DEBUG):
            for name in previous:
                logging.getLogger(name).setLevel(logging.DEBUG)
            asyncio.run(go())
    finally:
        for name, level in previous.items():
            logging.getLogger(name).setLevel(level)
    assert texts and any("withheld" in t for t in texts)
    assert any(r.name.startswith(("httpx", "httpcore")) for r in caplog.records)
    for text in [*texts, caplog.text, *(repr(r.args) for r in caplog.records)]:
        assert_clean(text, "an exception or a log record")


# Credentials written into workflow files: those of the files iointel's serializer wrote (see
# tools/workflow_fixtures/), and hand-written ones in the other places a credential hides.
WORKFLOW_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "workflows" / "sdk"
WORKFLOW_VALUES = [
    generate.AGENT_KEY,
    generate.GITHUB_TOKEN,
    generate.LINEAR_KEY,
    generate.CRAWLER_KEY,
    generate.WEATHER_KEY,
    generate.EMAIL_PASSKEY,
    generate.RETRIEVAL_KEY,
    "pw-CANARY-in-a-url-0009",
    "tvly-CANARY-args-0010",
]
HAND_WRITTEN = f"""
agents:
  members:
    - name: swarm-member
      api_key: "{generate.AGENT_KEY}"
      tools:
        - [agno__sql__run_sql_query, {{db_url: "postgresql://app:{WORKFLOW_VALUES[7]}@db/app"}}]
        - [agno__tavily__web_search_using_tavily, {{api_key: {WORKFLOW_VALUES[8]}, max_tokens: 6000}}]
"""


def test_workflow_credentials_stay_out_of_every_output(
    logging_emulator: RunningEmulator, tmp_path: Path
) -> None:
    shutil.copytree(WORKFLOW_FIXTURES, tmp_path / "flows")
    write(tmp_path / "flows" / "hand-written.yaml", HAND_WRITTEN)
    write(tmp_path / "secrets.yaml", "version: 1\nworkflows: [flows/*.yaml]\nsecrets: []\n")
    forbidden = tuple(sorted({form for value in WORKFLOW_VALUES for form in forms(value)}))
    url = logging_emulator.url

    def run_here(*args: str, code: int) -> Any:
        result = cli(*args, cwd=tmp_path, url=url, key=API_KEY, secrets=forbidden)
        assert result.returncode == code, f"{args}: {result.returncode}\n{result.stdout}\n{result.stderr}"
        return result

    checked = run_here("workflows", "check", "secrets.yaml", code=1)
    assert checked.stdout.count(": error: ") == 21
    run_here("validate", "secrets.yaml", "--offline", code=1)
    for fmt in ("text", "markdown", "json"):
        run_here("plan", "secrets.yaml", "-vv", "--format", fmt, code=0)
    flows = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "flows").glob("*.yaml"))
    run_here("workflows", "extract", *flows, "--into", "secrets.yaml", "--dry-run", code=0)
    run_here("workflows", "extract", *flows, "--into", "secrets.yaml", code=0)
    run_here("workflows", "check", "secrets.yaml", code=0)
    for path in tmp_path.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert not [value for value in WORKFLOW_VALUES if value in text], path


# A four-character value is shown whole as its display: only the displays seen in the run (no mask
# in them to give them away) keep a server's echo of it out of the output.
TINY = "Wq4z"
ECHOED = DESIRED + "  - secret_name: tiny\n    secret_value: ${TINY}\n"


def test_server_echoes_of_the_key_and_of_displays_are_withheld(tmp_path: Path) -> None:
    """An emulator whose errors repeat the caller's API key and every display of the account."""
    write(tmp_path / "secrets.yaml", ECHOED)
    db = tmp_path / "echo.db"
    env = {"TINY": TINY}
    with start_emulator(db_path=db) as calm:
        run("apply", "secrets.yaml", "--auto-approve", root=tmp_path, url=calm.url, env=env)
    forbidden = [*FORBIDDEN, TINY]
    said: list[str] = []

    # Every request refused, each way in turn, before this run has listed a single display.
    with start_emulator("--inspect", "--fail-echo-rate", "1", db_path=db) as echo:
        for _ in ECHO_STATUSES:
            said.append(
                run("plan", "secrets.yaml", "-vv", root=tmp_path, url=echo.url, env=env, code=1).stderr
            )
        assert {r["fault"] for r in echo.requests()} == {"echo"}
    for status in (400, 401, 403, 404, 409, 422):
        assert any(f"HTTP {status}" in text and "withheld" in text for text in said), status
    assert any("answered 200 with (withheld" in text for text in said)

    # Listings that succeed, then writes refused repeating the displays the listing showed. Another
    # endpoint, so another state file: a state belongs to one.
    state = ("--state", "echo-state.json")
    with start_emulator("--inspect", "--fail-echo-rate", "0.25", "--seed", "5", db_path=db) as echo:

        def refused_writes() -> int:
            return sum(1 for r in echo.requests() if r["method"] == "PATCH" and r["fault"] == "echo")

        # Each format at least once, and on until a write has been refused (a few runs at this rate).
        formats = itertools.islice(itertools.cycle(("text", "markdown", "json")), 12)
        for runs, fmt in enumerate(formats):
            if runs >= 3 and refused_writes():
                break
            result = run(
                "apply",
                "secrets.yaml",
                *state,
                "--auto-approve",
                "--force-values",
                "--concurrency",
                "1",
                "-vv",
                "--format",
                fmt,
                root=tmp_path,
                url=echo.url,
                env=env,
                code=None,
            )
            said.extend([result.stdout, result.stderr])
        assert refused_writes(), "no write met an echo fault"
        for command in (
            ("drift", "secrets.yaml"),
            ("import", "--dry-run"),
            ("forget", "secrets.yaml", "long"),
        ):
            result = run(*command, *state, "-vv", root=tmp_path, url=echo.url, env=env, code=None)
            said.extend([result.stdout, result.stderr])
    assert any("withheld" in text for text in said[len(ECHO_STATUSES) :])
    for text in said:
        for secret in forbidden:
            assert secret not in text
    files_clean(tmp_path)
