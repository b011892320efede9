"""SIGKILL at random points of `apply`: the state file never lies, and the next apply converges without
creating anything twice. 20 kills here; `make soak` runs 100 more."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler import state as state_file
from tests.e2e.test_faults import (
    STATE_KEY,
    History,
    assert_state_truthful,
    by_name,
    cli,
    spawn,
    stored,
    write,
)
from tests.support.emulator import RunningEmulator, start_emulator

pytestmark = pytest.mark.e2e

COUNT = 10


def values(side: str) -> dict[str, str]:
    return {f"V{i}": f"{side if i % 2 == 0 else 'A'}-value-{i:02d}-CANARYkill" for i in range(COUNT)}


def desired_file(side: str) -> str:
    """Two desired states that differ in values, fields, names, creates and deletes, both ways."""
    text = "version: 1\n"
    text += "prune: {match: ['n0*']}\n" if side == "A" else "prune: {match: ['stray-*']}\n"
    text += "secrets:\n"
    for i in range(COUNT):
        arg = "b" if side == "B" and i % 3 == 0 else "a"
        text += f"  - secret_name: s{i:02d}\n    secret_value: ${{V{i}}}\n"
        text += f"    tool_name: t{i}\n    tool_arg: {arg}\n"
    if side == "A":
        text += "".join(f"  - secret_name: stray-{i}\n    secret_value: ${{V1}}\n" for i in range(3))
        text += "  - secret_name: old-name\n    secret_value: ${V3}\n    previous_names: [new-name]\n"
    else:
        text += "".join(f"  - secret_name: n{i:02d}\n    secret_value: ${{V{i}}}\n" for i in range(5))
        text += "  - secret_name: new-name\n    secret_value: ${V3}\n    previous_names: [old-name]\n"
    return text


def expected(side: str) -> dict[str, tuple[str, str | None]]:
    vals = values(side)
    want = {f"s{i:02d}": (vals[f"V{i}"], "b" if side == "B" and i % 3 == 0 else "a") for i in range(COUNT)}
    if side == "A":
        want.update({f"stray-{i}": (vals["V1"], None) for i in range(3)})
        want["old-name"] = (vals["V3"], None)
    else:
        want.update({f"n{i:02d}": (vals[f"V{i}"], None) for i in range(5)})
        want["new-name"] = (vals["V3"], None)
    return want


def lock_holder(state_path: Path) -> int | None:
    try:
        return int(json.loads(state_path.with_name("state.json.lock").read_text())["pid"])
    except (OSError, ValueError, KeyError):
        return None


@pytest.fixture(scope="module")
def slow_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEmulator]:
    # A little latency spreads an apply over enough time for kills to land inside every phase.
    db = tmp_path_factory.mktemp("kill-emu") / "emulator.db"
    with start_emulator("--inspect", "--latency-ms", "15", db_path=db) as running:
        yield running


def kill_and_converge(emu: RunningEmulator, tmp_path: Path, seed: int, kills: int) -> int:
    """`kills` times: apply towards the other desired state, SIGKILL it at a random moment once it
    holds the state lock, check the state, then apply to completion and check again.

    What each secret was ever called and ever held is kept across rounds: a write that landed after
    the last checkpoint is not in the state yet, and a stale name stays until the secret is written
    again. The state may lag like that; it must never claim what never was. Returns the kills that
    landed while apply was still running."""
    rng = random.Random(seed)
    key = f"kill-{seed}"
    state_path = tmp_path / ".reconciler" / "state.json"
    secrets = tuple({*values("A").values(), *values("B").values()})
    write(tmp_path / "secrets.yaml", desired_file("A"))
    first = cli(
        "apply", "secrets.yaml", "--auto-approve", cwd=tmp_path, url=emu.url, key=key, env=values("A")
    )
    assert first.returncode == 0, first.stderr
    side = "A"
    landed = 0
    window = 0.8
    history = History()
    while landed < kills:
        side = "B" if side == "A" else "A"
        write(tmp_path / "secrets.yaml", desired_file(side))
        history.see(stored(emu.db_path, key))
        concurrency = str(rng.choice([1, 2, 4, 8]))
        proc = spawn(
            "apply",
            "secrets.yaml",
            "--auto-approve",
            "--concurrency",
            concurrency,
            cwd=tmp_path,
            url=emu.url,
            key=key,
            env=values(side),
        )
        try:
            deadline = time.monotonic() + 30
            while lock_holder(state_path) != proc.pid and proc.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            time.sleep(rng.uniform(0, window))
            alive = proc.poll() is None
            proc.kill()
        finally:
            _out, err = proc.communicate(timeout=30)
        assert "Traceback" not in err
        if alive:
            landed += 1
        else:
            window /= 2  # it finished first: aim earlier next time

        now = stored(emu.db_path, key)
        by_name(now)  # never two secrets of one name
        # The file is whole (never half-written) and claims nothing that was never true.
        state_file.load(state_path, state_file.StateKey(STATE_KEY.encode(), "test"))
        assert_state_truthful(state_path, now, names=history.names, values=history.values)

        done = cli(
            "apply",
            "secrets.yaml",
            "--auto-approve",
            cwd=tmp_path,
            url=emu.url,
            key=key,
            env=values(side),
            secrets=secrets,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        final = by_name(stored(emu.db_path, key))
        history.see(list(final.values()))
        assert {n: (s.secret_value, s.tool_arg) for n, s in final.items()} == expected(side)
        assert_state_truthful(state_path, list(final.values()), names=history.names)
        assert not list(state_path.parent.glob(".state-*.tmp"))
    return landed


@pytest.mark.parametrize("seed", range(4))
def test_sigkill_at_random_points_never_leaves_a_lying_state(
    seed: int, slow_emulator: RunningEmulator, tmp_path: Path
) -> None:
    assert kill_and_converge(slow_emulator, tmp_path, seed, kills=5) == 5  # 4 x 5 = 20 kills


@pytest.fixture
def soak_selected(request: pytest.FixtureRequest) -> None:
    if "soak" not in str(request.config.getoption("markexpr") or ""):
        pytest.skip("a long soak: run it with `make soak` (pytest -m soak)")


@pytest.mark.soak
def test_soak_sigkill_100_times(soak_selected: None, slow_emulator: RunningEmulator, tmp_path: Path) -> None:
    for seed in range(100, 120):
        root = tmp_path / str(seed)
        root.mkdir()
        assert kill_and_converge(slow_emulator, root, seed, kills=5) == 5  # 20 x 5 = 100 kills
