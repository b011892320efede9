"""`reconciler validate` end to end in a subprocess: exit codes, all problems, and no value in any output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "desired"
CANARY = "canary-Pw7r4-do-not-print"


def validate(
    *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "-m", "reconciler", "validate", *map(str, args)],
        capture_output=True,
        text=True,
        env={**base, **(env or {})},
        cwd=cwd,
        timeout=60,
        check=False,
    )


def test_valid_file(tmp_path: Path) -> None:
    secrets = tmp_path / ".secrets"
    secrets.mkdir()
    (secrets / "linear").write_text(f"{CANARY}-file\n")
    path = tmp_path / "secrets.yaml"
    path.write_text((FIXTURES / "valid.yaml").read_text())
    result = validate(
        path, env={"GITHUB_ACCESS_TOKEN": f"{CANARY}-env", "SLACK_BOT_TOKEN": f"{CANARY}-slack"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{path}: valid, 3 secrets"
    assert result.stderr == ""
    assert CANARY not in result.stdout + result.stderr


def test_valid_file_offline_needs_no_values() -> None:
    result = validate(FIXTURES / "valid.yaml", "--offline")
    assert result.returncode == 0, result.stderr
    assert "valid, 3 secrets (offline: references not resolved)" in result.stdout


def test_several_problems_are_all_reported_with_a_count() -> None:
    path = FIXTURES / "many-problems.yaml"
    result = validate(path, env={"SHORT": "abc"})
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    expected = (FIXTURES / "many-problems.expected").read_text().splitlines()
    assert lines == [line.replace("FILE", str(path)).replace("DIR", str(path.parent)) for line in expected]
    assert lines[-1] == "12 problems found"
    assert "Traceback" not in result.stderr


def test_offline_reports_only_what_needs_no_values() -> None:
    result = validate(FIXTURES / "many-problems.yaml", "--offline")
    assert result.returncode == 1
    assert "is not set" not in result.stderr and "not found" not in result.stderr
    assert "a literal value must not be committed" in result.stderr
    # The 12 of a full run less the two unset variables, the missing file and the short value.
    assert result.stderr.splitlines()[-1] == "8 problems found"


def test_canary_values_never_appear(tmp_path: Path) -> None:
    (tmp_path / "short").write_text("ab\n")
    path = tmp_path / "secrets.yaml"
    path.write_text(
        "version: 1\n"
        "secrets:\n"
        f"  - {{secret_name: literal, secret_value: {CANARY}-literal}}\n"
        "  - {secret_name: env-too-long, secret_value: '${LONG}'}\n"
        "  - {secret_name: template, secret_value: 'x${SHORT}'}\n"
        f"  - {{secret_name: bad-ref, secret_value: '{CANARY}${{oops'}}\n"
        f"  - {{secret_name: bad-env, secret_value: {{from_env: {CANARY}}}}}\n"
        "  - {secret_name: file, secret_value: {from_file: short}}\n"
        f"  - {{secret_name: wrong-key, secret_value: {{{CANARY}: 1}}}}\n"
        f"  - {{secret_name: list, secret_value: [{CANARY}]}}\n"
    )
    env = {"LONG": CANARY * 60, "SHORT": "ab"}
    result = validate(path, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1] == "8 problems found"
    assert CANARY not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr


def test_missing_file_and_yaml_syntax_error(tmp_path: Path) -> None:
    result = validate(tmp_path / "nope.yaml")
    assert result.returncode == 1
    assert result.stderr.startswith(f"{tmp_path / 'nope.yaml'}:1:1: (file): cannot be read")
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: 1\nsecrets: [\n")
    result = validate(broken)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{broken}:3:1: (yaml): invalid YAML: did not find expected node content; while parsing a flow node",
        "1 problem found",
    ]
    assert "Traceback" not in result.stderr


def test_an_empty_file_with_prune_fails_validate_as_plan_would(tmp_path: Path) -> None:
    """A broken merge that empties `secrets:` is caught by the pre-commit hook, not by the next apply."""
    path = tmp_path / "secrets.yaml"
    path.write_text("version: 1\nprune: true\nsecrets: []\n")
    result = validate(path, "--offline")
    assert result.returncode == 1
    assert result.stderr.startswith(f"Error: {path}: prune is on and the file lists no secrets")
    assert "--allow-empty" in result.stderr
    assert result.stdout == ""
    allowed = validate(path, "--offline", "--allow-empty")
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.strip() == f"{path}: valid, 0 secrets (offline: references not resolved)"
    path.write_text("version: 1\nsecrets: []\n")
    assert validate(path, "--offline").returncode == 0  # without prune, an empty file deletes nothing


def test_quiet_keeps_errors_and_drops_warnings(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "a.yaml").write_text("name: a\nsteps: []\n")
    path = tmp_path / "secrets.yaml"
    path.write_text(
        "version: 1\nworkflows: [flows/*.yaml]\nsecrets:\n"
        "  - secret_name: gh\n    secret_value: ${GH}\n    tool_name: 'agno__github__*'\n"
    )
    loud = validate(path, "--offline")
    assert loud.returncode == 0, loud.stderr
    assert ": warning: " in loud.stderr
    quiet = validate(path, "--offline", "-q")
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    assert quiet.stdout == loud.stdout
    missing = validate(tmp_path / "missing.yaml", "-q")
    assert missing.returncode == 1 and "missing.yaml" in missing.stderr
