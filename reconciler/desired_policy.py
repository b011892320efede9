"""The rotation policy of the desired-state file: `max_age` (a whole number and h, d or w) in hours."""

from __future__ import annotations

import re

# The schema holds the same pattern (checked by a test); 5 digits reach far past any sane policy.
MAX_AGE_PATTERN = "^[1-9][0-9]{0,4}[hdw]$"
_MAX_AGE = re.compile(MAX_AGE_PATTERN)
_UNIT_HOURS = {"h": 1, "d": 24, "w": 168}
MAX_AGE_HINT = "a whole number and h, d or w, such as 12h, 90d or 4w"


def schema_accepts(value: object) -> bool:
    """What the JSON Schema accepts: its pattern is searched, and `$` also matches before a final
    line break, which is_max_age then refuses."""
    return isinstance(value, str) and _MAX_AGE.search(value) is not None


def is_max_age(value: object) -> bool:
    return isinstance(value, str) and _MAX_AGE.fullmatch(value) is not None


def max_age_hours(value: object) -> int | None:
    """The policy in hours; None when there is none (or it is malformed, which validation reports)."""
    if not is_max_age(value):
        return None
    assert isinstance(value, str)
    return int(value[:-1]) * _UNIT_HOURS[value[-1]]
