"""A saved plan cannot turn apply against its user: a forged, edited or retargeted plan file is refused
offline, before a single request (a logging server counts them) or any file operation, and a genuine
plan works from any working directory."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.state import state_key
from tests.e2e.test_plan_apply import BASE, CANARIES, DISPLAYS, secrets_of, write
from tests.e2e.test_saved_plan import edit_plan
from tests.support import cli
from tests.support.emulator import RunningEmulator, start_emulator

pytestmark = pytest.mark.e2e

KEY = "e2e-key"


@pytest.fixture(scope="module")
def logger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    """A server that answers like io.net and logs every request it receives: the forger's host."""
    with start_emulator("--inspect", db_path=tmp_path_factory.mktemp("logger") / "db") as running:
        yield running


@pytest.fixture
def watch(logger: RunningEmulator) -> RunningEmulator:
    logger.reset()
    return logger


def apply(
    plan: Path | str, *, cwd: Path, url: str | None, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    """`reconciler apply PLAN --auto-approve`; RECONCILER_API_URL is set only when `url` is given."""
    env = {**CANARIES, "IOINTELLIGENCE_API_KEY": KEY}
    if url is not None:
        env["RECONCILER_API_URL"] = url
    return cli.run(
        "apply",
        str(plan),
        "--auto-approve",
        *extra,
        cwd=cwd,
        env=env,
        secrets=[*CANARIES.values(), *DISPLAYS, KEY],
    )


def make_plan(emu: RunningEmulator, cwd: Path, *args: str) -> dict[str, Any]:
    env = {**CANARIES, "IOINTELLIGENCE_API_KEY": KEY, "RECONCILER_API_URL": emu.url}
    made = cli.run("plan", *args, cwd=cwd, env=env)
    assert made.returncode == 0, made.stderr
    saved: dict[str, Any] = json.loads((cwd / args[args.index("--out") + 1]).read_text())
    return saved


def save(path: Path, payload: dict[str, Any]) -> Path:
    path.write_text(json.dumps(payload))
    return path


def refused_offline(result: subprocess.CompletedProcess[str], *words: str) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert result.stdout == ""
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def no_state_dirs(root: Path) -> None:
    assert [str(p) for p in root.rglob(".reconciler")] == []


def hand_written(api_url: str, desired: str = "secrets.yaml") -> dict[str, Any]:
    return {
        "kind": "reconciler-plan",
        "format_version": "1",
        "plan_id": "00000000-0000-4000-8000-000000000000",
        "desired": {"path": desired, "digest": "0" * 64},
        "state_key_id": "0123456789abcdef",
        "api_url": api_url,
        "summary": {},
        "changes": [{"action": "delete", "secret_name": "x", "secret_id": "x", "patch": {}}],
        "drift": [],
        "signature": "f" * 64,
    }


@pytest.mark.parametrize("environment", ["unset", "the-forgers-host"])
def test_a_hand_written_plan_sends_nothing_to_the_host_it_names(
    environment: str, watch: RunningEmulator, tmp_path: Path
) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    plan = save(tmp_path / "plan.json", hand_written(watch.url))
    url = None if environment == "unset" else watch.url
    refused_offline(apply("plan.json", cwd=tmp_path, url=url), "plan.json", "another state key")
    assert watch.requests() == []
    no_state_dirs(tmp_path)

    # Its key id copied from a genuine plan does not help: the signature still does not match.
    forged = {**json.loads(plan.read_text()), "state_key_id": state_key({}, api_key=KEY).key_id}
    save(plan, forged)
    refused_offline(apply("plan.json", cwd=tmp_path, url=url), "signature does not match", "Nothing was sent")
    assert watch.requests() == []
    no_state_dirs(tmp_path)


def test_a_genuine_plan_with_only_its_url_edited_sends_nothing(
    emulator: RunningEmulator, watch: RunningEmulator, tmp_path: Path
) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    genuine = make_plan(emulator, tmp_path, "secrets.yaml", "--out", "plan.json")
    listed = len(emulator.requests())
    save(tmp_path / "plan.json", {**genuine, "api_url": watch.url})

    for url in (None, watch.url, emulator.url):
        refused_offline(apply("plan.json", cwd=tmp_path, url=url), "signature does not match")
    assert watch.requests() == []
    assert len(emulator.requests()) == listed
    assert not (tmp_path / ".reconciler").exists()

    # Signed again by a holder of the state key, the URL check refuses it and names both URLs.
    # As someone holding the state key could: only the URL check is left to refuse it.
    edit_plan(tmp_path / "plan.json", lambda payload: payload.update(api_url=watch.url), resign=True)
    line = refused_offline(apply("plan.json", cwd=tmp_path, url=emulator.url), "Nothing was sent")
    assert f"made for {watch.url}" in line and f"configured API URL is {emulator.url}" in line
    line = refused_offline(apply("plan.json", cwd=tmp_path, url=None), "Nothing was sent")
    assert "https://api.intelligence.io.solutions" in line
    assert watch.requests() == []
    assert len(emulator.requests()) == listed
    assert secrets_of(emulator) == []


def test_the_url_is_compared_in_its_canonical_form(emulator: RunningEmulator, tmp_path: Path) -> None:
    write(tmp_path / "secrets.yaml", BASE)
    make_plan(emulator, tmp_path, "secrets.yaml", "--out", "plan.json")
    spelled = emulator.url.replace("http://127.0.0.1", "HTTP://127.0.0.1") + "/api/"
    applied = apply("plan.json", cwd=tmp_path, url=spelled)
    assert applied.returncode == 0, applied.stderr
    assert sorted(s["secret_name"] for s in secrets_of(emulator)) == ["github-token", "linear-key"]


@pytest.mark.parametrize("where", ["absolute", "parent", "parent-inside"])
def test_a_plan_whose_desired_path_leaves_its_directory_touches_nothing(
    where: str, watch: RunningEmulator, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    write(victim / "secrets.yaml", BASE)
    plans = tmp_path / "plans"
    plans.mkdir()
    desired = {
        "absolute": str(victim / "secrets.yaml"),
        "parent": "../victim/secrets.yaml",
        "parent-inside": "sub/../../victim/secrets.yaml",
    }[where]
    save(plans / "plan.json", hand_written(watch.url, desired))
    for cwd in (tmp_path, plans, victim):
        line = refused_offline(
            apply(plans / "plan.json", cwd=cwd, url=watch.url), "leaves the plan's directory"
        )
        assert "nothing was read or sent" in line
    assert watch.requests() == []
    no_state_dirs(tmp_path)


def test_a_plan_whose_desired_file_is_a_link_out_of_its_directory_is_refused(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    write(repo / "config" / "secrets.yaml", BASE)
    make_plan(emulator, repo, "config/secrets.yaml", "--out", "plan.json")
    listed = len(emulator.requests())
    outside = tmp_path / "outside"
    shutil.move(repo / "config", outside)
    (repo / "config").symlink_to(outside)
    refused_offline(apply("plan.json", cwd=repo, url=emulator.url), "resolves outside", "nothing was sent")
    assert len(emulator.requests()) == listed
    no_state_dirs(tmp_path)


def test_a_genuine_plan_reads_its_desired_file_relative_to_itself(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    write(repo / "config" / "secrets.yaml", BASE)
    saved = make_plan(emulator, repo, "config/secrets.yaml", "--out", "plan.json")
    assert saved["desired"]["path"] == "config/secrets.yaml"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(elsewhere / "secrets.yaml", "not: the file the plan names\n")  # a decoy, never read

    applied = apply("../repo/plan.json", cwd=elsewhere, url=emulator.url)
    assert applied.returncode == 0, applied.stderr
    assert "2 succeeded, 0 failed" in applied.stdout
    assert sorted(s["secret_name"] for s in secrets_of(emulator)) == ["github-token", "linear-key"]
    # The state lives beside the desired file the plan names, not in the working directory.
    assert (repo / "config" / ".reconciler" / "state.json").exists()
    assert not (elsewhere / ".reconciler").exists()


def test_a_json_desired_file_mentioning_the_plan_kind_is_a_desired_file(
    emulator: RunningEmulator, tmp_path: Path
) -> None:
    desired = {
        "version": 1,
        "secrets": [
            {
                "secret_name": "reconciler-plan",
                "secret_value": "${GITHUB_TOKEN}",
                "tool_name": "reconciler-plan",
            }
        ],
    }
    (tmp_path / "secrets.json").write_text(json.dumps(desired))
    applied = apply("secrets.json", cwd=tmp_path, url=emulator.url)
    assert applied.returncode == 0, applied.stderr
    assert [s["secret_name"] for s in secrets_of(emulator)] == ["reconciler-plan"]
