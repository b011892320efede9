"""Value references: parsing, description, resolution, refusal of literals, and errors without values."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler import values
from reconciler.errors import LiteralValueError, ReconcilerError, ValueRefError
from reconciler.models import SecretValue

CANARY = "canary-Zq8vX2-value"


def resolve(ref: object, tmp_path: Path, env: dict[str, str] | None = None, *, plain: bool = False) -> str:
    secret = values.resolve(ref, base_dir=tmp_path, environ=env or {}, allow_plaintext=plain)
    assert isinstance(secret, SecretValue)
    return secret.reveal()


def error_of(ref: object, tmp_path: Path, env: dict[str, str] | None = None, *, plain: bool = False) -> str:
    with pytest.raises(ValueRefError) as caught:
        values.resolve(ref, base_dir=tmp_path, environ=env or {}, allow_plaintext=plain)
    assert isinstance(caught.value, ReconcilerError)
    assert "\n" not in caught.value.message
    return caught.value.message


# --- ${VAR} templates -------------------------------------------------------------------------


def test_single_reference_resolves(tmp_path: Path) -> None:
    assert resolve("${GITHUB_TOKEN}", tmp_path, {"GITHUB_TOKEN": "ghp_abcdef"}) == "ghp_abcdef"


def test_several_references_and_text_between_them(tmp_path: Path) -> None:
    env = {"USER": "alice", "PASS": "s3cret"}
    assert resolve("${USER}:${PASS}", tmp_path, env) == "alice:s3cret"
    assert resolve("Bearer ${PASS}!", tmp_path, env) == "Bearer s3cret!"


def test_double_dollar_brace_is_a_literal_dollar_brace(tmp_path: Path) -> None:
    env = {"A": "abcd"}
    assert resolve("$${A}-${A}", tmp_path, env) == "${A}-abcd"
    # A lone "$" or "$$" not followed by "{" is plain text.
    assert resolve("$x$$y${A}", tmp_path, env) == "$x$$yabcd"


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("${A}", (values.EnvVar("A"),)),
        ("plain", ("plain",)),
        ("", ()),
        ("x${A}", ("x", values.EnvVar("A"))),
        ("${A}${B}", (values.EnvVar("A"), values.EnvVar("B"))),
        ("${A}}", (values.EnvVar("A"), "}")),
        ("$${A}", ("${A}",)),
    ],
)
def test_templates_parse_into_text_and_references(text: str, parts: tuple[object, ...]) -> None:
    assert values.parse(text) == values.Template(parts)  # type: ignore[arg-type]
    # A reference parsed already is taken as it is.
    assert values.parse(values.parse(text)) == values.Template(parts)  # type: ignore[arg-type]


def test_string_with_only_escapes_is_a_literal(tmp_path: Path) -> None:
    assert isinstance(values.parse("$${NOT_A_REF}"), values.Template)
    assert values.parse("$${NOT_A_REF}").is_literal  # type: ignore[union-attr]
    with pytest.raises(LiteralValueError):
        values.check("$${NOT_A_REF}", allow_plaintext=False)
    assert resolve("$${NOT_A_REF}", tmp_path, plain=True) == "${NOT_A_REF}"


@pytest.mark.parametrize("text", ["${", "abc${", "${}", "${1ABC}", "${A-B}", "${A", "x${ A}"])
def test_malformed_reference_is_refused_without_echoing_the_text(text: str, tmp_path: Path) -> None:
    ref = CANARY + text
    message = error_of(ref, tmp_path, plain=True)
    assert "does not start a reference" in message
    assert f"character {len(CANARY) + text.index('${') + 1}" in message
    assert CANARY not in message


def test_missing_variable_is_named(tmp_path: Path) -> None:
    message = error_of("${GITHUB_ACCESS_TOKEN}", tmp_path, {"OTHER": "x"})
    assert "environment variable GITHUB_ACCESS_TOKEN is not set" in message


def test_all_missing_variables_are_named_once(tmp_path: Path) -> None:
    message = error_of("${B}:${A}:${B}", tmp_path, {})
    assert "environment variables A, B are not set" in message


# --- {from_env} and {from_file} ----------------------------------------------------------------


def test_from_env(tmp_path: Path) -> None:
    assert resolve({"from_env": "SLACK_BOT_TOKEN"}, tmp_path, {"SLACK_BOT_TOKEN": "xoxb-1234"}) == "xoxb-1234"
    assert "environment variable SLACK_BOT_TOKEN is not set" in error_of(
        {"from_env": "SLACK_BOT_TOKEN"}, tmp_path
    )


def test_from_env_value_is_taken_whole_not_as_a_template(tmp_path: Path) -> None:
    assert resolve({"from_env": "V"}, tmp_path, {"V": "a${B}c"}) == "a${B}c"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"lin_api_1234\n", "lin_api_1234"),
        (b"lin_api_1234\r\n", "lin_api_1234"),
        (b"lin_api_1234", "lin_api_1234"),
        (b"lin_api_1234\n\n", "lin_api_1234\n"),
        (b"lin_api_1234\r\n\r\n", "lin_api_1234\r\n"),
        (b"  spaced  \n", "  spaced  "),
    ],
)
def test_from_file_strips_exactly_one_trailing_newline(content: bytes, expected: str, tmp_path: Path) -> None:
    (tmp_path / ".secrets").mkdir()
    (tmp_path / ".secrets" / "linear").write_bytes(content)
    assert resolve({"from_file": ".secrets/linear"}, tmp_path) == expected


def test_from_file_is_relative_to_base_dir_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = tmp_path / "repo"
    base.mkdir()
    (base / "token").write_text("from-base\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "token").write_text("from-cwd\n")
    monkeypatch.chdir(elsewhere)
    assert resolve({"from_file": "token"}, base) == "from-base"


def test_from_file_absolute_path(tmp_path: Path) -> None:
    target = tmp_path / "abs-token"
    target.write_text("absolute-value\n")
    assert resolve({"from_file": str(target)}, tmp_path / "unrelated") == "absolute-value"


def test_from_file_missing_names_the_path(tmp_path: Path) -> None:
    message = error_of({"from_file": ".secrets/nope"}, tmp_path)
    assert "file .secrets/nope not found" in message
    assert str(tmp_path / ".secrets" / "nope") in message


def test_from_file_directory_and_non_utf8_and_oversized(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    assert "is a directory" in error_of({"from_file": "dir"}, tmp_path)
    (tmp_path / "binary").write_bytes(b"\xff\xfe" + CANARY.encode())
    message = error_of({"from_file": "binary"}, tmp_path)
    assert "not UTF-8" in message and CANARY not in message
    (tmp_path / "huge").write_bytes(b"x" * 100_000)
    assert "larger than the API's limit of 1024 characters" in error_of({"from_file": "huge"}, tmp_path)


def test_from_file_other_os_errors_are_named(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("not a directory")
    message = error_of({"from_file": "plain/child"}, tmp_path)
    assert message.startswith("file plain/child cannot be read: Not a directory")


def test_from_file_odd_paths_stay_on_one_line(tmp_path: Path) -> None:
    assert error_of({"from_file": "a\x00b"}, tmp_path) == "file 'a\\x00b' is not a valid path"
    message = error_of({"from_file": "two\nlines"}, tmp_path)
    assert message.startswith("file 'two\\nlines' not found")
    assert values.describe({"from_file": "two\nlines"}) == "from_file: 'two\\nlines'"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_from_file_unreadable(tmp_path: Path) -> None:
    target = tmp_path / "locked"
    target.write_text("value-1234")
    target.chmod(0)
    assert "permission denied" in error_of({"from_file": "locked"}, tmp_path)


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ({"from_env": "A", "from_file": "b"}, "exactly one of from_env or from_file"),
        ({}, "exactly one of from_env or from_file"),
        ({"from_evn": "A"}, "did you mean 'from_env'?"),
        ({"from_env": "not-a-name"}, "from_env must be an environment variable name"),
        ({"from_env": 12}, "from_env must be an environment variable name"),
        ({"from_file": ""}, "from_file must be a non-empty path"),
        ({"from_file": None}, "from_file must be a non-empty path"),
        (12345678, "not a number"),
        (None, "not null"),
        (["${A}"], "not a list"),
        (True, "not a boolean"),
    ],
)
def test_malformed_references(ref: object, expected: str, tmp_path: Path) -> None:
    assert expected in error_of(ref, tmp_path, {"A": "abcd"}, plain=True)


def test_unknown_mapping_key_is_not_echoed(tmp_path: Path) -> None:
    message = error_of({CANARY: "x"}, tmp_path)
    assert "unknown key" in message and CANARY not in message
    message = error_of({"from_env": CANARY}, tmp_path)
    assert CANARY not in message


# --- literals and limits -------------------------------------------------------------------------


def test_literal_is_refused_unless_plaintext_is_allowed(tmp_path: Path) -> None:
    with pytest.raises(LiteralValueError) as caught:
        values.resolve(CANARY, base_dir=tmp_path, environ={}, allow_plaintext=False)
    message = caught.value.message
    assert CANARY not in message
    assert "${NAME}" in message and "{from_env: NAME}" in message and "{from_file: PATH}" in message
    assert "allow_plaintext: true" in message
    assert resolve(CANARY, tmp_path, plain=True) == CANARY


def test_check_refuses_literals_without_resolving(tmp_path: Path) -> None:
    with pytest.raises(LiteralValueError):
        values.check("plain-text-value", allow_plaintext=False)
    # References are accepted by check even though nothing is set.
    assert values.check("${NOT_SET_ANYWHERE}", allow_plaintext=False) == values.Template(
        (values.EnvVar("NOT_SET_ANYWHERE"),)
    )
    assert values.check({"from_file": "missing"}, allow_plaintext=False) == values.FromFile("missing")


@pytest.mark.parametrize("length", [0, 1, 3, 1025, 2000])
def test_length_outside_api_limits_is_reported_without_the_value(length: int, tmp_path: Path) -> None:
    value = ("Zq" * 1100)[:length]
    message = error_of({"from_env": "TOKEN"}, tmp_path, {"TOKEN": value})
    if length == 0:
        assert "empty value" in message
    else:
        assert f"{length} character{'s' if length != 1 else ''} long" in message
    assert "TOKEN" in message
    if value:
        assert value not in message


@pytest.mark.parametrize("length", [4, 1024])
def test_length_at_api_limits_is_accepted(length: int, tmp_path: Path) -> None:
    assert len(resolve("${T}", tmp_path, {"T": "v" * length})) == length


def test_length_is_counted_in_characters_not_bytes(tmp_path: Path) -> None:
    assert resolve("${T}", tmp_path, {"T": "é" * 1024}) == "é" * 1024
    (tmp_path / "wide").write_text("€" * 1024 + "\n", encoding="utf-8")
    assert resolve({"from_file": "wide"}, tmp_path) == "€" * 1024


def test_length_applies_to_the_whole_template(tmp_path: Path) -> None:
    assert resolve("${A}${B}", tmp_path, {"A": "ab", "B": "cd"}) == "abcd"
    assert "3 characters long (from A, B)" in error_of("${A}${B}", tmp_path, {"A": "ab", "B": "c"})


# --- describe ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("${GITHUB_TOKEN}", "${GITHUB_TOKEN}"),
        ("${USER}${PASS}", "${USER}${PASS}"),
        ({"from_env": "X"}, "from_env: X"),
        ({"from_file": ".secrets/linear"}, "from_file: .secrets/linear"),
        ("just-a-literal", "(literal)"),
        ("$${ESCAPED}", "(literal)"),
        ("${", "(invalid reference)"),
        (42, "(invalid reference)"),
    ],
)
def test_describe(ref: object, expected: str) -> None:
    assert values.describe(ref) == expected


def test_describe_elides_literal_text_around_references() -> None:
    described = values.describe(f"{CANARY}${{USER}}:{CANARY}${{PASS}}{CANARY}")
    assert described == "…${USER}…${PASS}…"
    assert CANARY not in described


def test_template_repr_hides_its_literal_text() -> None:
    template = values.parse(f"{CANARY}${{A}}")
    assert CANARY not in repr(template)
    assert CANARY not in str(template)


def test_resolved_value_is_masked() -> None:
    secret = values.resolve("${A}", base_dir=Path(), environ={"A": CANARY}, allow_plaintext=False)
    assert secret.reveal() == CANARY
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r}"):
        assert CANARY not in shown


def test_suggested_env_name() -> None:
    assert values.suggested_env_name("github-token") == "GITHUB_TOKEN"
    assert values.suggested_env_name("linear.api key") == "LINEAR_API_KEY"
    assert values.suggested_env_name("1password") == "_1PASSWORD"
    assert values.suggested_env_name("---") == "SECRET_VALUE"


# --- properties --------------------------------------------------------------------------------

texts = st.text(st.sampled_from("ab$${}_:Z9é\n"), min_size=4, max_size=60)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(literal=texts)
def test_escaping_a_literal_round_trips(literal: str, tmp_path: Path) -> None:
    escaped = literal.replace("${", "$${")
    assert resolve(escaped, tmp_path, plain=True) == literal
    # "$" right before a reference would read as the "$${" escape; that one text cannot be written.
    if not literal.endswith("$"):
        assert resolve(escaped + "${V}", tmp_path, {"V": "tail"}, plain=True) == literal + "tail"


@settings(max_examples=200, deadline=None)
@given(ref=st.one_of(st.text(max_size=40), st.dictionaries(st.text(max_size=10), st.text(max_size=10))))
def test_parse_and_describe_never_fail_unexpectedly(ref: object) -> None:
    try:
        values.parse(ref)
    except ValueRefError as exc:
        assert "\n" not in exc.message
    described = values.describe(ref)
    assert isinstance(described, str) and described


def test_a_value_that_is_not_utf8_is_refused_without_showing_it(tmp_path: Path) -> None:
    undecodable = "abc\udcff\udcfedef"  # how Python carries non-UTF-8 bytes from the environment
    with pytest.raises(ValueRefError) as info:
        values.resolve("${WEIRD}", base_dir=tmp_path, environ={"WEIRD": undecodable}, allow_plaintext=False)
    assert "UTF-8" in str(info.value) and "abc" not in str(info.value)


def test_from_file_refuses_a_fifo_without_waiting_for_a_writer(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    message = error_of({"from_file": "pipe"}, tmp_path)
    assert "file pipe is not a regular file" in message and str(tmp_path / "pipe") in message


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_from_file_refuses_a_device(device: str, tmp_path: Path) -> None:
    assert f"file {device} is not a regular file" in error_of({"from_file": device}, tmp_path)


def test_from_file_follows_a_link_to_a_regular_file(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("linked-value\n")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert resolve({"from_file": "link"}, tmp_path) == "linked-value"
