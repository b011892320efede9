"""The error types reconciler raises and the exit-code table the CLI maps them to.

Every expected failure is a ReconcilerError, which the one error boundary in cli.py turns into its
one-line message and exit code (1 unless said); anything else is a bug (exit 3).

    ReconcilerError
    ├── UsageError               bad flags or arguments
    ├── DesiredFileError         every located Problem of a desired-state file at once
    ├── ValueRefError            a value reference is malformed, refused or unresolvable
    │   └── LiteralValueError    a literal value where the file requires a reference
    ├── PlanError                the file and the account cannot be reconciled without a decision
    ├── StateError               the state file is unreadable, corrupt, locked or not ours
    └── ApiError                 the io.net API refused, failed or could not be reached
        ├── AuthError            401/403, or no API key
        ├── NotFoundError        404
        ├── QuotaError           413
        ├── ValidationApiError   422
        ├── ConflictError        409
        ├── RateLimitedError     429 after every retry
        ├── ServerError          5xx after every retry, or a malformed answer
        │   └── IncompleteListingError   a listing not proven whole
        ├── TransportError       timeouts and connection failures after every retry
        └── apply.VerificationError      a write the read-back does not show
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from reconciler.text import plural


class ExitCode(IntEnum):
    OK = 0
    ERROR = 1
    CHANGES = 2
    INTERNAL = 3
    INTERRUPTED = 130


class ReconcilerError(Exception):
    """Root of every expected failure; its message is one line a user can act on."""

    exit_code: ExitCode = ExitCode.ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ReconcilerError):
    """Bad flags or arguments."""


@dataclass(frozen=True)
class Problem:
    """One located problem in a user-written file."""

    file: str
    line: int
    col: int
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.key}: {self.message}"


class DesiredFileError(ReconcilerError):
    """The desired-state file has one or more problems; all of them are carried."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        lines = [str(p) for p in self.problems]
        lines.append(f"{plural(len(self.problems), 'problem')} found")
        super().__init__("\n".join(lines))


class ValueRefError(ReconcilerError):
    """A value reference is malformed, refused or unresolvable; the message never holds the value."""


class LiteralValueError(ValueRefError):
    """A literal value where a reference is required (the file does not set allow_plaintext)."""


class PlanError(ReconcilerError):
    """The desired state and the remote cannot be reconciled without a human decision."""


class StateError(ReconcilerError):
    """The state file is unreadable, corrupt, locked, or written under another key."""


class ApiError(ReconcilerError):
    """The io.net API answered with an error or could not be reached."""

    def __init__(
        self, message: str, status: int | None = None, *, in_doubt: bool = False, unsettled: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        # The request may still take effect on the server (a create whose answer was lost).
        self.in_doubt = in_doubt
        # The server answered (it is done with the request), but whether it took effect could not be
        # checked: the next run finds out, and nothing needs to wait.
        self.unsettled = unsettled


class AuthError(ApiError):
    """401/403, or no API key configured."""


class NotFoundError(ApiError):
    """404 for a secret id."""


class QuotaError(ApiError):
    """413: the account's storage quota would be exceeded."""


class ValidationApiError(ApiError):
    """422: the server refused a field."""


class ConflictError(ApiError):
    """409: the server refused a duplicate."""


class RateLimitedError(ApiError):
    """429 still answered after every retry."""


class ServerError(ApiError):
    """5xx still answered after every retry, or a malformed answer."""


class IncompleteListingError(ServerError):
    """The account's listing could not be proven whole: nothing may be planned from it."""


class TransportError(ApiError):
    """Timeouts and connection failures after every retry."""
