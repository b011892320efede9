"""Bad input on the command line, end to end: FIFOs and devices where files belong, API keys, URLs and
numbers that cannot be used, plans that cannot be saved or read. Each is a one-line error and exit 1:
never a hang, a traceback or an internal error (exit 3)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support import cli
from tests.support.emulator import RunningEmulator

pytestmark = pytest.mark.e2e

KEY = "bad-input-key-0123"
VALUE = "bad-input-CANARY-value"
DESIRED = "version: 1\nsecrets:\n  - secret_name: token\n    secret_value: ${TOKEN}\n"
# Far below cli.run's own limit: a read that blocks shows up as a failure here, not as a stuck run.
HANG = 60


def reconciler(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, url: str = "local"
) -> subprocess.CompletedProcess[str]:
    extra = {"IOINTELLIGENCE_API_KEY": KEY, "RECONCILER_API_URL": url, "TOKEN": VALUE, **(env or {})}
    return cli.run(*args, cwd=cwd, env=extra, secrets=[VALUE, KEY], timeout=HANG)


def refused(result: subprocess.CompletedProcess[str], *words: str) -> str:
    """The one line of a refusal with exit 1 that says each of `words`."""
    assert result.returncode == 1, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line and not line.endswith("problem found")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", ["validate", "plan", "apply"])
def test_a_desired_file_that_is_a_fifo_is_refused_at_once(command: str, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "secrets.yaml")  # no writer ever comes: opening it would wait forever
    refused(reconciler(command, "secrets.yaml", cwd=tmp_path), "secrets.yaml", "not a regular file")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/stdin"])
def test_a_desired_file_that_is_a_device_is_refused(device: str, tmp_path: Path) -> None:
    refused(reconciler("validate", device, cwd=tmp_path), "not a regular file")


def test_from_file_refuses_a_fifo_a_device_and_an_open_stdin(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    for target in ("pipe", "/dev/zero", "/dev/stdin"):
        (tmp_path / "secrets.yaml").write_text(
            f"version: 1\nsecrets:\n  - secret_name: token\n    secret_value: {{from_file: {target}}}\n"
        )
        # stdin is a pipe whose writer stays open, as in a CI step that pipes nothing in.
        read_end, write_end = os.pipe()
        try:
            result = subprocess.run(
                cli.argv("validate", "secrets.yaml"),
                cwd=tmp_path,
                env=cli.clean_env(),
                stdin=read_end,
                capture_output=True,
                text=True,
                timeout=HANG,
                check=False,
            )
        finally:
            os.close(read_end)
            os.close(write_end)
        assert "Traceback" not in result.stderr
        refused(result, f"file {target} is not a regular file", "from_file")


def test_from_file_reads_no_more_than_a_value_can_hold(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"v" * 50_000_000)
    (tmp_path / "secrets.yaml").write_text(
        "version: 1\nsecrets:\n  - secret_name: token\n    secret_value: {from_file: big}\n"
    )
    refused(reconciler("validate", "secrets.yaml", cwd=tmp_path), "file big is larger than", "1024")


@pytest.mark.parametrize(
    ("key", "variable"),
    [
        ("kéy-CANARY", "IOINTELLIGENCE_API_KEY"),
        ("k\udcffy-CANARY", "IO_API_KEY"),
        ("CANARY-k3y\n", "IO_API_KEY"),
    ],
    ids=["non-ascii", "not-utf-8", "newline"],
)
def test_an_api_key_that_cannot_be_sent_is_refused_without_being_shown(
    key: str, variable: str, tmp_path: Path
) -> None:
    (tmp_path / "secrets.yaml").write_text(DESIRED)
    env = {"IOINTELLIGENCE_API_KEY": "", variable: key}
    for command in (("plan", "secrets.yaml"), ("apply", "secrets.yaml", "--auto-approve"), ("import",)):
        line = refused(reconciler(*command, cwd=tmp_path, env=env), variable, "HTTP header")
        assert "CANARY" not in line
    assert not (tmp_path / ".reconciler").exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        (("--api-url", "http://localhost:99999"), ("invalid port",)),
        (("--api-url", "http://localhost:0x50"), ("invalid port",)),
        (("--api-url", "ftp://example.com"), ("not an http(s) URL",)),
        (("--api-url", "http://example.com"), ("plain http",)),
        (("--timeout", "nan"), ("--timeout",)),
        (("--timeout", "inf"), ("--timeout",)),
        (("--timeout", "-1"), ("--timeout",)),
        (("--timeout", "1e308"), ("--timeout",)),
    ],
)
def test_unusable_urls_and_timeouts_are_refused_before_any_work(
    flags: tuple[str, ...], words: tuple[str, ...], tmp_path: Path
) -> None:
    (tmp_path / "secrets.yaml").write_text(DESIRED)
    for command in ("plan", "drift"):
        refused(reconciler(command, "secrets.yaml", *flags, cwd=tmp_path), *words)
    assert not (tmp_path / ".reconciler").exists()


def test_credentials_in_the_api_url_are_not_printed(emulator: RunningEmulator, tmp_path: Path) -> None:
    (tmp_path / "secrets.yaml").write_text(DESIRED)
    closed = "http://alice:pa55word@127.0.0.1:9"
    line = refused(reconciler("plan", "secrets.yaml", cwd=tmp_path, url=closed), "cannot reach")
    assert "pa55word" not in line and "alice" not in line
    # And the credentials are never sent either: the key is, in its own header.
    with_user = emulator.url.replace("http://", "http://alice:pa55word@")
    assert reconciler("plan", "secrets.yaml", cwd=tmp_path, url=with_user).returncode == 0


def test_plan_out_where_no_plan_can_be_written_is_refused(emulator: RunningEmulator, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "secrets.yaml").write_text(DESIRED)
    (tmp_path / "other").mkdir()
    url = emulator.url

    line = refused(
        reconciler("plan", "secrets.yaml", "--out", "../other/plan.json", cwd=repo, url=url),
        "--out ../other/plan.json",
        "directory of secrets.yaml or above it",
    )
    assert "never from outside" in line
    refused(reconciler("plan", "secrets.yaml", "--out", "sub/plan.json", cwd=repo, url=url), "or above it")
    refused(
        reconciler("plan", "secrets.yaml", "--out", "secrets.yaml", cwd=repo, url=url), "desired-state file"
    )
    assert emulator.requests() == []  # refused before the account was listed
    assert (repo / "secrets.yaml").read_text() == DESIRED

    long_name = "p" * 300 + ".json"
    result = reconciler("plan", "secrets.yaml", "--out", long_name, cwd=repo, url=url)
    assert result.stdout.startswith("+ create token")  # the plan is still shown
    refused(result, "cannot write the plan", "nothing was saved")
    assert [p.name for p in repo.iterdir()] == ["secrets.yaml"]


def test_a_plan_file_nested_beyond_any_reason_is_one_error(tmp_path: Path) -> None:
    depth = 100_000
    (tmp_path / "plan.json").write_text(
        '{"kind": "reconciler-plan", "changes": ' + "[" * depth + "]" * depth + "}"
    )
    result = reconciler("apply", "plan.json", "--auto-approve", cwd=tmp_path)
    refused(result, "plan.json", "nested")


@pytest.mark.parametrize("target", ["a-directory", "missing/parent/summary.md", "/proc/version", "a-fifo"])
def test_a_job_summary_that_cannot_be_written_is_a_warning_after_the_report(
    target: str, emulator: RunningEmulator, tmp_path: Path
) -> None:
    (tmp_path / "secrets.yaml").write_text(DESIRED)
    (tmp_path / "a-directory").mkdir()
    os.mkfifo(tmp_path / "a-fifo")  # no reader: opening it for writing would wait
    env = {"GITHUB_STEP_SUMMARY": target if target.startswith("/") else str(tmp_path / target)}

    planned = reconciler(
        "plan", "secrets.yaml", "--out", "plan.json", cwd=tmp_path, env=env, url=emulator.url
    )
    assert planned.returncode == 0, planned.stderr
    assert "+ create token" in planned.stdout and (tmp_path / "plan.json").exists()
    applied = reconciler("apply", "plan.json", "--auto-approve", cwd=tmp_path, env=env, url=emulator.url)
    assert applied.returncode == 0, applied.stderr
    assert "✓ created token" in applied.stdout and "1 succeeded, 0 failed" in applied.stdout
    drifted = reconciler("drift", "secrets.yaml", cwd=tmp_path, env=env, url=emulator.url)
    assert drifted.returncode == 0, drifted.stderr
    for result in (planned, applied, drifted):
        warnings = [
            line for line in result.stderr.splitlines() if line.startswith("Warning: GITHUB_STEP_SUMMARY")
        ]
        assert len(warnings) == 1 and "cannot write the job summary" in warnings[0], result.stderr
    assert not (tmp_path / "missing").exists()
