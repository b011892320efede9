"""Resolution of flag > environment > default into one frozen Settings per run."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.endpoint import DEFAULT_API_URL, check_api_url
from reconciler.errors import UsageError

API_URL_ENV = "RECONCILER_API_URL"
API_KEY_ENVS = ("IOINTELLIGENCE_API_KEY", "IO_API_KEY")
# A day: beyond it a wait is a hang, and the timers below cannot represent an infinite one.
MAX_TIMEOUT_S = 86_400.0
STATE_DIR = ".reconciler"
# What an HTTP header can carry as it was typed: printable ASCII. Anything else cannot be sent.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")


@dataclass(frozen=True)
class Settings:
    """Everything one command needs to know about where and how to talk, and where state lives."""

    api_url: str
    api_key: str = field(repr=False)
    auth_header: str
    state_path: Path
    ignore_state: bool
    local_db: Path
    timeout: float
    concurrency: int
    color: bool
    verbosity: int
    environ: Mapping[str, str] = field(repr=False, default_factory=dict)
    # --assume-complete-listing: plan from a listing nothing proves whole. Never the default.
    assume_complete_listing: bool = False


def resolve(
    *,
    desired_path: Path | None,
    api_url: str | None = None,
    auth_header: str | None = None,
    state: Path | None = None,
    ignore_state: bool = False,
    timeout: float | None = None,
    concurrency: int | None = None,
    color: bool | None = None,
    verbosity: int = 0,
    is_tty: bool = False,
    environ: Mapping[str, str] | None = None,
    assume_complete_listing: bool = False,
) -> Settings:
    env = dict(os.environ if environ is None else environ)
    base = desired_path.parent if desired_path is not None else Path(".")
    url = api_url or env.get(API_URL_ENV) or DEFAULT_API_URL
    # Before any file or network work: a bad URL is the user's to fix, not a failure halfway through.
    check_api_url(url)
    source, key = next(((name, env[name]) for name in API_KEY_ENVS if env.get(name)), ("", ""))
    if key and not _HEADER_SAFE.fullmatch(key):
        # Never the key itself: only what is wrong with it.
        raise UsageError(
            f"{source} holds characters an HTTP header cannot carry (non-ASCII, not UTF-8, spaces or "
            "control characters); set it to the API key exactly as io.net shows it"
        )
    header = auth_header or env.get("RECONCILER_AUTH_HEADER") or "bearer"
    if concurrency is not None and not 1 <= concurrency <= 64:
        raise UsageError("--concurrency must be between 1 and 64")
    if timeout is not None and not (math.isfinite(timeout) and 0 < timeout <= MAX_TIMEOUT_S):
        raise UsageError(f"--timeout must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}")
    if color is None:
        color = is_tty and not env.get("NO_COLOR")
    return Settings(
        api_url=url,
        api_key=key,
        auth_header=header,
        state_path=state if state is not None else base / STATE_DIR / "state.json",
        ignore_state=ignore_state,
        local_db=base / STATE_DIR / "local.db",
        timeout=timeout if timeout is not None else 30.0,
        concurrency=concurrency if concurrency is not None else 4,
        color=color,
        verbosity=verbosity,
        environ=env,
        assume_complete_listing=assume_complete_listing,
    )
