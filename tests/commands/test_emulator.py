"""`reconciler emulator` flag handling, start-up errors and import cost (the server itself: tests/e2e)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from reconciler.cli import main

FLAGS = [
    "--host",
    "--port",
    "--db",
    "--api-key",
    "--patch-null",
    "--display-head",
    "--display-tail",
    "--list-style",
    "--default-limit",
    "--max-limit",
    "--cap",
    "--quota-bytes",
    "--duplicate-names",
    "--seed",
    "--latency-ms",
    "--fail-rate",
    "--fail-after-rate",
    "--rate-limit",
    "--inspect",
    "--log-requests",
    "--no-log-requests",
    "--quiet",
    "--verbose",
    "--no-color",
]


def run_cli(args: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(args)
    return int(exited.value.code or 0)


def test_help_lists_every_flag(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["emulator", "--help"]) == 0
    out = capsys.readouterr().out
    for flag in FLAGS:
        assert flag in out
    assert ".reconciler/emulator.db" in out


def test_importing_the_command_loads_no_server_libraries() -> None:
    code = (
        "import sys, reconciler.commands.emulator; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'fastapi', 'uvicorn', 'starlette', 'pydantic', 'httpx', 'sqlite3'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "flags",
    [
        ["--port", "70000"],
        ["--port", "-1"],
        ["--fail-rate", "1.5"],
        ["--fail-after-rate", "-0.1"],
        ["--rate-limit", "0"],
        ["--display-head", "-1"],
        ["--display-tail", "x"],
        ["--list-style", "xml"],
        ["--cap", "0"],
        ["--cap", "5", "--list-style", "paged"],
        ["--cap", "5", "--list-style", "cursor"],
        ["--max-limit", "0"],
        ["--default-limit", "0"],
        ["--default-limit", "200"],
        ["--patch-null", "drop"],
        ["--duplicate-names", "maybe"],
        ["--quota-bytes", "0"],
        ["--latency-ms", "-5"],
        ["--seed", "abc"],
        ["--api-key", ""],
        ["--api-key", "   "],
    ],
)
def test_invalid_flag_values_are_usage_errors(flags: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(["emulator", "--db", ":memory:", *flags]) == 1
    err = capsys.readouterr().err
    assert "Usage:" in err or "Error:" in err
    assert "Traceback" not in err


def test_an_unusable_database_path_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["emulator", "--port", "0", "--db", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Error: cannot open the emulator database")
    assert len(err.strip().splitlines()) == 1


def test_a_busy_port_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = run_cli(["emulator", "--port", str(port), "--db", str(tmp_path / "e.db")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"Error: cannot listen on 127.0.0.1:{port}")
    assert len(err.strip().splitlines()) == 1
