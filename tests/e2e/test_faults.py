"""apply under faults end to end: injected 5xx, ambiguous failures, 429, 413, SIGINT, two runs at once,
and hostile servers. The helpers at the top are shared by the other safety end-to-end tests."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from reconciler import state as state_file
from reconciler.emulator.app import account_id
from reconciler.models import SecretValue
from tests.support import cli as support_cli
from tests.support.emulator import RunningEmulator, start_emulator

pytestmark = pytest.mark.e2e

# --- helpers shared by the safety end-to-end tests ------------------------------------------------

STATE_KEY = "safety-state-key-0123456789"


@dataclass(frozen=True)
class Secret:
    """One secret as the emulator stored it, value included (read from its database)."""

    secret_id: str
    secret_name: str
    secret_value: str
    tool_name: str | None
    tool_arg: str | None
    is_default_for_tool: bool


def base_env(key: str, url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {"IOINTELLIGENCE_API_KEY": key, "RECONCILER_API_URL": url, "RECONCILER_STATE_KEY": STATE_KEY}
    return support_cli.clean_env({**env, **(extra or {})})


def cli(
    *args: str,
    cwd: Path,
    url: str,
    key: str,
    env: dict[str, str] | None = None,
    secrets: tuple[str, ...] = (),
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`reconciler ARGS` in a subprocess; never a traceback, and none of `secrets` in its output."""
    return support_cli.run(*args, cwd=cwd, env=base_env(key, url, env), secrets=secrets, timeout=timeout)


