"""Drift that tells the truth wherever it runs, end to end: without a state, with a state of another
account, with values older than their max_age, with short values, and after a create whose answer
was lost (a proxy holds the POST back, as a slow server would)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.e2e.test_drift import applied, by_name, patch
from tests.e2e.test_plan_apply import BASE, CANARIES, emu, reconciler, write
from tests.support.emulator import RunningEmulator, start_emulator

pytestmark = pytest.mark.e2e
__all__ = ["emu"]  # the fixture, shared with test_plan_apply

ROTATED = "ghp_rotatedByHandInTheWebPage9"
ROTATED_DISPLAY = "ghp_****age9"
STATE = Path(".reconciler") / "state.json"


def test_without_a_state_drift_reports_what_plan_shows_and_says_it_has_none(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    """Apply, lose the state, edit a secret by hand in a way its display proves: drift must not say
    "No drift." while plan --detailed-exitcode shows the change."""
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    (tmp_path / STATE).unlink()
    patch(emu, str(by_name(emu)["github-token"]["secret_id"]), {"secret_value": ROTATED, "tool_arg": "token"})

    assert (
        reconciler("plan", "secrets.yaml", "--detailed-exitcode", url=emu.url, cwd=tmp_path).returncode == 2
    )
    text = reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path)
    assert text.returncode == 2, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"Note: no state file at {STATE}: the account is compared with the file alone")
    assert sum("no state file" in line for line in lines) == 1
    assert any(line.startswith("! github-token (") and ": differs_no_baseline: " in line for line in lines)
    assert '    tool_arg: "access_token" (the file) → "token" (found)' in lines
    assert any(line.startswith("    secret_value: (sensitive) (the file) → another value") for line in lines)

    markdown = reconciler("drift", "secrets.yaml", "--format", "markdown", url=emu.url, cwd=tmp_path)
    assert markdown.returncode == 2
    # After the header (which file, which account), the notice comes first.
    header, notice = markdown.stdout.split("\n\n")[:2]
    assert header.startswith("#### reconciler drift for <code>secrets&#46;yaml</code>")
    assert notice.startswith(":information_source: no state file")
    document = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path)
    assert document.returncode == 2
    found = json.loads(document.stdout)
    assert found["notice"].startswith("no state file at")
    (item,) = found["drift"]
    assert (item["secret_name"], item["verdict"]) == ("github-token", "differs_no_baseline")
    assert item["file"] == {"tool_arg": "access_token", "secret_value": "(sensitive)"}
    assert item["found"] == {"tool_arg": "token", "secret_value": "(sensitive)"}

    ignored = reconciler("drift", "secrets.yaml", "--ignore-state", url=emu.url, cwd=tmp_path)
    assert ignored.returncode == 2 and ignored.stdout.startswith("Note: --ignore-state: ")
    for run in (text, markdown, document, ignored):
        assert ROTATED not in run.stdout + run.stderr and ROTATED_DISPLAY not in run.stdout + run.stderr


def test_require_state_makes_a_missing_state_an_error(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    assert reconciler("drift", "secrets.yaml", "--require-state", url=emu.url, cwd=tmp_path).returncode == 0
    (tmp_path / STATE).unlink()
    before = len(emu.requests())
    missing = reconciler("drift", "secrets.yaml", "--require-state", url=emu.url, cwd=tmp_path)
    assert missing.returncode == 1 and missing.stdout == ""
    assert f"{STATE}: no state file, and --require-state is set" in missing.stderr
    assert len(emu.requests()) == before  # refused before asking the account anything
    both = reconciler("drift", "secrets.yaml", "--require-state", "--ignore-state", url=emu.url, cwd=tmp_path)
    assert both.returncode == 1 and "contradict" in both.stderr


def test_without_a_state_entries_missing_from_the_account_are_reported(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    linear = by_name(emu)["linear-key"]
    httpx.delete(
        f"{emu.url}/api/v1/secrets/{linear['secret_id']}", headers={"Authorization": "Bearer e2e-key"}
    )
    with_state = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path)
    assert [i["verdict"] for i in json.loads(with_state.stdout)["drift"]] == ["deleted_remotely"]
    (tmp_path / STATE).unlink()
    without = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path)
    assert without.returncode == 2
    items = json.loads(without.stdout)["drift"]
    assert [(i["secret_name"], i["verdict"]) for i in items] == [("linear-key", "missing_no_baseline")]


def test_a_secret_without_a_state_entry_gets_the_no_baseline_verdict(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    assert reconciler("forget", "secrets.yaml", "linear-key", url=emu.url, cwd=tmp_path).returncode == 0
    patch(emu, str(by_name(emu)["linear-key"]["secret_id"]), {"tool_arg": "edited_by_hand"})
    drift = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path)
    assert drift.returncode == 2
    found = json.loads(drift.stdout)
    assert found["notice"] is None  # there is a state; only this secret has no entry in it
    assert [(i["secret_name"], i["verdict"]) for i in found["drift"]] == [
        ("linear-key", "differs_no_baseline")
    ]


def test_a_state_of_another_account_or_endpoint_is_refused(emu: RunningEmulator, tmp_path: Path) -> None:
    shared_key = {"RECONCILER_STATE_KEY": "one-state-key-for-both-accounts"}
    write(tmp_path / "secrets.yaml", BASE)
    first = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path, env=shared_key)
    assert first.returncode == 0, first.stderr
    saved = (tmp_path / STATE).read_text()
    # The emulator makes every key its own account; this one has a secret of its own.
    httpx.post(
        f"{emu.url}/api/v1/secrets/",
        json={"secret_name": "theirs", "secret_value": "their-value-0000000000"},
        headers={"Authorization": "Bearer other-account-key"},
        timeout=10,
    ).raise_for_status()
    for command in ("plan", "drift", "apply"):
        args = ("--auto-approve",) if command == "apply" else ()
        refused = reconciler(
            command, "secrets.yaml", *args, url=emu.url, cwd=tmp_path, key="other-account-key", env=shared_key
        )
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "the state belongs to another io.net account" in refused.stderr
    assert (tmp_path / STATE).read_text() == saved
    assert [
        s["secret_name"]
        for s in httpx.get(
            f"{emu.url}/api/v1/secrets/", headers={"Authorization": "Bearer other-account-key"}, timeout=10
        ).json()["data"]
    ] == ["theirs"]
    elsewhere = reconciler(
        "plan", "secrets.yaml", "--api-url", "local", url=emu.url, cwd=tmp_path, env=shared_key
    )
    assert (
        elsewhere.returncode == 1
        and f"the state belongs to {emu.url}, but the API URL is local" in elsewhere.stderr
    )


def test_a_state_under_another_key_is_kept_for_its_account_without_its_fingerprints(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    """The state key derived from the API key changes when the key is rotated; a new
    RECONCILER_STATE_KEY does the same. The account is the same, so the state is kept: fields keep
    their watermark, deletes by hand are still seen, and only the values lose their baseline."""
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    secrets = by_name(emu)
    patch(emu, str(secrets["github-token"]["secret_id"]), {"tool_arg": "token"})
    patch(emu, str(secrets["linear-key"]["secret_id"]), {"secret_value": ROTATED})
    new_key = {"RECONCILER_STATE_KEY": "the-key-after-rotation"}

    drift = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path, env=new_key)
    assert drift.returncode == 2, drift.stderr
    found = json.loads(drift.stdout)
    assert "was written under another state key" in found["notice"]
    assert sorted((i["secret_name"], i["verdict"]) for i in found["drift"]) == [
        ("github-token", "fields_changed"),
        ("linear-key", "differs_no_baseline"),
    ]
    text = reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path, env=new_key)
    assert text.returncode == 2 and text.stdout.startswith("Note: ")
    assert ROTATED not in text.stdout + drift.stdout and ROTATED_DISPLAY not in text.stdout + drift.stdout

    # apply restores the file and writes the state under the new key. The value it re-sent is keyed
    # again; the other one (only its tool_arg was restored) still has no fingerprint, and says so.
    restored = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path, env=new_key)
    assert restored.returncode == 0, restored.stderr
    saved = json.loads((tmp_path / STATE).read_text())
    assert saved["key_source"] == "RECONCILER_STATE_KEY"
    keyed = {entry["secret_name"]: bool(entry["fingerprint"]) for entry in saved["secrets"].values()}
    assert keyed == {"github-token": False, "linear-key": True}
    again = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path, env=new_key)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1 secret kept no value fingerprint" in json.loads(again.stdout)["notice"]
    # Written under the new key now, the state is the old key's "another key" in turn.
    old = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path)
    assert old.returncode == 0 and "another state key" in json.loads(old.stdout)["notice"]


def test_adopt_records_the_fingerprints_again_under_the_new_key(emu: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    new_key = {"RECONCILER_STATE_KEY": "the-key-after-rotation"}
    # An apply with nothing to write rewrites the state under the new key, still without fingerprints:
    # that must go on being said, or the values would be judged by their display in silence.
    rewritten = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path, env=new_key)
    assert rewritten.returncode == 0, rewritten.stderr
    assert json.loads((tmp_path / STATE).read_text())["key_source"] == "RECONCILER_STATE_KEY"
    drift = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path, env=new_key)
    assert drift.returncode == 0, drift.stderr
    assert "2 secrets kept no value fingerprint" in json.loads(drift.stdout)["notice"]

    adopt = reconciler("apply", "secrets.yaml", "--adopt", url=emu.url, cwd=tmp_path, env=new_key)
    assert adopt.returncode == 0, adopt.stdout + adopt.stderr
    saved = json.loads((tmp_path / STATE).read_text())
    assert saved["key_source"] == "RECONCILER_STATE_KEY"
    assert all(entry["fingerprint"] for entry in saved["secrets"].values())
    assert [r["method"] for r in emu.requests() if r["method"] != "GET"] == ["POST", "POST"]
    after = reconciler("drift", "secrets.yaml", "--format", "json", url=emu.url, cwd=tmp_path, env=new_key)
    assert after.returncode == 0 and json.loads(after.stdout)["notice"] is None


def test_a_state_under_another_key_is_refused_where_the_account_cannot_be_told(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    """An empty account shows no user_id; another account shows its own: neither may take the state."""
    write(tmp_path / "secrets.yaml", BASE)
    applied(emu, tmp_path)
    saved = (tmp_path / STATE).read_text()
    empty = reconciler("drift", "secrets.yaml", url=emu.url, cwd=tmp_path, key="an-empty-account")
    assert empty.returncode == 1 and "another state key" in empty.stderr
    httpx.post(
        f"{emu.url}/api/v1/secrets/",
        json={"secret_name": "theirs", "secret_value": "their-value-0000000000"},
        headers={"Authorization": "Bearer other-account-key"},
        timeout=10,
    ).raise_for_status()
    other = reconciler(
        "apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path, key="other-account-key"
    )
    assert other.returncode == 1 and "the state belongs to another io.net account" in other.stderr
    assert (tmp_path / STATE).read_text() == saved


def test_a_value_older_than_its_max_age_is_stale_in_drift_and_a_note_in_plan(tmp_path: Path) -> None:
    two_days_ago = str(-2 * 86400)
    with start_emulator("--clock-offset", two_days_ago, db_path=tmp_path / "old.db") as old:
        write(
            tmp_path / "secrets.yaml",
            BASE.replace("    tool_arg: access_token\n", "    tool_arg: access_token\n    max_age: 1d\n"),
        )
        applied(old, tmp_path)
        state = json.loads((tmp_path / STATE).read_text())
        written = {e["secret_name"]: e["value_written_at"] for e in state["secrets"].values()}
        assert all(written.values())

        drift = reconciler("drift", "secrets.yaml", "--format", "json", url=old.url, cwd=tmp_path)
        assert drift.returncode == 2
        (item,) = json.loads(drift.stdout)["drift"]
        assert (item["secret_name"], item["verdict"], item["age_source"]) == (
            "github-token",
            "stale",
            "value_write",
        )
        assert 1.9 < item["age_days"] < 2.1
        text = reconciler("drift", "secrets.yaml", url=old.url, cwd=tmp_path)
        assert "old (sent by reconciler), older than its max_age 1d; rotate it" in text.stdout

        plan = reconciler("plan", "secrets.yaml", "--detailed-exitcode", url=old.url, cwd=tmp_path)
        assert plan.returncode == 0, plan.stdout  # a note, never a change
        assert "Notes (values older than their max_age; not a change):" in plan.stdout
        assert "github-token" in plan.stdout and "linear-key" not in plan.stdout.split("Notes")[1]


def test_a_short_value_draws_the_display_warning_without_its_characters(
    emu: RunningEmulator, tmp_path: Path
) -> None:
    short = "Zq7#Xw"
    text = BASE + "  - secret_name: short-key\n    secret_value: ${SHORT}\n"
    write(tmp_path / "secrets.yaml", text)
    env = {"SHORT": short}
    validate = reconciler("validate", "secrets.yaml", url=emu.url, cwd=tmp_path, env=env)
    assert validate.returncode == 0
    assert (
        "'short-key': io.net's display shows 6 of the value's 6 characters (4 first and 4 last, assumed"
        in (validate.stderr)
    )
    done = reconciler("apply", "secrets.yaml", "--auto-approve", url=emu.url, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    plan = reconciler("plan", "secrets.yaml", url=emu.url, cwd=tmp_path, env=env)
    assert "'short-key': io.net's display shows 6 of the value's 6 characters" in plan.stdout
    assert "as the account's displays show" in plan.stdout
    assert "github-token" not in plan.stdout.split("Warnings:")[1]
    for run in (validate, plan):
        for shown in (short, short[:2] + "****", "Zq****w"):
            assert shown not in run.stdout + run.stderr


# --- a create whose answer was lost ----------------------------------------------------------------


class HoldingProxy(BaseHTTPRequestHandler):
    """Forwards to the emulator; while `hold` is set, a POST is held back (no answer, not forwarded)
    until `release` is set, then forwarded: the create lands long after the client gave up."""

    upstream: ClassVar[str] = ""
    address: ClassVar[str] = ""
    hold: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()
    landed: ClassVar[threading.Event] = threading.Event()
    posts: ClassVar[list[str]] = []

    def _forward(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length) if length else None
        if self.command == "POST":
            type(self).posts.append(self.path)
            if type(self).hold.is_set():
                type(self).release.wait(60)
        headers = {k: v for k, v in self.headers.items() if k.lower() in ("authorization", "content-type")}
        answer = httpx.request(self.command, type(self).upstream + self.path, content=body, headers=headers)
        if self.command == "POST":
            type(self).landed.set()
        try:
            self.send_response(answer.status_code)
            self.send_header("content-type", answer.headers.get("content-type", "application/json"))
            self.send_header("content-length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)
        except OSError:
            pass  # the client stopped waiting long ago

    do_GET = do_POST = do_PATCH = do_DELETE = _forward

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def proxy(emu: RunningEmulator) -> Iterator[type[HoldingProxy]]:
    HoldingProxy.upstream = emu.url
    for event in (HoldingProxy.hold, HoldingProxy.release, HoldingProxy.landed):
        event.clear()
    HoldingProxy.posts.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), HoldingProxy)
    server.daemon_threads = True
    HoldingProxy.address = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield HoldingProxy
    finally:
        HoldingProxy.release.set()
        server.shutdown()
        server.server_close()


ONE = """
version: 1
secrets:
  - secret_name: github-token
    secret_value: ${GITHUB_TOKEN}
    tool_name: "agno__github__*"
