"""yaml_scalars: what a scalar's text stands for under the YAML 1.2 core schema, and accepted tags."""

from __future__ import annotations

import math

import pytest

from reconciler.yaml_scalars import (
    YAML_TAG,
    collection_tag_problem,
    is_merge,
    plain_scalar,
    tagged_scalar,
    untagged_scalar,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("~", None),
        ("NULL", None),
        ("True", True),
        ("false", False),
        ("yes", "yes"),
        ("on", "on"),
        ("0o17", 15),
        ("0x1F", 31),
        ("-12", -12),
        ("1_000", "1_000"),
        ("1.5e3", 1500.0),
        ("-.inf", -math.inf),
        ("2026-11-30", "2026-11-30"),
        ("9" * 5000, "9" * 5000),
    ],
)
def test_plain_scalars_follow_the_core_schema(text: str, value: object) -> None:
    result = plain_scalar(text)
    assert result == value and type(result) is type(value)
    assert math.isnan(plain_scalar(".nan"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("tag", "text", "value", "problem"),
    [
        ("!", "1", "1", None),
        (YAML_TAG + "str", "true", "true", None),
        (YAML_TAG + "int", "7", 7, None),
        (YAML_TAG + "int", "x", "x", "is not a valid !!int"),
        (YAML_TAG + "float", "2", 2.0, None),
        (YAML_TAG + "null", "", None, None),
        (YAML_TAG + "binary", "AA==", "AA==", "has the tag !!binary, which is not supported; remove it"),
        ("!" + "x" * 60, "v", "v", "has the tag !" + "x" * 36 + "..., which is not supported; remove it"),
    ],
)
def test_tagged_scalars_have_a_value_or_a_problem(
    tag: str, text: str, value: object, problem: str | None
) -> None:
    result = tagged_scalar(tag, text)
    assert result == (value, problem) and type(result[0]) is type(value)


def test_collections_take_their_own_tag_or_none() -> None:
    assert collection_tag_problem("!", "map") is None
    assert collection_tag_problem(YAML_TAG + "seq", "seq") is None
    assert (
        collection_tag_problem(YAML_TAG + "seq", "map")
        == "has the tag !!seq, which is not supported; remove it"
    )


@pytest.mark.parametrize(
    ("text", "style", "value"),
    [("12", None, 12), ("12", "'", "12"), ("", None, None), ("", '"', ""), ("~", "|", "~"), ("x", None, "x")],
)
def test_an_untagged_scalar_is_read_as_plain_only_when_written_plain(
    text: str, style: str | None, value: object
) -> None:
    assert untagged_scalar(text, style) == value and type(untagged_scalar(text, style)) is type(value)


def test_only_a_plain_double_angle_is_the_merge_key() -> None:
    assert is_merge("<<", None) and is_merge("<<", "")
    assert not is_merge("<<", "'") and not is_merge("<", None) and not is_merge("<<x", None)
