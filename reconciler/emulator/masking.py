"""The `display` rule: which characters of a secret value the API shows, and the mask between them."""

from __future__ import annotations

MASK_CHAR = "*"
# A fixed-width mask, so display does not reveal the value's length.
MASK = MASK_CHAR * 4
# Values this short are shown in full, as io.net does.
FULL_DISPLAY_MAX = 4


def visible_counts(length: int, head: int, tail: int) -> tuple[int, int]:
    """How many leading and trailing characters of a value of `length` characters stay visible."""
    if length <= FULL_DISPLAY_MAX:
        return length, 0
    # At least half of the value stays hidden: at most floor(length / 2) characters are shown.
    budget = length // 2
    if head + tail <= budget:
        return head, tail
    shown_tail = min(tail, budget // 2)
    shown_head = min(head, budget - shown_tail)
    shown_tail = min(tail, budget - shown_head)
    return shown_head, shown_tail


def mask(value: str, head: int = 4, tail: int = 4) -> str:
    """The masked copy of `value`: visible head, then `****`, then visible tail."""
    if len(value) <= FULL_DISPLAY_MAX:
        return value
    shown_head, shown_tail = visible_counts(len(value), head, tail)
    return value[:shown_head] + MASK + (value[len(value) - shown_tail :] if shown_tail else "")
