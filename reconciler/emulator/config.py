"""The emulator's options as one frozen value, shared by the app, the store and the command."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from reconciler.errors import UsageError

PatchNull = Literal["clear", "ignore"]
ListStyle = Literal["offset", "paged", "cursor", "envelope", "array"]
DuplicateNames = Literal["allow", "reject"]

PATCH_NULL_CHOICES: tuple[PatchNull, ...] = ("clear", "ignore")
LIST_STYLE_CHOICES: tuple[ListStyle, ...] = ("offset", "paged", "cursor", "envelope", "array")
DUPLICATE_NAMES_CHOICES: tuple[DuplicateNames, ...] = ("allow", "reject")

DEFAULT_DB_PATH = ".reconciler/emulator.db"
# SQLite's own name for a private in-memory database: nothing survives the process.
MEMORY_DB = ":memory:"


@dataclass(frozen=True)
class EmulatorConfig:
    """Every `reconciler emulator` option; the defaults are the command's defaults except `db_path`."""

    host: str = "127.0.0.1"
    port: int = 8765
    db_path: str = MEMORY_DB
    # Empty: any non-empty key is accepted and becomes its own account.
    api_keys: tuple[str, ...] = ()
    patch_null: PatchNull = "clear"
    display_head: int = 4
    display_tail: int = 4
    # limit/offset is what the evidence points to (docs/emulator.md, "List styles").
    list_style: ListStyle = "offset"
    # The window when none is asked for: None is the style's own (10; 50 for paged).
    default_limit: int | None = None
    # The largest window: offset and cursor give it silently for more, paged answers 422.
    max_limit: int = 100
    # Answer the account's first N secrets to every list request, whatever paging is asked for.
    cap: int | None = None
    # None: no quota. Counts UTF-8 bytes of secret_name plus secret_value over an account's secrets.
    quota_bytes: int | None = None
    duplicate_names: DuplicateNames = "allow"
    seed: int | None = None
    latency_ms: int = 0
    fail_rate: float = 0.0
    fail_after_rate: float = 0.0
    # Share of requests refused by an error that repeats the caller's key and the account's displays.
    fail_echo_rate: float = 0.0
    # None: unlimited. Requests per second per account.
    rate_limit: float | None = None
    inspect: bool = False
    log_requests: bool = False
    # Added to the clock that stamps created_at and updated_at; negative backdates every write.
    clock_offset_s: float = 0.0

    def __post_init__(self) -> None:
        # The command validates flags through click; this guards programmatic construction in tests.
        problems = [message for broken, message in _RULES if broken(self)]
        if problems:
            raise UsageError("invalid emulator settings: " + "; ".join(problems))


# Each rule: whether a configuration breaks it, and the words for it. All broken ones are named at once,
# in this order.
_RULES: tuple[tuple[Callable[[EmulatorConfig], bool], str], ...] = (
    (lambda c: not 0 <= c.port <= 65535, "port must be 0..65535"),
    (lambda c: c.patch_null not in PATCH_NULL_CHOICES, "patch_null must be clear or ignore"),
    (
        lambda c: c.list_style not in LIST_STYLE_CHOICES,
        f"list_style must be one of {', '.join(LIST_STYLE_CHOICES)}",
    ),
    (
        lambda c: c.max_limit < 1 or (c.default_limit is not None and c.default_limit < 1),
        "default_limit and max_limit must be >= 1",
    ),
    # Said only when both are >= 1, so one bad number gets one complaint.
    (
        lambda c: c.max_limit >= 1 and c.default_limit is not None and c.default_limit > c.max_limit,
        "default_limit must not exceed max_limit",
    ),
    (
        lambda c: c.cap is not None and (c.cap < 1 or c.list_style in ("paged", "cursor")),
        "cap must be >= 1, with the offset, envelope or array list style",
    ),
    (lambda c: c.duplicate_names not in DUPLICATE_NAMES_CHOICES, "duplicate_names must be allow or reject"),
    (lambda c: c.display_head < 0 or c.display_tail < 0, "display_head and display_tail must be >= 0"),
    (lambda c: c.quota_bytes is not None and c.quota_bytes < 1, "quota_bytes must be >= 1"),
    (lambda c: c.latency_ms < 0, "latency_ms must be >= 0"),
    (
        lambda c: not all(0.0 <= rate <= 1.0 for rate in (c.fail_rate, c.fail_after_rate, c.fail_echo_rate)),
        "fail_rate, fail_after_rate and fail_echo_rate must be within 0..1",
    ),
    (lambda c: c.rate_limit is not None and c.rate_limit <= 0, "rate_limit must be > 0"),
    (lambda c: not math.isfinite(c.clock_offset_s), "clock_offset_s must be a finite number of seconds"),
    (lambda c: any(not key for key in c.api_keys), "api_keys must not contain an empty key"),
)