def spawn(
    *args: str, cwd: Path, url: str, key: str, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    """`reconciler ARGS` started in the background, output captured."""
    return subprocess.Popen(
        support_cli.argv(*args),
        cwd=cwd,
        env=base_env(key, url, env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def stored(db_path: Path, key: str) -> list[Secret]:
    """The account's secrets as the emulator stored them, in creation order."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT secret_id, secret_name, secret_value, tool_name, tool_arg, is_default_for_tool "
            "FROM secrets WHERE user_id = ? ORDER BY seq",
            (account_id(key),),
        ).fetchall()
    return [Secret(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]


def by_name(secrets: list[Secret]) -> dict[str, Secret]:
    names = [s.secret_name for s in secrets]
    assert len(names) == len(set(names)), f"duplicate names: {sorted(names)}"
    return {s.secret_name: s for s in secrets}


def fingerprint(value: str) -> str:
    return state_file.StateKey(STATE_KEY.encode(), "test").fingerprint(SecretValue(value))


def state_entries(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    entries: dict[str, dict[str, Any]] = data["secrets"]
    return entries


def assert_state_truthful(
    state_path: Path,
    now: list[Secret],
    *,
    names: dict[str, set[str]] | None = None,
    values: dict[str, set[str]] | None = None,
) -> None:
    """No state entry lies: its secret exists, under the recorded name, holding a value whose
    fingerprint is the recorded one. `names` and `values` add, per id, what it held before the run
    being checked (a write that landed after the last checkpoint is not recorded yet)."""
    remote = {s.secret_id: s for s in now}
    for secret_id, entry in state_entries(state_path).items():
        assert secret_id in remote, f"state entry {entry['secret_name']} ({secret_id}) does not exist"
        secret = remote[secret_id]
        allowed_names = {secret.secret_name} | (names or {}).get(secret_id, set())
        assert entry["secret_name"] in allowed_names, (entry["secret_name"], allowed_names)
        allowed = {fingerprint(v) for v in {secret.secret_value} | (values or {}).get(secret_id, set())}
        assert entry["fingerprint"] in allowed, f"{secret.secret_name}: fingerprint of a value never written"


class History:
    """Every name and value each secret has held at the snapshots taken: what a state may still
    record for it when a later write could not be confirmed."""

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}
        self.values: dict[str, set[str]] = {}

    def see(self, secrets: list[Secret]) -> None:
        for secret in secrets:
            self.names.setdefault(secret.secret_id, set()).add(secret.secret_name)
            self.values.setdefault(secret.secret_id, set()).add(secret.secret_value)


def report_of(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The JSON apply report (`--format json`)."""
    document: dict[str, Any] = json.loads(result.stdout)
    assert "outcomes" in document, result.stdout[:2000]
    return document


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """One plain emulator per module (per worker); tests keep apart by using their own API key."""
    db = tmp_path_factory.mktemp("safety-emu") / "emulator.db"
    with start_emulator("--inspect", db_path=db) as running:
        yield running


# --- faults -------------------------------------------------------------------------------------

FAULTS = ("--fail-rate", "0.2", "--fail-after-rate", "0.1", "--rate-limit", "20")
# Why a write may fail under these faults, as the report must say it.
FAILURE_REASON = re.compile(
    r"HTTP (429|5\d\d)|no answer within|may still create|cannot be read back|cannot reach"
)
V1 = {f"V{i}": f"v1-value-{i:02d}-CANARYfault" for i in range(12)}
V2 = {f"V{i}": (f"v2-value-{i:02d}-CANARYfault" if i % 3 == 0 else v) for i, v in enumerate(V1.values())}


def fault_files() -> tuple[str, str]:
    before = "version: 1\nsecrets:\n" + "".join(
        f"  - secret_name: s{i:02d}\n    secret_value: ${{V{i}}}\n    tool_name: tool-{i}\n    tool_arg: a\n"
        for i in range(12)
    )
    before += "".join(f"  - secret_name: stray-{i}\n    secret_value: ${{V0}}\n" for i in range(3))
    before += "  - secret_name: old-name\n    secret_value: ${V1}\n"
    after = "version: 1\nprune: {match: ['stray-*']}\nsecrets:\n" + "".join(
        f"  - secret_name: s{i:02d}\n    secret_value: ${{V{i}}}\n    tool_name: tool-{i}\n"
        f"    tool_arg: {'b' if i % 2 else 'a'}\n"
        for i in range(12)
    )
    after += "".join(f"  - secret_name: n{i:02d}\n    secret_value: ${{V{i}}}\n" for i in range(8))
    after += "  - secret_name: new-name\n    secret_value: ${V1}\n    previous_names: [old-name]\n"
    return before, after


def expected_after() -> dict[str, tuple[str, str | None, str | None]]:
    want: dict[str, tuple[str, str | None, str | None]] = {
        f"s{i:02d}": (V2[f"V{i}"], f"tool-{i}", "b" if i % 2 else "a") for i in range(12)
    }
    want.update({f"n{i:02d}": (V2[f"V{i}"], None, None) for i in range(8)})
    want["new-name"] = (V2["V1"], None, None)
    return want


def check_report(report: dict[str, Any], code: int, now: dict[str, Secret], want: dict[str, Any]) -> None:
    """Each outcome is true, or says exactly what failed and why; the summary adds up."""
    counts = {"ok": 0, "failed": 0, "skipped": 0}
    for outcome in report["outcomes"]:
        counts[outcome["status"]] += 1
        if outcome["status"] == "ok":
            assert outcome_holds(outcome, now, want), outcome
        elif outcome["status"] == "failed":
            assert outcome["secret_name"] and FAILURE_REASON.search(outcome["message"]), outcome
        else:
            assert outcome["message"].startswith("skipped"), outcome
    assert report["summary"] == {
        "succeeded": counts["ok"],
        "failed": counts["failed"],
        "skipped": counts["skipped"],
    }
    assert (code == 1) == bool(counts["failed"]), (code, counts)


def outcome_holds(outcome: dict[str, Any], now: dict[str, Secret], want: dict[str, Any]) -> bool:
    """Whether what the report calls done is true in the account right after the run."""
    name = outcome["secret_name"]
    if outcome["action"] == "delete":
        return all(s.secret_id != outcome["secret_id"] for s in now.values())
    secret = now.get(name)
    if secret is None or (outcome["secret_id"] and secret.secret_id != outcome["secret_id"]):
        return False
    value, tool_name, tool_arg = want[name]
    return (secret.secret_value, secret.tool_name, secret.tool_arg) == (value, tool_name, tool_arg)


@pytest.mark.parametrize("seed", ["11", "23"])
def test_faults_converge_within_three_applies_without_duplicates(seed: str, tmp_path: Path) -> None:
    key = f"faults-{seed}"
    db = tmp_path / "emulator.db"
    before, after = fault_files()
    write(tmp_path / "secrets.yaml", before)
    with start_emulator(db_path=db) as calm:
        setup = cli("apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=calm.url, key=key, env=V1)
        assert setup.returncode == 0, setup.stdout + setup.stderr
    ids_before = {s.secret_name: s.secret_id for s in stored(db, key)}

    write(tmp_path / "secrets.yaml", after)
    want = expected_after()
    canaries = tuple({*V1.values(), *V2.values()})
    summaries: list[dict[str, int]] = []
    converged = False
    history = History()
    with start_emulator(*FAULTS, "--seed", seed, "--port", calm.port, db_path=db) as faulty:
        for _ in range(3):
            history.see(stored(db, key))
            result = cli(
                "apply",
                "secrets.yaml",
                "--auto-approve",
                "--format",
                "json",
                cwd=tmp_path,
                url=faulty.url,
                key=key,
                env=V2,
                secrets=canaries,
            )
            now = by_name(stored(db, key))  # no name is ever held twice, after any run
            assert_state_truthful(
                tmp_path / ".reconciler" / "state.json", list(now.values()), values=history.values
            )
            assert result.returncode in (0, 1), result.stderr
            if not result.stdout.strip():
                # The run stopped before applying (the listing itself gave up): it says why.
                assert result.returncode == 1 and FAILURE_REASON.search(result.stderr), result.stderr
                continue
            document = json.loads(result.stdout)
            if "outcomes" not in document:  # nothing left to do: the plan is printed instead
                assert result.returncode == 0 and not document["changes"], document
                converged = True
                break
            check_report(document, result.returncode, now, want)
            summaries.append(document["summary"])
            if result.returncode == 0:
                converged = True
                break
    assert converged, f"no convergence after three applies: {summaries}"

    final = by_name(stored(db, key))
    assert {name: (s.secret_value, s.tool_name, s.tool_arg) for name, s in final.items()} == want
    # Updated and renamed secrets kept their ids: nothing was recreated.
    assert all(final[f"s{i:02d}"].secret_id == ids_before[f"s{i:02d}"] for i in range(12))
    assert final["new-name"].secret_id == ids_before["old-name"]
    assert_state_truthful(tmp_path / ".reconciler" / "state.json", list(final.values()))
    assert {e["secret_name"] for e in state_entries(tmp_path / ".reconciler" / "state.json").values()} == set(
        want
    )


# --- 413 in the middle of an apply ----------------------------------------------------------------


def test_413_mid_apply_keeps_what_was_written_names_the_failure_and_a_later_apply_converges(
    tmp_path: Path,
) -> None:
    key = "quota-413"
    db = tmp_path / "emulator.db"
    values = {f"Q{i}": f"quota-value-{i:02d}-CANARYquota" + "q" * 40 for i in range(6)}
    first = "version: 1\nsecrets:\n  - secret_name: old\n    secret_value: ${Q0}\n"
    write(tmp_path / "secrets.yaml", first)
    with start_emulator(db_path=db) as calm:
        assert (
            cli(
                "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=calm.url, key=key, env=values
            ).returncode
            == 0
        )
    old = by_name(stored(db, key))["old"]
    text = (
        "version: 1\nsecrets:\n  - secret_name: old\n    secret_value: ${Q0}\n    tool_arg: kept\n"
        + "".join(f"  - secret_name: s{i}\n    secret_value: ${{Q{i}}}\n" for i in range(1, 6))
    )
    write(tmp_path / "secrets.yaml", text)
    # Room for the old secret and two of the five new ones (each name + value is 2 + 72 bytes).
    with start_emulator("--quota-bytes", str(3 * 75 + 10), "--port", calm.port, db_path=db) as tight:
        result = cli(
            "apply",
            "secrets.yaml",
            "--auto-approve",
            "--format",
            "json",
            "--concurrency",
            "1",
            cwd=tmp_path,
            url=tight.url,
            key=key,
            env=values,
            secrets=tuple(values.values()),
        )
    assert result.returncode == 1
    report = report_of(result)
    failed = [o for o in report["outcomes"] if o["status"] == "failed"]
    ok = [o for o in report["outcomes"] if o["status"] == "ok"]
    assert len(failed) == 3 and len(ok) == 3  # the field update and two creates; the rest went on and failed
    for outcome in failed:
        assert "HTTP 413" in outcome["message"] and "quota" in outcome["message"]
        assert repr(outcome["secret_name"]) in outcome["message"]
    now = by_name(stored(db, key))
    assert now["old"].secret_value == old.secret_value and now["old"].tool_arg == "kept"  # nothing lost
    entries = state_entries(tmp_path / ".reconciler" / "state.json")
    assert {e["secret_name"] for e in entries.values()} == set(now)  # every write recorded
    assert_state_truthful(tmp_path / ".reconciler" / "state.json", list(now.values()))

    with start_emulator("--port", calm.port, db_path=db) as roomy:
        done = cli(
            "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=roomy.url, key=key, env=values
        )
    assert done.returncode == 0, done.stdout + done.stderr
    final = by_name(stored(db, key))
    assert {n: s.secret_value for n, s in final.items()} == {
        "old": values["Q0"],
        **{f"s{i}": values[f"Q{i}"] for i in range(1, 6)},
    }
    assert final["old"].secret_id == old.secret_id


# --- SIGINT ---------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def account_requests(emu: RunningEmulator, key: str) -> list[dict[str, Any]]:
    return [r for r in emu.requests() if r["user_id"] == account_id(key)]


def test_sigint_finishes_writes_in_flight_saves_state_and_exits_130(tmp_path: Path) -> None:
    key = "sigint"
    db = tmp_path / "emulator.db"
    values = {f"S{i}": f"sigint-value-{i:02d}-CANARYint" for i in range(12)}
    text = "version: 1\nsecrets:\n" + "".join(
        f"  - secret_name: s{i:02d}\n    secret_value: ${{S{i}}}\n" for i in range(12)
    )
    write(tmp_path / "secrets.yaml", text)
    with start_emulator("--inspect", "--latency-ms", "250", db_path=db) as emu:
        proc = spawn(
            "apply",
            "secrets.yaml",
            "--auto-approve",
            "--concurrency",
            "2",
            cwd=tmp_path,
            url=emu.url,
            key=key,
            env=values,
        )
        try:
            wait_for(
                lambda: any(r["method"] == "POST" for r in account_requests(emu, key)), what="a first create"
            )
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        posts = [r for r in account_requests(emu, key) if r["method"] == "POST"]
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "Interrupted" in stderr
    assert "Apply interrupted" in stdout and "not started: interrupted" in stdout
    assert all(value not in stdout + stderr for value in values.values())
    now = by_name(stored(db, key))
    assert 0 < len(posts) < 12 and len(now) == len(posts)  # no new work after the signal
    # Every write that was in flight finished and is recorded: the state holds exactly what exists.
    assert {e["secret_name"] for e in state_entries(tmp_path / ".reconciler" / "state.json").values()} == set(
        now
    )
    assert_state_truthful(tmp_path / ".reconciler" / "state.json", list(now.values()))
    assert not (tmp_path / ".reconciler" / "state.json.lock").exists()

    with start_emulator("--port", emu.port, db_path=db) as calm:
        again = cli(
            "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=calm.url, key=key, env=values
        )
    assert again.returncode == 0, again.stdout + again.stderr
    assert sorted(by_name(stored(db, key))) == [f"s{i:02d}" for i in range(12)]


# --- two applies at once --------------------------------------------------------------------------


def lock_holder(tmp_path: Path) -> int | None:
    try:
        return int(json.loads((tmp_path / ".reconciler" / "state.json.lock").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


def test_a_second_apply_on_the_same_state_refuses_naming_the_holder(tmp_path: Path) -> None:
    key = "two-at-once"
    db = tmp_path / "emulator.db"
    values = {f"T{i}": f"twice-value-{i:02d}-CANARYtwo" for i in range(6)}
    write(
        tmp_path / "secrets.yaml",
        "version: 1\nsecrets:\n"
        + "".join(f"  - secret_name: t{i}\n    secret_value: ${{T{i}}}\n" for i in range(6)),
    )
    with start_emulator("--inspect", "--latency-ms", "150", db_path=db) as emu:
        first = spawn(
            "apply",
            "secrets.yaml",
            "--auto-approve",
            "--concurrency",
            "1",
            cwd=tmp_path,
            url=emu.url,
            key=key,
            env=values,
        )
        try:
            wait_for(lambda: lock_holder(tmp_path) == first.pid, what="the first apply to hold the lock")
            before = len(account_requests(emu, key))
            second = cli(
                "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=emu.url, key=key, env=values
            )
            assert second.returncode == 1
            assert f"another apply holds the state lock (pid {first.pid}" in second.stderr
            assert "since 20" in second.stderr
            _first_out, first_err = first.communicate(timeout=60)
        finally:
            if first.poll() is None:
                first.kill()
                first.communicate()
        # The refused run sent nothing; the first one finished alone: at most its own two listings
        # (its plan's, perhaps under way when counting began, and its read-back), two requests each
        # (a window, and the one after it that proves nothing follows).
        assert first.returncode == 0, first_err
        assert (
            len(
                [
                    r
                    for r in account_requests(emu, key)[before:]
                    if r["method"] == "GET" and r["path"] == "/api/v1/secrets/"
                ]
            )
            <= 4
        )
    assert sorted(by_name(stored(db, key))) == [f"t{i}" for i in range(6)]


def test_a_lock_left_by_a_killed_apply_is_taken_over_and_break_lock_takes_a_live_one(tmp_path: Path) -> None:
    key = "stale-lock"
    db = tmp_path / "emulator.db"
    values = {"L0": "lock-value-00-CANARYlock"}
    write(tmp_path / "secrets.yaml", "version: 1\nsecrets:\n  - secret_name: l0\n    secret_value: ${L0}\n")
    with start_emulator("--latency-ms", "300", db_path=db) as emu:
        victim = spawn(
            "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=emu.url, key=key, env=values
        )
        try:
            wait_for(lambda: lock_holder(tmp_path) == victim.pid, what="the apply to hold the lock")
        finally:
            victim.kill()
            victim.communicate()
        assert lock_holder(tmp_path) == victim.pid  # left behind by SIGKILL
        taken = cli("apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=emu.url, key=key, env=values)
        assert taken.returncode == 0, taken.stderr

        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD_LOCK, str(tmp_path / ".reconciler" / "state.json")],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
            refused = cli(
                "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=emu.url, key=key, env=values
            )
            assert refused.returncode == 1 and f"pid {holder.pid}" in refused.stderr
            broken = cli(
                "apply",
                "secrets.yaml",
                "--auto-approve",
                "--break-lock",
                cwd=tmp_path,
                url=emu.url,
                key=key,
                env=values,
            )
            assert broken.returncode == 0, broken.stderr
        finally:
            holder.kill()
            holder.communicate()


HOLD_LOCK = """
import sys, time
from pathlib import Path
from reconciler import state
with state.lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


# --- hostile servers ------------------------------------------------------------------------------


def _item(secret_id: str = "0b9c6f2e-4a57-4d8e-9a1b-3c2d1e0f9a8b", **extra: Any) -> dict[str, Any]:
    return {
        "secret_id": secret_id,
        "user_id": "u",
        "secret_name": "gh",
        "display": "abcd****wxyz",
        "tool_name": None,
        "tool_arg": None,
        "is_default_for_tool": False,
        "created_at": "2026-01-01T00:00:00+00:00",
        "updated_at": "2026-01-01T00:00:00+00:00",
        **extra,
    }


class Hostile(BaseHTTPRequestHandler):
    """Answers every listing the way `scenario` says, and notes every method it receives."""

    scenario = "html"
    methods: ClassVar[list[str]] = []
    pages = 0

    def _send(
        self, status: int, body: bytes, content_type: str = "application/json", length: bool = True
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        if length:
            self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        type(self).methods.append("GET")
        scenario = type(self).scenario
        if scenario == "html":
            self._send(200, b"<html><body>Sign in to continue</body></html>", "text/html")
        elif scenario == "gateway":
            self._send(502, b"<html><h1>502 Bad Gateway</h1></html>", "text/html")
        elif scenario == "wrong-types":
            self._send(
                200, json.dumps({"data": [_item(secret_name=["a"], is_default_for_tool="yes")]}).encode()
            )
        elif scenario == "missing-fields":
            self._send(200, json.dumps({"data": [{"secret_name": "gh"}]}).encode())
        elif scenario == "not-json":
            self._send(200, b"{'data': [}", "application/json")
        elif scenario == "unsafe-id":
            self._send(200, json.dumps([_item(secret_id="../../../admin")]).encode())
        elif scenario == "endless":
            type(self).pages += 1
            item = _item(secret_id=f"00000000-0000-0000-0000-{type(self).pages:012d}")
            self._send(200, json.dumps({"data": [item], "pagination": {"has_next": True}}).encode())
        elif scenario == "repeating":
            self._send(200, json.dumps({"data": [_item()], "pagination": {"has_next": True}}).encode())
        elif scenario == "huge":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            chunk = b" " * 1_048_576
            try:
                for _ in range(80):  # more than the 64 MiB the client accepts
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass

    def do_POST(self) -> None:
        type(self).methods.append("POST")
        self._send(500, b"{}")

    def do_PATCH(self) -> None:
        type(self).methods.append("PATCH")
        self._send(500, b"{}")

    def do_DELETE(self) -> None:
        type(self).methods.append("DELETE")
        self._send(500, b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def hostile_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


HOSTILE = {
    "html": "with text/html, not JSON",
    "gateway": "HTTP 502",
    "wrong-types": "malformed answer",
    "missing-fields": "malformed answer",
    "not-json": "not JSON",
    "unsafe-id": "not an id",
    "endless": "did not end after 1000 requests",
    "repeating": "repeated secrets",
    "huge": "larger than",
}


@pytest.mark.parametrize("scenario", sorted(HOSTILE))
def test_a_hostile_server_gives_a_clear_error_exit_1_and_no_write(
    scenario: str, hostile_url: str, tmp_path: Path
) -> None:
    Hostile.scenario, Hostile.methods, Hostile.pages = scenario, [], 0
    write(
        tmp_path / "secrets.yaml",
        "version: 1\nprune: true\nsecrets:\n  - secret_name: x\n    secret_value: ${X}\n",
    )
    commands = [("apply", "secrets.yaml", "--auto-approve")]
    if scenario in ("html", "unsafe-id"):
        commands.append(("plan", "secrets.yaml"))
    for command in commands:
        result = cli(
            *command,
            cwd=tmp_path,
            url=hostile_url,
            key="hostile-key",
            env={"X": "hostile-CANARY-value"},
            secrets=("hostile-CANARY-value", "hostile-key"),
        )
        assert result.returncode == 1, result.stdout + result.stderr
        assert HOSTILE[scenario] in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and result.stderr.startswith("Error: ")
    assert set(Hostile.methods) == {"GET"}, Hostile.methods  # nothing written, whatever it answered
