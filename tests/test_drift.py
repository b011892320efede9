"""The write-only value verdicts, each from literal inputs."""

from __future__ import annotations

import pytest

from reconciler.drift import display_consistent, value_verdict
from reconciler.models import RemoteSecret, SecretValue, StateEntry, Verdict

WATERMARK = "2026-01-01T00:00:00.000001Z"


@pytest.mark.parametrize(
    ("value", "display", "expected"),
    [
        ("ghp_abcdefgh1234", "ghp_****1234", True),
        ("ghp_abcdefgh1234", "ghp_****9999", False),
        ("xyz_abcdefgh1234", "ghp_****1234", False),
        ("ghp_abcdefgh1234", "ghp_••••1234", True),
        ("abcd", "abcd", True),
        ("abce", "abcd", False),
        ("ab", "abc****def", False),
        ("ab12cd34ef", "ab**cd**ef", True),
        ("ab12xx34ef", "ab**cd**ef", True),
        ("ab12cd34eg", "ab**cd**ef", False),
        ("abcd1234", "****1234", True),
        ("abcd1234", "abcd****", True),
        ("abcd1234", "*", True),
        ("ab\ncd\n12", "ab\n**\n12", True),
        ("ab\ncd\n12", "ab\n**\n13", False),
        ("ab\ncd\n12", "ab\n**12", True),
        ("line\nbreak", "line\nbreak", True),
        ("anything", None, None),
        ("anything", "", None),
    ],
)
def test_display_consistency(value: str, display: str | None, expected: bool | None) -> None:
    assert display_consistent(SecretValue(value), display) is expected


def verdict(
    *,
    value: str = "ghp_abcdefgh1234",
    display: str = "ghp_****1234",
    updated_at: str = WATERMARK,
    entry: StateEntry | None = None,
    desired_fp: str | None = "fp-a",
    heal: bool = False,
) -> tuple[Verdict, bool]:
    remote = RemoteSecret("id", "gh", display=display, updated_at=updated_at)
    result = value_verdict(
        value=SecretValue(value), remote=remote, entry=entry, desired_fingerprint=desired_fp, heal=heal
    )
    return result.verdict, result.send


ENTRY = StateEntry("id", "gh", fingerprint="fp-a", updated_at=WATERMARK)


def test_in_sync() -> None:
    assert verdict(entry=ENTRY) == (Verdict.IN_SYNC, False)


def test_desired_value_changed_in_ci_environment() -> None:
    assert verdict(entry=ENTRY, desired_fp="fp-b", value="ghp_zzzzzzzz5678") == (
        Verdict.DESIRED_CHANGED,
        True,
    )


def test_value_rotated_in_the_web_page_changes_the_display() -> None:
    later = "2026-03-01T00:00:00Z"
    assert verdict(entry=ENTRY, display="ghp_****9999", updated_at=later) == (
        Verdict.REMOTE_VALUE_CHANGED,
        True,
    )


def test_rewritten_with_same_visible_ends_is_caught_by_the_timestamp_but_not_resent() -> None:
    later = "2026-03-01T00:00:00Z"
    assert verdict(entry=ENTRY, updated_at=later) == (Verdict.REMOTE_WRITTEN, False)
    assert verdict(entry=ENTRY, updated_at=later, heal=True) == (Verdict.REMOTE_WRITTEN, True)


def test_unverified_stays_unverified_after_a_later_field_write() -> None:
    entry = StateEntry("id", "gh", fingerprint="fp-a", updated_at=WATERMARK, value_unverified=True)
    assert verdict(entry=entry) == (Verdict.REMOTE_WRITTEN, False)


def test_no_baseline_decides_by_display_alone() -> None:
    assert verdict(entry=None) == (Verdict.NO_BASELINE, False)
    assert verdict(entry=None, display="zzz_****0000") == (Verdict.REMOTE_VALUE_CHANGED, True)
