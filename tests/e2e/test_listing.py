"""A listing you can trust, end to end: `reconciler` in a subprocess against `reconciler emulator`
processes speaking each list dialect. 27 secrets exist and the file adds 2: exactly 2 POSTs and no
duplicate where the listing can be proven, a refusal with no write where it cannot."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.emulator.app import account_id
from reconciler.emulator.store import Store
from tests.e2e.test_faults import stored
from tests.support import cli
from tests.support.emulator import RunningEmulator, start_emulator

pytestmark = pytest.mark.e2e

KEY = "listing-e2e-key"
VALUE = "ghp_CANARYlisting00000000000001"
FLAG = "--assume-complete-listing"

# Windows of 10 where the style has one, so that 27 secrets take several requests.
PAGEABLE = {
    "offset": ("--list-style", "offset", "--max-limit", "10"),
    # page_size=100 is refused (422) above 10: the client asks again with the server's own size.
    "paged": ("--list-style", "paged", "--max-limit", "10", "--default-limit", "10"),
    "cursor": ("--list-style", "cursor", "--max-limit", "10"),
    "envelope": ("--list-style", "envelope"),
    "array": ("--list-style", "array"),
}


DIALECTS = {
    "offset": "(limit with offset or skip, {data}): 4 windows of up to 10",
    "paged": "(page/page_size with pagination metadata, {data}): read twice",
    "cursor": "(cursor, {data}): followed the server's cursors through 3 answers",
    "envelope": "(one answer whatever is asked, {data}): the server ignored every paging parameter",
    "array": "(one answer whatever is asked, bare array): the server ignored every paging parameter",
}


def populate(db: Path, names: list[str]) -> None:
    store = Store(str(db))
    for name in names:
        store.create(account_id(KEY), secret_name=name, secret_value=VALUE)
    store.close()


def desired(path: Path, names: list[str]) -> Path:
    lines = ["version: 1", "secrets:"]
    for name in names:
        lines += [f"  - secret_name: {name}", "    secret_value: ${TOKEN}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def reconciler(*args: str, emu: RunningEmulator, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {"TOKEN": VALUE, "IOINTELLIGENCE_API_KEY": KEY, "RECONCILER_API_URL": emu.url}
    return cli.run(*args, cwd=cwd, env=env, secrets=[VALUE, "ghp_****0001"])


def writes(emu: RunningEmulator) -> Counter[str]:
    return Counter(r["method"] for r in emu.requests() if r["method"] in ("POST", "PATCH", "DELETE"))


EXISTING = [f"existing-{i:02}" for i in range(27)]
NEW = ["new-one", "new-two"]


@pytest.fixture
def account(tmp_path: Path) -> Iterator[Path]:
    populate(tmp_path / "emulator.db", EXISTING)
    desired(tmp_path / "secrets.yaml", [*EXISTING, *NEW])
    yield tmp_path


@pytest.mark.parametrize("style", sorted(PAGEABLE))
def test_27_existing_and_2_new_give_exactly_2_posts_and_no_duplicate(style: str, account: Path) -> None:
    with start_emulator(*PAGEABLE[style], "--inspect", db_path=account / "emulator.db") as emu:
        result = reconciler("apply", "secrets.yaml", "--auto-approve", "-v", emu=emu, cwd=account)
        assert result.returncode == 0, result.stderr[-2000:]
        assert writes(emu) == Counter({"POST": 2})
        assert "Plan: 2 to create, 0 to update, 0 to rename, 0 to delete." in result.stdout
        # -v says how the account was read and what proved the listing whole.
        listed = [line for line in result.stderr.splitlines() if "listed 27 secrets in" in line]
        assert len(listed) == 1 and DIALECTS[style] in listed[0], result.stderr
    names = [s.secret_name for s in stored(account / "emulator.db", KEY)]
    assert sorted(names) == sorted([*EXISTING, *NEW]) and len(names) == len(set(names))


def test_a_server_that_answers_its_first_20_whatever_is_asked_is_refused_with_no_write(
    account: Path,
) -> None:
    with start_emulator("--cap", "20", "--inspect", db_path=account / "emulator.db") as emu:
        for command in (
            ["plan", "secrets.yaml"],
            ["apply", "secrets.yaml", "--auto-approve"],
            ["apply", "secrets.yaml", "--auto-approve", "--adopt"],
            ["drift", "secrets.yaml"],
            ["import", "imported.yaml"],
        ):
            result = reconciler(*command, emu=emu, cwd=account)
            assert result.returncode == 1, (command, result.stdout, result.stderr)
            error = result.stderr
            assert "the listing is not proven to hold every secret" in error, error
            assert "20 is a round window size" in error and "Seen: 20 secrets in 3 requests" in error
            assert FLAG in error and error.count("\n") == 1
        assert writes(emu) == Counter()
        assert not (account / "imported.yaml").exists()
    assert len(stored(account / "emulator.db", KEY)) == 27


def test_assume_complete_listing_is_the_way_past_a_wrong_refusal_and_a_saved_plan_keeps_it(
    tmp_path: Path,
) -> None:
    # Exactly 20 secrets behind a cap of 20: the whole account, but nothing can prove it.
    names = [f"existing-{i:02}" for i in range(20)]
    populate(tmp_path / "emulator.db", names)
    desired(tmp_path / "secrets.yaml", [*names, *NEW])
    with start_emulator("--cap", "20", "--inspect", db_path=tmp_path / "emulator.db") as emu:
        assert reconciler("plan", "secrets.yaml", emu=emu, cwd=tmp_path).returncode == 1
        shown = reconciler("plan", "secrets.yaml", FLAG, "--format", "json", emu=emu, cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        plan = json.loads(shown.stdout)
        assert plan["summary"]["create"] == 2
        assert plan["listing"]["assumed"] is True and plan["listing"]["secrets"] == 20
        assert any(FLAG in warning for warning in plan["warnings"])

        saved = reconciler("plan", "secrets.yaml", FLAG, "--out", "plan.json", emu=emu, cwd=tmp_path)
        assert saved.returncode == 0, saved.stderr
        recorded = json.loads((tmp_path / "plan.json").read_text())["listing"]
        assert recorded["assume_complete"] is True and recorded["secrets"] == 20
        # Applying the reviewed plan reads the account under the assumption it was made with.
        applied = reconciler("apply", "plan.json", "--auto-approve", emu=emu, cwd=tmp_path)
        assert applied.returncode == 0, applied.stderr
        assert "not proven to hold every secret" in applied.stderr and "going on because" in applied.stderr
        assert writes(emu) == Counter({"POST": 2})


def test_a_saved_plan_made_without_the_flag_never_assumes_it(tmp_path: Path) -> None:
    # 19 secrets behind a cap of 20 are provably all; a 20th, added after the plan, makes it unprovable.
    names = [f"existing-{i:02}" for i in range(19)]
    populate(tmp_path / "emulator.db", names)
    desired(tmp_path / "secrets.yaml", [*names, *NEW])
    with start_emulator("--cap", "20", "--inspect", db_path=tmp_path / "emulator.db") as emu:
        saved = reconciler("plan", "secrets.yaml", "--out", "plan.json", emu=emu, cwd=tmp_path)
        assert saved.returncode == 0, saved.stderr
        assert json.loads((tmp_path / "plan.json").read_text())["listing"]["assume_complete"] is False
        populate(tmp_path / "emulator.db", ["added-by-hand"])
        applied = reconciler("apply", "plan.json", "--auto-approve", emu=emu, cwd=tmp_path)
        assert applied.returncode == 1 and "not proven to hold every secret" in applied.stderr
        assert writes(emu) == Counter()


def test_secrets_the_state_knows_catch_a_cap_that_is_not_a_round_size(tmp_path: Path) -> None:
    names = [f"s{i:02}" for i in range(29)]
    desired(tmp_path / "secrets.yaml", names)
    with start_emulator("--inspect", db_path=tmp_path / "emulator.db") as normal:
        assert reconciler("apply", "secrets.yaml", "--auto-approve", emu=normal, cwd=tmp_path).returncode == 0
    # 27 is not a round window size: only the state shows that s27 and s28 exist but were not listed.
    with start_emulator(
        "--list-style", "envelope", "--cap", "27", db_path=tmp_path / "emulator.db"
    ) as capped:
        result = reconciler("plan", "secrets.yaml", emu=capped, cwd=tmp_path)
    assert result.returncode == 1
    assert "2 secrets that the state knows exist but were not listed" in result.stderr
    assert len(stored(tmp_path / "emulator.db", KEY)) == 29


def test_an_api_url_ending_in_api_works_and_a_wrong_path_says_to_check_it(account: Path) -> None:
    with start_emulator(db_path=account / "emulator.db") as emu:
        env = {"TOKEN": VALUE, "IOINTELLIGENCE_API_KEY": KEY}
        good = cli.run("plan", "secrets.yaml", "--api-url", f"{emu.url}/api/", cwd=account, env=env)
        assert good.returncode == 0, good.stderr
        assert "Plan: 2 to create" in good.stdout
        wrong = cli.run("plan", "secrets.yaml", "--api-url", f"{emu.url}/v2", cwd=account, env=env)
    assert wrong.returncode == 1
    assert "404" in wrong.stderr and "check --api-url" in wrong.stderr
    assert "may have been deleted" not in wrong.stderr
