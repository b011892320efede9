"""`max_age` in the desired-state file: read into hours, in the schema, refused with its place when wrong."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from reconciler import desired
from reconciler.desired.schema import json_schema
from reconciler.desired_policy import MAX_AGE_PATTERN, max_age_hours
from reconciler.errors import DesiredFileError


def load(tmp_path: Path, text: str) -> desired.DesiredState:
    path = tmp_path / "secrets.yaml"
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return desired.load(path, environ={"A": "value-aaaa-0001", "B": "value-bbbb-0002"})


def test_max_age_is_a_default_and_a_per_secret_policy_in_hours(tmp_path: Path) -> None:
    state = load(
        tmp_path,
        """
        version: 1
        max_age: 90d
        secrets:
          - secret_name: a
            secret_value: ${A}
            max_age: 2w
          - secret_name: b
            secret_value: ${B}
        """,
    )
    assert state.max_age_hours == 90 * 24
    assert [s.max_age_hours for s in state.secrets] == [2 * 168, None]


@pytest.mark.parametrize(("text", "hours"), [("12h", 12), ("1d", 24), ("4w", 672), ("99999h", 99999)])
def test_units(text: str, hours: int) -> None:
    assert max_age_hours(text) == hours


@pytest.mark.parametrize("bad", ["30", "0d", "30m", "7 d", '"30d\\n"', "1.5d", "100000h", "30D"])
def test_a_malformed_max_age_is_refused_with_its_place(tmp_path: Path, bad: str) -> None:
    with pytest.raises(DesiredFileError) as info:
        load(
            tmp_path,
            f"version: 1\nsecrets:\n  - secret_name: a\n    secret_value: ${{A}}\n    max_age: {bad}\n",
        )
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (5, "secrets[0].max_age")
    assert "h, d or w" in problem.message or "must be text" in problem.message


def test_a_top_level_max_age_is_checked_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(DesiredFileError) as info:
        load(tmp_path, 'version: 1\nmax_age: "1d\\n"\n')
    (problem,) = info.value.problems
    assert (problem.line, problem.key) == (2, "max_age") and "h, d or w" in problem.message


def test_the_schema_holds_the_loaders_pattern() -> None:
    schema = json_schema()
    assert schema["$defs"]["max_age"]["pattern"] == MAX_AGE_PATTERN
    assert schema["properties"]["max_age"]["$ref"] == "#/$defs/max_age"
    assert schema["$defs"]["secret"]["properties"]["max_age"]["$ref"] == "#/$defs/max_age"
