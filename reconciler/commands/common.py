"""What the commands share: their options turned into Settings and plan options, and a report's origin."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.plan import PlanOptions
    from reconciler.render import Origin
    from reconciler.settings import Settings


def settings_from(file: Path, opts: dict[str, Any], concurrency: int | None = None) -> Settings:
    """The run's Settings from the connection options (flag > environment > default), said with -v."""
    from reconciler import console, settings
    from reconciler.endpoint import shown

    console.configure_logging()
    resolved = settings.resolve(
        desired_path=file,
        api_url=opts["api_url"],
        auth_header=opts["auth_header"],
        state=opts["state_path"],
        ignore_state=bool(opts["ignore_state"]),
        timeout=opts["timeout"],
        concurrency=concurrency,
        color=console.color(sys.stdout.isatty()),
        verbosity=console.output().verbose,
        is_tty=sys.stdout.isatty(),
        assume_complete_listing=bool(opts.get("assume_complete_listing")),
    )
    console.detail(f"API: {shown(resolved.api_url)} (key sent as {resolved.auth_header})")
    ignored = " (ignored: --ignore-state)" if resolved.ignore_state else ""
    console.detail(f"state: {resolved.state_path}{ignored}")
    return resolved


def plan_options_from(opts: dict[str, Any]) -> PlanOptions:
    """What the planning options ask for."""
    from reconciler.plan import PlanOptions

    return PlanOptions(
        prune=opts["prune"],
        force_values=bool(opts["force_values"]),
        heal=bool(opts["heal"]),
        allow_empty=bool(opts["allow_empty"]),
        max_deletes=opts["max_deletes"],
    )


def origin(settings: Settings, file: Path, plan_id: str = "", plan_path: Path | None = None) -> Origin:
    """Where a report comes from: the host, the file, and a saved plan's id and path."""
    from reconciler.endpoint import host
    from reconciler.render import Origin

    return Origin(
        host=host(settings.api_url), file=str(file), plan_id=plan_id, plan_path=str(plan_path or "")
    )
