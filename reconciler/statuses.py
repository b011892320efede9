"""What an answer's HTTP status means to the person running reconciler: the error, and what to do
(after a failed create too: when to list again, and what the next run does)."""

from __future__ import annotations

import email.utils
import time

from reconciler.errors import (
    ApiError,
    AuthError,
    ConflictError,
    NotFoundError,
    QuotaError,
    RateLimitedError,
    ServerError,
    ValidationApiError,
)


def retry_after(raw: str | None) -> float | None:
    """The seconds a Retry-After header asks to wait (a number or an HTTP date), None without one."""
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# A 404 or a web page where the secrets list should be: the URL, not a secret, is wrong.
CHECK_URL = (
    "check --api-url: it should be the API's base URL, such as https://api.intelligence.io.solutions "
    "(with or without /api)"
)


def status_error(status: int, what: str, detail: str, auth: str, attempts: int = 1) -> ApiError:
    """The error for a failed answer; `detail` is the server's explanation, already made safe, and
    `auth` names the header the key was sent in."""
    tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
    said = f" (server said: {detail})" if detail else ""
    if status in (401, 403):
        return AuthError(
            f"{what}: HTTP {status}: the API key was refused{said}; check IOINTELLIGENCE_API_KEY "
            f"and the header it is sent in (now {auth}; see --auth-header)",
            status,
        )
    if status == 404:
        return NotFoundError(
            f"{what}: HTTP 404: not found{said}; it may have been deleted, plan again", status
        )
    if status == 409:
        return ConflictError(f"{what}: HTTP 409: the server refused a duplicate{said}", status)
    if status == 413:
        return QuotaError(
            f"{what}: HTTP 413: the account's secret storage quota would be exceeded; nothing was "
            "written for this secret. Delete unused secrets or shorten values, then apply again",
            status,
        )
    if status == 422:
        return ValidationApiError(f"{what}: HTTP 422: the server refused a field{said}", status)
    if status == 429:
        return RateLimitedError(
            f"{what}: HTTP 429: still rate limited after {tries}; lower --concurrency or try again later",
            status,
        )
    if status >= 500:
        return ServerError(
            f"{what}: HTTP {status} from the server after {tries}{said}; "
            "try again later (apply again converges)",
            status,
        )
    if 300 <= status < 400:
        return ApiError(
            f"{what}: unexpected HTTP {status} (a redirect, which is never followed); check --api-url",
            status,
        )
    return ApiError(f"{what}: unexpected HTTP {status}{said}", status)


# Listings after a create that may still be in flight: waits between them, in seconds.
RELIST_WAITS = (1.0, 2.0, 4.0)
# A create answered with an error whose landing could not be checked: the server is done with it.
UNSETTLED_ADVICE = (
    "the state keeps it as a pending create, so the next apply looks for the name first: it records the "
    "secret without a write if it landed, and sends it again if not"
)


def relist_waits(timeout: float) -> tuple[float, ...]:
    """The waits before each listing that fit within `timeout` in all; at least one listing."""
    waits: list[float] = []
    for wait in RELIST_WAITS:
        if sum(waits) + wait > timeout:
            break
        waits.append(wait)
    return tuple(waits) or (0.0,)
