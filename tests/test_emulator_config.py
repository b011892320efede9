"""EmulatorConfig refuses impossible settings in one line that names every one of them."""

from __future__ import annotations

import pytest

from reconciler.emulator.config import EmulatorConfig
from reconciler.errors import UsageError

# (settings, the complaint about them)
BROKEN: list[tuple[dict[str, object], str]] = [
    ({"port": -1}, "port must be 0..65535"),
    ({"port": 65536}, "port must be 0..65535"),
    ({"patch_null": "drop"}, "patch_null must be clear or ignore"),
    ({"list_style": "pages"}, "list_style must be one of offset, paged, cursor, envelope, array"),
    ({"max_limit": 0}, "default_limit and max_limit must be >= 1"),
    ({"default_limit": 0}, "default_limit and max_limit must be >= 1"),
    ({"default_limit": 101}, "default_limit must not exceed max_limit"),
    ({"cap": 0}, "cap must be >= 1, with the offset, envelope or array list style"),
    ({"cap": 5, "list_style": "paged"}, "cap must be >= 1, with the offset, envelope or array list style"),
    ({"cap": 5, "list_style": "cursor"}, "cap must be >= 1, with the offset, envelope or array list style"),
    ({"duplicate_names": "deny"}, "duplicate_names must be allow or reject"),
    ({"display_head": -1}, "display_head and display_tail must be >= 0"),
    ({"display_tail": -1}, "display_head and display_tail must be >= 0"),
    ({"quota_bytes": 0}, "quota_bytes must be >= 1"),
    ({"latency_ms": -1}, "latency_ms must be >= 0"),
    ({"fail_rate": 1.5}, "fail_rate, fail_after_rate and fail_echo_rate must be within 0..1"),
    ({"fail_after_rate": -0.1}, "fail_rate, fail_after_rate and fail_echo_rate must be within 0..1"),
    ({"fail_echo_rate": float("nan")}, "fail_rate, fail_after_rate and fail_echo_rate must be within 0..1"),
    ({"rate_limit": 0.0}, "rate_limit must be > 0"),
    ({"clock_offset_s": float("inf")}, "clock_offset_s must be a finite number of seconds"),
    ({"api_keys": ("k", "")}, "api_keys must not contain an empty key"),
]


@pytest.mark.parametrize(("settings", "complaint"), BROKEN)
def test_an_impossible_setting_is_refused_by_name(settings: dict[str, object], complaint: str) -> None:
    with pytest.raises(UsageError) as refused:
        EmulatorConfig(**settings)  # type: ignore[arg-type]

    assert str(refused.value) == f"invalid emulator settings: {complaint}"


def test_every_impossible_setting_is_named_at_once_in_one_line() -> None:
    with pytest.raises(UsageError) as refused:
        EmulatorConfig(port=70000, max_limit=0, latency_ms=-5, api_keys=("",))

    assert str(refused.value) == (
        "invalid emulator settings: port must be 0..65535; default_limit and max_limit must be >= 1; "
        "latency_ms must be >= 0; api_keys must not contain an empty key"
    )


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"port": 0, "default_limit": 100, "max_limit": 100, "cap": 1, "list_style": "array"},
        {
            "display_head": 0,
            "display_tail": 0,
            "fail_rate": 1.0,
            "rate_limit": 0.5,
            "clock_offset_s": -86400.0,
        },
        {"list_style": "paged", "default_limit": 50, "quota_bytes": 1, "api_keys": ("a", "b")},
    ],
)
def test_possible_settings_are_kept_as_given(settings: dict[str, object]) -> None:
    config = EmulatorConfig(**settings)  # type: ignore[arg-type]

    assert {name: getattr(config, name) for name in settings} == settings
