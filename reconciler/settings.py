"""Resolution of flag > environment > default into one frozen Settings per run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.endpoint import DEFAULT_API_URL
from reconciler.errors import UsageError

API_URL_ENV = "RECONCILER_API_URL"
API_KEY_ENVS = ("IOINTELLIGENCE_API_KEY", "IO_API_KEY")
STATE_DIR = ".reconciler"


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
) -> Settings:
    env = dict(os.environ if environ is None else environ)
    base = desired_path.parent if desired_path is not None else Path(".")
    url = api_url or env.get(API_URL_ENV) or DEFAULT_API_URL
    key = next((env[name] for name in API_KEY_ENVS if env.get(name)), "")
    header = auth_header or env.get("RECONCILER_AUTH_HEADER") or "bearer"
    if concurrency is not None and not 1 <= concurrency <= 64:
        raise UsageError("--concurrency must be between 1 and 64")
    if timeout is not None and timeout <= 0:
        raise UsageError("--timeout must be a positive number of seconds")
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
    )
