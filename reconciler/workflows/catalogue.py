"""The catalogue of credentialed tools: which tool takes which credential argument, and tool families."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from reconciler import desired
from reconciler.errors import ReconcilerError

CATALOGUE_FILE = Path(__file__).parent.parent / "data" / "tool-credentials.yaml"

# Argument names that hold a credential whatever the tool (the catalogue lists the known ones).
_CREDENTIAL_NAME = re.compile(
    r"(?:^|_)(?:token|api_?key|apikey|secret|password|passwd|private_key|access_key|secret_key)$",
    re.IGNORECASE,
)
# io.net accepts a trailing * in tool_name for these families only.
IO_FAMILY = re.compile(r"agno__[A-Za-z0-9]+(?:_[A-Za-z0-9]+)*__\*")

# ---------------------------------------------------------------------------------------------
# The catalogue of credentialed tools.


@dataclass(frozen=True)
class Catalogue:
    """Tool name globs and the arguments that take a credential; the first matching glob decides."""

    families: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def args_for(self, tool: str) -> tuple[str, ...] | None:
        """The credential arguments of `tool`: () when it takes none, None when the tool is unknown."""
        for pattern, args in self.families:
            if fnmatch.fnmatchcase(tool, pattern):
                return args
        return None

    def pattern_for(self, tool: str) -> str | None:
        for pattern, _args in self.families:
            if fnmatch.fnmatchcase(tool, pattern):
                return pattern
        return None


def catalogue(extra: Sequence[tuple[str, Sequence[str]]] = ()) -> Catalogue:
    """The built-in catalogue with `extra` entries (a desired state's tool_credentials) consulted first."""
    return Catalogue((*((pattern, tuple(args)) for pattern, args in extra), *_builtin_families()))


@cache
def _builtin_families() -> tuple[tuple[str, tuple[str, ...]], ...]:
    document = desired.read_yaml(CATALOGUE_FILE)
    families = document.root.get("families") if document.root and document.root.kind == "map" else None
    if families is None or families.kind != "seq":
        raise ReconcilerError(f"{CATALOGUE_FILE} has no 'families' list; reinstall reconciler")
    result: list[tuple[str, tuple[str, ...]]] = []
    for item in families.items:
        pattern = item.get("pattern") if item.kind == "map" else None
        args = item.get("args") if item.kind == "map" else None
        if pattern is None or not isinstance(pattern.scalar, str) or args is None or args.kind != "seq":
            raise ReconcilerError(
                f"{CATALOGUE_FILE}:{item.line}: expected {{pattern, args}}; reinstall reconciler"
            )
        result.append((pattern.scalar, tuple(str(arg.scalar) for arg in args.items)))
    return tuple(result)


def binds(tool_name: str, tool: str) -> bool:
    """Whether a secret's tool_name applies to `tool`: equal, or a trailing-* wildcard covering it."""
    if tool_name.endswith("*"):
        return tool.startswith(tool_name[:-1])
    return tool_name == tool


def is_credential_arg(arg: str, known: tuple[str, ...] | None) -> bool:
    return (known is not None and arg in known) or _CREDENTIAL_NAME.search(arg) is not None


def family(tool: str) -> str:
    """The tool's family as the SDK names its environment variables: agno__github__x -> github."""
    for pattern in (
        r"agno__([A-Za-z0-9]+(?:_[A-Za-z0-9]+)*?)__",
        r"agno_([A-Za-z0-9]+)_",
        r"([A-Za-z0-9]+)[-_]",
    ):
        match = re.match(pattern, tool)
        if match:
            return match.group(1)
    return tool


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "secret"


def short_tool(tool: str) -> str:
    return re.sub(r"^agno_+", "", tool)
