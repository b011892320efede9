"""prune globs that limit nothing are said aloud, as `prune: true` is, in every format."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_plan_apply import emu, reconciler, write
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.e2e
__all__ = ["emu"]  # the fixture, shared with test_plan_apply


@pytest.mark.parametrize(
    ("globs", "words"),
    [('["*"]', "as prune: true does"), ('["ci-*", "old-*"]', "does not list (2)"), ("[]", "no match globs")],
)
def test_prune_that_limits_nothing_warns(
    globs: str, words: str, emu: RunningEmulator, tmp_path: Path
) -> None:
    for name in ("ci-runner", "old-token"):
        httpx.post(
            f"{emu.url}/api/v1/secrets/",
            json={"secret_name": name, "secret_value": "by-hand-value"},
            headers={"Authorization": "Bearer e2e-key"},
        ).raise_for_status()
    prune = "true" if globs == "[]" else f"{{match: {globs}}}"
    write(
        tmp_path / "secrets.yaml",
        f"version: 1\nprune: {prune}\nsecrets:\n  - secret_name: gh\n    secret_value: ${{GITHUB_TOKEN}}\n",
    )

    text = reconciler("plan", "secrets.yaml", "--max-deletes", "2", url=emu.url, cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "Warnings:" in text.stdout and words in text.stdout
    shown = reconciler(
        "plan", "secrets.yaml", "--max-deletes", "2", "--format", "json", url=emu.url, cwd=tmp_path
    )
    (warning,) = json.loads(shown.stdout)["warnings"]
    assert words in warning and "2 " in warning
