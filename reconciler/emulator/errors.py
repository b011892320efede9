"""The emulator's own errors: what its store refuses, each with the HTTP status the API answers."""

from __future__ import annotations


class EmulatorHttpError(Exception):
    """A refusal the emulated API answers as `{"detail": message}` with `status`."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SecretNotFound(EmulatorHttpError):
    status = 404


class DuplicateName(EmulatorHttpError):
    status = 409


class QuotaExceeded(EmulatorHttpError):
    status = 413