"""


def test_a_timed_out_create_is_held_then_recognised_and_recorded_without_a_write(
    emu: RunningEmulator, proxy: type[HoldingProxy], tmp_path: Path
) -> None:
    write(tmp_path / "secrets.yaml", ONE)
    proxy_url = proxy.address
    proxy.hold.set()
    lost = reconciler(
        "apply", "secrets.yaml", "--auto-approve", "--timeout", "1", url=proxy_url, cwd=tmp_path
    )
    assert lost.returncode == 1
    assert (
        "not sent again" in lost.stdout
        and "pending create" in lost.stdout
        and "Not guaranteed" in lost.stdout
    )
    (pending,) = json.loads((tmp_path / STATE).read_text())["pending"].values()
    assert pending["in_doubt"] is True

    # Applying again at once, as the old advice said, must not send it twice while it may still land.
    again = reconciler("apply", "secrets.yaml", "--auto-approve", url=proxy_url, cwd=tmp_path)
    assert again.returncode == 1
    assert "may still land" in again.stderr and "it is not sent again before" in again.stderr
    assert len(proxy.posts) == 1
    assert reconciler("drift", "secrets.yaml", url=proxy_url, cwd=tmp_path).returncode == 0

    proxy.hold.clear()
    proxy.release.set()
    assert proxy.landed.wait(30)
    before = len(emu.requests())
    recovered = reconciler("apply", "secrets.yaml", "--auto-approve", url=proxy_url, cwd=tmp_path)
    assert recovered.returncode == 0, recovered.stdout + recovered.stderr
    # The listing alone (a window, and the one after it proving nothing follows): recorded without a write.
    assert [r["method"] for r in emu.requests()[before:]] == ["GET", "GET"]
    assert len(proxy.posts) == 1 and len(by_name(emu)) == 1
    state = json.loads((tmp_path / STATE).read_text())
    assert state["pending"] == {}
    (entry,) = state["secrets"].values()
    assert entry["secret_name"] == "github-token" and entry["value_written_at"]
    drift = reconciler("drift", "secrets.yaml", url=proxy_url, cwd=tmp_path)
    assert drift.returncode == 0 and drift.stdout.strip() == "No drift."
    assert CANARIES["GITHUB_TOKEN"] not in (tmp_path / STATE).read_text()
