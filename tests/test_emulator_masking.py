"""The `display` rule, read the way a client reads it: prefix before the first `*`, suffix after the last."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.emulator.masking import MASK, MASK_CHAR, mask, visible_counts


def parse(display: str) -> tuple[str, str]:
    """What a client reads from display: (visible prefix, visible suffix)."""
    if MASK_CHAR not in display:
        return display, ""
    return display[: display.index(MASK_CHAR)], display[display.rindex(MASK_CHAR) + 1 :]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abcd", "abcd"),
        ("abcde", "a****e"),
        ("abcdefgh", "ab****gh"),
        ("abcdefghijk", "abc****jk"),
        ("abcdefghijklmnop", "abcd****mnop"),
        ("ghp_0123456789abcdefghij", "ghp_****ghij"),
    ],
)
def test_default_rule_shows_four_each_end_and_never_more_than_half(value: str, expected: str) -> None:
    assert mask(value) == expected


@pytest.mark.parametrize(
    ("head", "tail", "value", "expected"),
    [
        (2, 3, "abcdefghijklmnop", "ab****nop"),
        (0, 4, "abcdefghijklmnop", "****mnop"),
        (4, 0, "abcdefghijklmnop", "abcd****"),
        (0, 0, "abcdefghijklmnop", "****"),
        (8, 0, "abcdefghij", "abcde****"),
        (0, 8, "abcdefghij", "****fghij"),
    ],
)
def test_visible_counts_follow_the_flags(head: int, tail: int, value: str, expected: str) -> None:
    assert mask(value, head, tail) == expected


def test_mask_width_does_not_depend_on_the_value_length() -> None:
    assert len(mask("a" * 20)) == len(mask("a" * 1000)) == 4 + len(MASK) + 4


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(min_size=1, max_size=200),
    head=st.integers(min_value=0, max_value=12),
    tail=st.integers(min_value=0, max_value=12),
)
def test_display_reveals_at_most_half_and_parses_back_to_a_true_prefix_and_suffix(
    value: str, head: int, tail: int
) -> None:
    display = mask(value, head, tail)
    prefix, suffix = parse(display)
    assert value.startswith(prefix)
    assert value.endswith(suffix)
    if len(value) <= 4:
        assert display == value
        return
    shown_head, shown_tail = visible_counts(len(value), head, tail)
    assert shown_head <= head and shown_tail <= tail
    assert shown_head + shown_tail <= len(value) // 2
    assert display == value[:shown_head] + MASK + (value[-shown_tail:] if shown_tail else "")
    # The budget is used fully whenever the flags ask for at least that much.
    assert shown_head + shown_tail == min(head + tail, len(value) // 2)
