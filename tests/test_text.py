"""The wording helpers: quoting, one-line text, counts and new names."""

from __future__ import annotations

import pytest

from reconciler.text import plural, quoted, shown, unique


def test_a_printable_name_is_quoted_as_written_and_any_other_escaped() -> None:
    assert quoted("github-token") == "'github-token'"
    assert quoted("it's") == "'it's'"
    assert quoted("a\nb") == repr("a\nb")


@pytest.mark.parametrize("text", ["a\nb", "\x1b[31mred", "tab\there", "line\u2028break", "\u202eevil"])
def test_text_that_could_break_or_forge_a_line_is_escaped_and_quoted(text: str) -> None:
    out = shown(text)
    assert out.isprintable() and out == repr(text)


def test_printable_text_is_shown_as_written_and_cut_past_the_limit() -> None:
    assert shown("tool_arg") == "tool_arg"
    assert shown("é" * 5, 5) == "é" * 5
    assert shown("n" * 70, 60) == "n" * 60 + "…"
    assert shown("a\x00" * 40, 10) == repr("a\x00" * 40)[:10] + "…"


def test_plural_counts() -> None:
    assert [plural(n, "secret") for n in (0, 1, 2)] == ["0 secrets", "1 secret", "2 secrets"]


def test_unique_takes_the_first_free_numbered_name() -> None:
    assert unique("GH", set(), "_") == "GH"
    assert unique("GH", {"GH", "GH_2"}, "_") == "GH_3"
    assert unique("gh-token", {"gh-token"}, "-") == "gh-token-2"
