"""Bad input on the desired side: random and mutated desired-state files, and environment values of
every length and alphabet, through loading and through a whole plan and apply (embedded emulator)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import desired, engine
from reconciler import settings as settings_module
from reconciler import state as state_file
from reconciler.emulator.app import account_id
from reconciler.errors import DesiredFileError
from reconciler.models import SecretValue, Status
from reconciler.plan import PlanOptions

FIXTURES = Path(__file__).parent / "fixtures" / "desired"
VALID = (FIXTURES / "valid.yaml").read_text(encoding="utf-8")
ENV = {
    "GITHUB_ACCESS_TOKEN": "ghp_0123456789abcdefghij",
    "SLACK_BOT_TOKEN": "xoxb-0123456789",
    "V": "value-0123",
}
API_KEY = "desired-safety-key"
STATE_KEY = "desired-safety-state-key"
# What YAML gives meaning to: the mutations below splice these in to break a file in every way.
YAML_SYNTAX = ":-?,[]{}#&*!|>'\"%@`$\\ \t\n"


def load_text(text: str, environ: dict[str, str] | None = None, name: str = "secrets.yaml") -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        (Path(tmp) / ".secrets").mkdir()
        (Path(tmp) / ".secrets" / "linear").write_text("lin_api_0123456789\n")
        return desired.load(path, environ=ENV if environ is None else environ)


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """The valid fixture with characters, lines and indentation broken at random."""
    lines = VALID.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        how = draw(st.sampled_from(["splice", "delete", "duplicate", "indent", "dedent", "swap"]))
        line = lines[at]
        if how == "splice":
            pos = draw(st.integers(0, len(line)))
            junk = draw(st.text(YAML_SYNTAX + "az09_", min_size=1, max_size=4))
            lines[at] = line[:pos] + junk + line[pos + draw(st.integers(0, 3)) :]
        elif how == "delete":
            del lines[at]
        elif how == "duplicate":
            lines.insert(at, line)
        elif how == "indent":
            lines[at] = "  " + line
        elif how == "dedent":
            lines[at] = line[2:]
        else:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
    return "".join(lines)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)


@st.composite
def shaped(draw: st.DrawFn) -> str:
    """Documents with the right top-level keys and anything at all under them."""
    document: dict[str, Any] = {"version": draw(st.sampled_from([1, 1, 2, "1", None]))}
    for key in draw(st.lists(st.sampled_from(["secrets", "prune", "allow_plaintext", "workflows", "x"]))):
        document[key] = draw(JSONISH)
    if draw(st.booleans()):
        entry = {"secret_name": draw(JSONISH), "secret_value": draw(JSONISH | st.just("${V}"))}
        for key in draw(st.lists(st.sampled_from(["tool_name", "protect", "previous_names", "secret_id"]))):
            entry[key] = draw(JSONISH)
        document["secrets"] = [entry]
    return json.dumps(document)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(mutated(), shaped(), st.text(max_size=300)))
def test_any_desired_file_loads_or_is_one_clear_located_error(text: str) -> None:
    try:
        state = load_text(text)
    except DesiredFileError as exc:
        assert exc.problems, "an error with no problem in it"
        for problem in exc.problems:
            assert problem.line >= 1 and problem.col >= 1 and problem.message
        for secret in ENV.values():
            assert secret not in str(exc)
        return
    for secret in state.secrets:
        assert isinstance(secret.secret_name, str) and secret.value is not None


CHARS = st.characters(exclude_categories=["Cs"])
EDGE_LENGTHS = st.sampled_from([0, 1, 3, 4, 5, 1023, 1024, 1025, 2048])
TEMPLATES = {
    "whole": ("${V}", lambda v: v),
    "from_env": ("{from_env: V}", lambda v: v),
    "embedded": ('"pre-${V}-post"', lambda v: f"pre-{v}-post"),
    "twice": ('"${V}${V}"', lambda v: v + v),
}


@st.composite
def env_values(draw: st.DrawFn) -> str:
    """Values of every length and alphabet: unicode, newlines, $, quotes, braces, NUL, 1024 and 1025."""
    single = st.sampled_from(["\n", "\r", "$", "'", '"', "\\", "{", "}", "\x00", "\t", "#", "*"])
    if draw(st.booleans()):
        length = draw(EDGE_LENGTHS)
        return draw(st.text(CHARS | single, min_size=length, max_size=length))
    pieces = st.sampled_from(["\r\n", "${", "$${V}", "${V}", "****"]) | single | st.text(CHARS, max_size=20)
    return "".join(draw(st.lists(pieces, max_size=40)))


@settings(max_examples=300, deadline=None)
@given(value=env_values(), form=st.sampled_from(sorted(TEMPLATES)))
def test_environment_values_resolve_exactly_or_fail_with_the_length_never_the_value(
    value: str, form: str
) -> None:
    template, expected_of = TEMPLATES[form]
    expected = expected_of(value)
    text = f"version: 1\nsecrets:\n  - secret_name: s\n    secret_value: {template}\n"
    try:
        state = load_text(text, {"V": value})
    except DesiredFileError as exc:
        assert not 4 <= len(expected) <= 1024, f"a valid value of {len(expected)} characters was refused"
        assert f"{len(expected)} character" in str(exc) or "empty value" in str(exc)
        if len(value) >= 6:
            assert value not in str(exc)
        return
    assert 4 <= len(expected) <= 1024
    (secret,) = state.secrets
    assert secret.value is not None and secret.value.reveal() == expected  # nothing re-interpolated


def apply_in_process(root: Path, environ: dict[str, str]) -> tuple[Any, Any]:
    """plan and apply through the engine against the embedded emulator (`--api-url local`)."""
    resolved = settings_module.resolve(
        desired_path=root / "secrets.yaml",
        api_url="local",
        environ={"IOINTELLIGENCE_API_KEY": API_KEY, "RECONCILER_STATE_KEY": STATE_KEY, **environ},
    )

    async def go() -> tuple[Any, Any]:
        result = await engine.make_plan(resolved, root / "secrets.yaml", PlanOptions())
        report = await engine.run_apply(resolved, result)
        again = await engine.make_plan(resolved, root / "secrets.yaml", PlanOptions())
        return report, again

    return asyncio.run(go())


def stored_values(root: Path) -> dict[str, str]:
    db = root / ".reconciler" / "local.db"
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT secret_name, secret_value FROM secrets WHERE user_id = ?", (account_id(API_KEY),)
        ).fetchall()
    return dict(rows)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(value=env_values().filter(lambda v: 4 <= len(v) <= 1024))
def test_any_valid_value_is_written_exactly_fingerprinted_and_then_in_sync(value: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "secrets.yaml").write_text(
            "version: 1\nsecrets:\n  - secret_name: s\n    secret_value: ${V}\n"
        )
        report, again = apply_in_process(root, {"V": value})
        assert [o.status for o in report.outcomes] == [Status.OK], [o.message for o in report.outcomes]
        assert stored_values(root) == {"s": value}
        key = state_file.StateKey(STATE_KEY.encode(), "test")
        (entry,) = state_file.load(root / ".reconciler" / "state.json", key).entries.values()
        assert entry.fingerprint == key.fingerprint(SecretValue(value))
        assert not again.plan.has_changes
        text = (root / ".reconciler" / "state.json").read_text()
        if len(value) >= 8:
            assert value not in text


def test_a_value_that_is_not_utf8_is_refused_by_validate_and_apply_and_nothing_is_written(
    tmp_path: Path,
) -> None:
    # os.environ carries bytes that are not UTF-8 as surrogates: such a value is refused at load.
    (tmp_path / "secrets.yaml").write_text(
        "version: 1\nsecrets:\n  - secret_name: s\n    secret_value: ${V}\n"
    )
    with pytest.raises(DesiredFileError, match="UTF-8"):
        desired.load(tmp_path / "secrets.yaml", environ={"V": "abc\udcffdef"})
    with pytest.raises(DesiredFileError, match="UTF-8") as info:
        apply_in_process(tmp_path, {"V": "abc\udcffdef"})
    assert "abc\udcffdef" not in str(info.value)
    assert stored_values(tmp_path) == {}


NASTY_FILES = {
    "empty": "",
    "binary": "\x00\x01\x02\xff",
    "tab-indented": "version: 1\nsecrets:\n\t- secret_name: a\n",
    "alias-bomb": "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ),
    "deep": "version: 1\nsecrets: " + "[" * 5000 + "]" * 5000 + "\n",
    "huge-name": "version: 1\nsecrets:\n  - secret_name: " + "n" * 100_000 + "\n    secret_value: ${V}\n",
    "bom-and-crlf": "\ufeffversion: 1\r\nsecrets:\r\n  - secret_name: a\r\n    secret_value: ${V}\r\n",
}


@pytest.mark.parametrize("name", sorted(NASTY_FILES))
def test_validate_and_plan_on_nasty_files_exit_0_or_1_with_no_traceback(name: str, tmp_path: Path) -> None:
    path = tmp_path / "secrets.yaml"
    path.write_bytes(NASTY_FILES[name].encode("utf-8", errors="surrogateescape"))
    for command in (["validate", "secrets.yaml"], ["plan", "secrets.yaml", "--api-url", "local"]):
        result = subprocess.run(
            [sys.executable, "-m", "reconciler", *command],
            cwd=tmp_path,
            env={"V": "value-0123", "PATH": "/usr/bin:/bin", "IOINTELLIGENCE_API_KEY": API_KEY},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode in (0, 1), result.stderr
        assert "Traceback" not in result.stderr and "Internal error" not in result.stderr
        if result.returncode == 1:
            assert result.stderr.strip(), "an error exit without a message"
